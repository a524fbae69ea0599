//! Packet faults do what they say, measured from inside the namespaces.
//! Bounds are wide (several standard deviations of each measurement, with
//! the decisions' correlation counted): these tests show behaviour, not
//! speed; `netlab measure` prints the numbers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{between, footprint, ids, link, uniform};
use netlab::packet::{Behavior, Chance, PacketFaults};
use netlab::probe::{self, CONTROL, Mesh};
use netlab::{Lab, Link};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Round trips n1 -> n2 -> n1, sorted; every ping must come back.
fn round_trips(lab: &Lab, port: u16, count: usize) -> Vec<Duration> {
    let rtts =
        probe::udp_round_trips(lab, "n1", "n2", port, count, Duration::from_secs(1)).unwrap();
    let mut got: Vec<Duration> = rtts.iter().flatten().copied().collect();
    assert_eq!(got.len(), count, "pings lost: {rtts:?}");
    got.sort();
    got
}

fn one_way(f: PacketFaults) -> BTreeMap<Link, PacketFaults> {
    uniform([link("n1", "n2")], f)
}

#[test]
fn delay_adds_its_time_to_round_trips() {
    netlab::testing::isolated("delay_adds_its_time_to_round_trips", || {
        let lab = Lab::build(&ids(2), 1).unwrap();
        let base = round_trips(&lab, 7001, 20);
        assert!(ms(probe::percentile(&base, 50.0)) < 10.0, "{base:?}");

        // 50 ms ± 10 ms each way: round trips of 100 ms ± 14 ms.
        let both = uniform(
            [link("n1", "n2"), link("n2", "n1")],
            PacketFaults::of(&[Behavior::Delay]),
        );
        lab.impair(&both).unwrap();
        let slow = round_trips(&lab, 7002, 60);
        // Medians and inner percentiles: a loaded machine (tests run in
        // parallel on two cores) wakes threads late, which only adds.
        let pct = |p| ms(probe::percentile(&slow, p));
        let (p10, median, p90) = (pct(10.0), pct(50.0), pct(90.0));
        assert!((85.0..125.0).contains(&median), "median {median} ms");
        assert!(p10 > 60.0, "p10 {p10} ms");
        assert!(
            p90 - p10 > 10.0,
            "jitter must spread the round trips: p10 {p10}, p90 {p90} ms"
        );

        // Figure 8's slow link: a fixed 100 ms, one way only; never early.
        lab.impair(&one_way(PacketFaults::delay(Duration::from_millis(100))))
            .unwrap();
        let fixed = round_trips(&lab, 7003, 10);
        let median = ms(probe::percentile(&fixed, 50.0));
        assert!(ms(fixed[0]) >= 100.0 && median < 130.0, "{fixed:?}");

        lab.unimpair().unwrap();
        let after = round_trips(&lab, 7004, 20);
        assert!(ms(probe::percentile(&after, 50.0)) < 10.0, "{after:?}");
    });
}

#[test]
fn loss_and_duplicate_hit_their_share_of_packets() {
    netlab::testing::isolated("loss_and_duplicate_hit_their_share_of_packets", || {
        let lab = Lab::build(&ids(2), 1).unwrap();
        let n = 5000;
        let gap = Duration::from_micros(100);
        let settle = Duration::from_millis(300);

        lab.impair(&one_way(PacketFaults::of(&[Behavior::Loss])))
            .unwrap();
        let d = probe::udp_delivery(&lab, "n1", "n2", 7001, n, gap, settle).unwrap();
        let lost = lab.stats().unwrap()[&link("n1", "n2")].emulator.lost;
        // 20% with correlation 0.75: about 700 independent decisions' worth.
        assert!((0.12..0.28).contains(&d.loss()), "loss {}", d.loss());
        assert!(
            n - d.received >= lost && n - d.received <= lost + n / 100,
            "{d:?}, emulator lost {lost}"
        );
        assert_eq!(d.duplicates, 0);

        lab.impair(&one_way(PacketFaults::of(&[Behavior::Duplicate])))
            .unwrap();
        let d = probe::udp_delivery(&lab, "n1", "n2", 7002, n, gap, settle).unwrap();
        let dups = lab.stats().unwrap()[&link("n1", "n2")].emulator.duplicated;
        let share = d.duplicates as f64 / n as f64;
        assert!((0.12..0.28).contains(&share), "duplicates {share}");
        assert!(
            d.duplicates <= dups && dups <= d.duplicates + n / 100,
            "{d:?}, emulator duplicated {dups}"
        );
        assert!(d.received >= n - n / 100, "{d:?}");
    });
}

#[test]
fn reordered_packets_overtake_the_delayed_ones() {
    netlab::testing::isolated("reordered_packets_overtake_the_delayed_ones", || {
        let lab = Lab::build(&ids(2), 1).unwrap();
        let n = 3000;
        lab.impair(&one_way(PacketFaults::of(&[Behavior::Reorder])))
            .unwrap();
        let d = probe::udp_delivery(
            &lab,
            "n1",
            "n2",
            7001,
            n,
            Duration::from_micros(200),
            Duration::from_millis(400),
        )
        .unwrap();
        let reordered = lab.stats().unwrap()[&link("n1", "n2")].emulator.reordered;
        let share = reordered as f64 / n as f64;
        assert!((0.12..0.28).contains(&share), "sent early: {share}");
        // A packet sent early overtakes the ~250 held within 50 ms.
        assert!(d.out_of_order > n / 4, "{d:?}");
        assert!(d.received >= n - n / 100, "{d:?}");
    });
}

#[test]
fn corrupted_packets_fail_the_receivers_checksum() {
    netlab::testing::isolated("corrupted_packets_fail_the_receivers_checksum", || {
        let lab = Lab::build(&ids(2), 1).unwrap();
        lab.impair(&one_way(PacketFaults::of(&[Behavior::Corrupt])))
            .unwrap();
        let n = 3000;
        let udp_before = probe::snmp_counter(&lab, "n2", "Udp", "InCsumErrors").unwrap();
        let d = probe::udp_delivery(
            &lab,
            "n1",
            "n2",
            7001,
            n,
            Duration::from_micros(100),
            Duration::from_millis(300),
        )
        .unwrap();
        let corrupted = lab.stats().unwrap()[&link("n1", "n2")].emulator.corrupted;
        let udp_errors =
            probe::snmp_counter(&lab, "n2", "Udp", "InCsumErrors").unwrap() - udp_before;
        assert!((0.12..0.28).contains(&d.loss()), "{d:?}");
        // Every corrupted datagram is lost (none arrives altered: the
        // payload is a number the probe checks); most fail the checksum,
        // the rest (a flipped port or length) fail other checks.
        assert!(
            n - d.received >= corrupted && n - d.received <= corrupted + n / 100,
            "{d:?}, corrupted {corrupted}"
        );
        assert!(
            udp_errors * 10 >= corrupted * 7,
            "checksum errors {udp_errors} of {corrupted} corrupted"
        );

        // TCP: the stream arrives intact, retransmitted past the
        // corrupted segments the checksum threw away.
        let tcp_before = probe::snmp_counter(&lab, "n2", "Tcp", "InCsumErrors").unwrap();
        let (_, intact) =
            probe::tcp_throughput(&lab, "n1", "n2", 7002, Duration::from_secs(1)).unwrap();
        let tcp_errors =
            probe::snmp_counter(&lab, "n2", "Tcp", "InCsumErrors").unwrap() - tcp_before;
        assert!(intact, "corruption got past TCP");
        assert!(tcp_errors > 0, "no TCP checksum error counted");
    });
}

#[test]
fn rate_limits_a_nodes_peers_but_not_the_control_side() {
    netlab::testing::isolated("rate_limits_a_nodes_peers_but_not_the_control_side", || {
        let lab = Lab::build(&ids(2), 1).unwrap();
        lab.impair(&one_way(PacketFaults::of(&[Behavior::Rate])))
            .unwrap();
        let (bps, intact) =
            probe::tcp_throughput(&lab, "n1", "n2", 7001, Duration::from_secs(3)).unwrap();
        assert!(intact);
        assert!(
            (0.6e6..1.3e6).contains(&bps),
            "{bps} bit/s under a 1 Mbit/s rate"
        );
        let (to_control, _) =
            probe::tcp_throughput(&lab, "n1", CONTROL, 7002, Duration::from_secs(1)).unwrap();
        assert!(to_control > 20e6, "{to_control} bit/s to the control side");
        // A new rate changes the class in place.
        let two = one_way(PacketFaults {
            rate: Some(netlab::packet::Rate {
                bits_per_second: 2_000_000,
            }),
            ..PacketFaults::default()
        });
        lab.impair(&two).unwrap();
        let (faster, _) =
            probe::tcp_throughput(&lab, "n1", "n2", 7003, Duration::from_secs(3)).unwrap();
        assert!(
            (1.3e6..2.6e6).contains(&faster),
            "{faster} bit/s after changing the rate to 2 Mbit/s"
        );
    });
}

#[test]
fn the_control_side_is_never_impaired() {
    netlab::testing::isolated("the_control_side_is_never_impaired", || {
        let nodes = ids(2);
        let lab = Lab::build(&nodes, 1).unwrap();
        let certain = PacketFaults {
            loss: Some(Chance {
                probability: 1.0,
                correlation: 0.0,
            }),
            ..PacketFaults::default()
        };
        lab.impair(&uniform(netlab::links_touching(&nodes, &nodes), certain))
            .unwrap();
        let gap = Duration::from_micros(500);
        let settle = Duration::from_millis(200);
        let between_nodes = probe::udp_delivery(&lab, "n1", "n2", 7001, 200, gap, settle).unwrap();
        assert_eq!(between_nodes.received, 0);
        let to_control = probe::udp_delivery(&lab, "n1", CONTROL, 7002, 200, gap, settle).unwrap();
        let from_control =
            probe::udp_delivery(&lab, CONTROL, "n2", 7003, 200, gap, settle).unwrap();
        assert_eq!((to_control.received, from_control.received), (200, 200));
    });
}

#[test]
fn faults_combine_with_cuts_and_undo_leaves_the_rules_as_built() {
    netlab::testing::isolated(
        "faults_combine_with_cuts_and_undo_leaves_the_rules_as_built",
        || {
            let nodes = ids(3);
            let lab = Lab::build(&nodes, 1).unwrap();
            let pristine: Vec<String> = nodes.iter().map(|n| footprint(&lab, n)).collect();

            // Every behavior on the links of n3: rules, queue and qdisc appear.
            let all = PacketFaults::of(&Behavior::ALL);
            lab.impair(&uniform(
                netlab::links_touching(&nodes, &["n3".into()]),
                all,
            ))
            .unwrap();
            assert!(
                footprint(&lab, "n3").contains("htb"),
                "{}",
                footprint(&lab, "n3")
            );
            assert_eq!(lab.impaired_links().len(), 4);
            // Two rates from one node cannot share its one class.
            let mut mixed = uniform([link("n3", "n1")], all);
            mixed.insert(
                link("n3", "n2"),
                PacketFaults::of(&[Behavior::Delay, Behavior::Rate]),
            );
            mixed.get_mut(&link("n3", "n2")).unwrap().rate =
                Some(netlab::packet::Rate { bits_per_second: 5 });
            assert!(lab.impair(&mixed).is_err());
            assert_eq!(
                lab.impaired_links().len(),
                4,
                "a refused change changes nothing"
            );

            // Delay everywhere, and a cut on top: the cut is still exact.
            let slow = PacketFaults::delay(Duration::from_millis(30));
            lab.impair(&uniform(netlab::links_touching(&nodes, &nodes), slow))
                .unwrap();
            assert!(
                !footprint(&lab, "n3").contains("htb"),
                "the rate is gone with the faults that had it"
            );
            let cut = between(&["n1"], &["n3"]);
            lab.cut(&cut).unwrap();
            let mesh = Mesh::start(&lab, 7000).unwrap();
            let r = mesh.probe(&lab, Duration::from_secs(1)).unwrap();
            for (l, &delivered) in &r.udp {
                let blocked = cut.contains(l);
                assert_eq!(delivered, !blocked, "{l:?} with delay and cut");
            }
            let rtt = round_trips(&lab, 7001, 5);
            assert!(ms(rtt[0]) >= 60.0, "30 ms each way: {rtt:?}");

            lab.heal().unwrap();
            lab.unimpair().unwrap();
            assert!(lab.impaired_links().is_empty());
            for (n, before) in nodes.iter().zip(&pristine) {
                assert_eq!(
                    &footprint(&lab, n),
                    before,
                    "{n}: unimpair and heal must leave the rules as built"
                );
            }
            let none: BTreeSet<Link> = BTreeSet::new();
            assert_eq!(lab.cut_links(), none);
        },
    );
}
