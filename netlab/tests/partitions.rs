//! Partitions by packet filter, probed from inside the namespaces: every
//! shape cuts exactly its ordered links, the control side is never cut
//! off, established connections stall, and heal leaves the rules exactly
//! as built.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{between, footprint, ids, link};
use netlab::probe::{CONTROL, Mesh, Reachability};
use netlab::{Lab, Link, NetlabError};

const WAIT: Duration = Duration::from_millis(400);

/// Asserts that exactly `cut` is cut: a datagram from a to b arrives iff
/// (a, b) is not cut; a TCP connect from a to b completes iff neither
/// (a, b) nor (b, a) is (its handshake needs both); the control side
/// reaches every node and every node reaches it.
fn assert_exactly(r: &Reachability, cut: &BTreeSet<Link>, what: &str) {
    for (l, &delivered) in &r.udp {
        let (a, b) = l;
        if a == CONTROL || b == CONTROL {
            assert!(
                delivered && r.tcp[l],
                "{what}: {a} -> {b} involves the control side and must work"
            );
            continue;
        }
        let forward = cut.contains(l);
        let backward = cut.contains(&link(b, a));
        assert_eq!(
            delivered, !forward,
            "{what}: datagram {a} -> {b} (cut: {forward})"
        );
        assert_eq!(
            r.tcp[l],
            !(forward || backward),
            "{what}: connect {a} -> {b} (cut {forward}, back {backward})"
        );
    }
}

#[test]
fn every_shape_cuts_exactly_its_ordered_links() {
    netlab::testing::isolated("every_shape_cuts_exactly_its_ordered_links", || {
        let nodes = ids(5);
        let lab = Lab::build(&nodes, 1).unwrap();
        let pristine: Vec<String> = nodes.iter().map(|n| footprint(&lab, n)).collect();
        let mesh = Mesh::start(&lab, 7000).unwrap();
        assert_exactly(
            &mesh.probe(&lab, WAIT).unwrap(),
            &BTreeSet::new(),
            "before any cut",
        );

        let ring_gaps = [
            ("n1", "n3"),
            ("n1", "n4"),
            ("n2", "n4"),
            ("n2", "n5"),
            ("n3", "n5"),
        ];
        let shapes: Vec<(&str, BTreeSet<Link>)> = vec![
            ("random halves", between(&["n1", "n4"], &["n2", "n3", "n5"])),
            ("isolate one", between(&["n3"], &["n1", "n2", "n4", "n5"])),
            (
                "isolate leader",
                between(&["n1"], &["n2", "n3", "n4", "n5"]),
            ),
            (
                "majorities ring",
                ring_gaps
                    .iter()
                    .flat_map(|(a, b)| between(&[a], &[b]))
                    .collect(),
            ),
            ("bridge", between(&["n1", "n2"], &["n4", "n5"])),
            (
                "one-way cuts",
                [link("n1", "n2"), link("n4", "n3"), link("n5", "n1")]
                    .into_iter()
                    .collect(),
            ),
        ];
        // Each shape replaces the one before without a heal in between:
        // the diff must add and remove exactly the right elements.
        for (name, cut) in &shapes {
            lab.cut(cut).unwrap();
            assert_eq!(&lab.cut_links(), cut, "{name}: what the lab says is cut");
            assert_exactly(&mesh.probe(&lab, WAIT).unwrap(), cut, name);
        }
        lab.heal().unwrap();
        assert!(lab.cut_links().is_empty());
        assert_exactly(
            &mesh.probe(&lab, WAIT).unwrap(),
            &BTreeSet::new(),
            "after heal",
        );
        for (n, before) in nodes.iter().zip(&pristine) {
            assert_eq!(
                &footprint(&lab, n),
                before,
                "{n}: heal must leave the rules as built"
            );
        }
    });
}

#[test]
fn an_established_connection_stalls_while_cut_and_resumes_after_heal() {
    netlab::testing::isolated(
        "an_established_connection_stalls_while_cut_and_resumes_after_heal",
        || {
            let nodes = ids(3);
            let lab = Lab::build(&nodes, 1).unwrap();
            let at = SocketAddr::from((lab.addr("n2").unwrap(), 7100));
            let listener = lab.run_in("n2", || TcpListener::bind(at)).unwrap().unwrap();
            let mut client = lab
                .run_in("n1", || {
                    TcpStream::connect_timeout(&at, Duration::from_secs(2))
                })
                .unwrap()
                .unwrap();
            let (mut server, _) = listener.accept().unwrap();
            server
                .set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut byte = [0u8; 1];
            client.write_all(b"a").unwrap();
            server.read_exact(&mut byte).unwrap();
            assert_eq!(&byte, b"a");

            lab.cut(&between(&["n1"], &["n2"])).unwrap();
            client.write_all(b"b").unwrap();
            let during = server.read(&mut byte);
            assert!(during.is_err(), "a byte crossed a cut link: {during:?}");

            lab.heal().unwrap();
            // TCP retransmits on its own timer (backing off from 200 ms).
            server
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let healed = Instant::now();
            server.read_exact(&mut byte).unwrap();
            assert_eq!(&byte, b"b");
            assert!(healed.elapsed() < Duration::from_secs(10));
        },
    );
}

#[test]
fn links_outside_the_network_are_refused_and_change_nothing() {
    netlab::testing::isolated(
        "links_outside_the_network_are_refused_and_change_nothing",
        || {
            let lab = Lab::build(&ids(3), 1).unwrap();
            let first: BTreeSet<Link> = [link("n1", "n2")].into_iter().collect();
            lab.cut(&first).unwrap();
            for bad in [link("n1", "n9"), link("n2", "n2"), link(CONTROL, "n1")] {
                let err = lab.cut(&[link("n3", "n1"), bad.clone()]).unwrap_err();
                assert!(
                    matches!(err, NetlabError::UnknownLink { .. }),
                    "{bad:?}: {err}"
                );
            }
            assert_eq!(lab.cut_links(), first);
            assert!(
                matches!(Lab::build(&ids(2), 1), Err(NetlabError::Tool { .. })),
                "a second network in one namespace"
            );
            let dup = vec!["a".to_string(), "a".to_string()];
            assert!(matches!(
                Lab::build(&dup, 1),
                Err(NetlabError::DuplicateNode(_))
            ));
        },
    );
}

#[test]
fn a_dial_cut_stops_one_nodes_connections_and_spares_the_other_way() {
    netlab::testing::isolated(
        "a_dial_cut_stops_one_nodes_connections_and_spares_the_other_way",
        || {
            let nodes = ids(3);
            let lab = Lab::build(&nodes, 1).unwrap();
            let pristine = footprint(&lab, "n2");
            let on = |node: &str| SocketAddr::from((lab.addr(node).unwrap(), 7200));
            let l1 = lab
                .run_in("n1", || TcpListener::bind(on("n1")))
                .unwrap()
                .unwrap();
            let l2 = lab
                .run_in("n2", || TcpListener::bind(on("n2")))
                .unwrap()
                .unwrap();
            let _l3 = lab
                .run_in("n3", || TcpListener::bind(on("n3")))
                .unwrap()
                .unwrap();
            let connect = |from: &str, to: &str| {
                let at = on(to);
                lab.run_in(from, move || {
                    TcpStream::connect_timeout(&at, Duration::from_millis(500))
                })
                .unwrap()
            };
            // n1's connection to n2, opened before the cut, and n2's to n1.
            let mut n1_to_n2 = connect("n1", "n2").unwrap();
            let (mut at_n2, _) = l2.accept().unwrap();
            let mut n2_to_n1 = connect("n2", "n1").unwrap();
            let (mut at_n1, _) = l1.accept().unwrap();
            for s in [&at_n1, &at_n2, &n1_to_n2, &n2_to_n1] {
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
            }

            lab.cut_dials(&BTreeSet::from([link("n1", "n2")])).unwrap();
            assert_eq!(lab.dial_cut_links(), BTreeSet::from([link("n1", "n2")]));
            assert!(lab.cut_links().is_empty(), "a dial cut is not a packet cut");
            let mut byte = [0u8; 1];
            // n1 cannot call n2: its open connection stalls, a new one fails.
            n1_to_n2.write_all(b"a").unwrap();
            assert!(at_n2.read(&mut byte).is_err(), "n1's call reached n2");
            assert!(connect("n1", "n2").is_err(), "n1 opened a connection to n2");
            // n2's own connection to n1 works, both ways.
            n2_to_n1.write_all(b"q").unwrap();
            at_n1.read_exact(&mut byte).unwrap();
            at_n1.write_all(b"r").unwrap();
            n2_to_n1.read_exact(&mut byte).unwrap();
            assert_eq!(&byte, b"r");
            assert!(connect("n2", "n1").is_ok(), "n2 could not call n1");
            // The third node is untouched.
            assert!(connect("n3", "n2").is_ok() && connect("n1", "n3").is_ok());

            lab.heal().unwrap();
            assert!(lab.dial_cut_links().is_empty());
            at_n2
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            at_n2.read_exact(&mut byte).unwrap();
            assert_eq!(&byte, b"a", "the stalled call went through after heal");
            assert!(connect("n1", "n2").is_ok());
            assert_eq!(
                footprint(&lab, "n2"),
                pristine,
                "heal leaves the rules as built"
            );
        },
    );
}
