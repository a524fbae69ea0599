//! `--network netns|proxy` end to end: runs on both networks, the packet
//! nemesis, partitions probed from inside the nodes' namespaces against
//! what the history says was cut (and the harness's namespace, where the
//! clients live, never cut off), one line and exit 254 where namespaces
//! cannot run, and nothing of the network left after a run, Ctrl-C or
//! `kill -9` of the harness.
//!
//! Tests that need namespaces skip, saying why, where `netlab::check`
//! finds something missing (not root, a tool not installed).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cli::{Running, harness, netns_available, read_json, run, status, text};
use serde_json::Value;

fn history(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("history.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Polls `done` every 50 ms until it holds or `within` passes.
fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The inode of the namespace `/proc/PID/ns/KIND` links to.
fn ns_inode(pid: u32, kind: &str) -> Option<u64> {
    let target = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()?;
    let s = target.to_str()?;
    s.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
}

/// A node process of a run: its id, its address and its namespace.
struct NodeProc {
    id: String,
    addr: std::net::Ipv4Addr,
    pid: u32,
}

/// The running nodes of `h`, by their command lines.
fn nodes_of(h: &Running) -> Vec<NodeProc> {
    let mut out = Vec::new();
    for pid in h.nodes() {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let words: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let after = |flag: &str| {
            words
                .iter()
                .position(|w| w == flag)
                .and_then(|i| words.get(i + 1))
                .cloned()
        };
        let (Some(id), Some(listen)) = (after("--id"), after("--listen")) else {
            continue;
        };
        let Ok(listen) = listen.parse::<SocketAddr>() else {
            continue;
        };
        let std::net::IpAddr::V4(addr) = listen.ip() else {
            continue;
        };
        out.push(NodeProc { id, addr, pid });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// A UDP socket made inside the network namespace of process `pid`
/// (sockets stay in the namespace they were made in), bound to `addr`.
fn socket_in(pid: u32, addr: SocketAddr) -> UdpSocket {
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = File::open(format!("/proc/{pid}/ns/net")).unwrap();
            // SAFETY: setns on this short-lived thread only, with an fd we hold.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns into {pid}'s namespace");
            let sock = UdpSocket::bind(addr).unwrap();
            sock.set_nonblocking(true).unwrap();
            sock
        })
        .join()
        .unwrap()
    })
}

const PROBE_PORT: u16 = 9099;

/// The harness's own address on the bridge, where its clients live.
const CONTROL: std::net::Ipv4Addr = std::net::Ipv4Addr::new(198, 18, 0, 1);

/// Which ordered pairs (from, to) deliver a datagram now: every node
/// sends to every other and to the harness's namespace (`control`), which
/// sends to every node, three times each, and each reads what arrived.
fn reachable(nodes: &[NodeProc], sockets: &[UdpSocket], control: &UdpSocket) -> Links {
    let everyone: Vec<(&str, std::net::Ipv4Addr, &UdpSocket)> = nodes
        .iter()
        .zip(sockets)
        .map(|(n, s)| (n.id.as_str(), n.addr, s))
        .chain(std::iter::once(("control", CONTROL, control)))
        .collect();
    for (_, _, s) in &everyone {
        let mut buf = [0u8; 64];
        while s.recv_from(&mut buf).is_ok() {} // stale datagrams
    }
    for _ in 0..3 {
        for (from, _, s) in &everyone {
            for (_, addr, _) in everyone.iter().filter(|t| t.0 != *from) {
                let _ = s.send_to(from.as_bytes(), (*addr, PROBE_PORT));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut got = BTreeSet::new();
    for (to, _, s) in &everyone {
        let mut buf = [0u8; 64];
        while let Ok((n, _)) = s.recv_from(&mut buf) {
            got.insert((
                String::from_utf8_lossy(&buf[..n]).into_owned(),
                to.to_string(),
            ));
        }
    }
    got
}

/// Ordered pairs of node ids (from, to).
type Links = BTreeSet<(String, String)>;

/// The last partition op of the history: its index, `f` and cut links.
fn last_partition(dir: &Path) -> Option<(u64, String, Links)> {
    let ops = history(dir);
    let op = ops.iter().rev().find(|o| {
        o["process"] == "nemesis"
            && matches!(o["f"].as_str(), Some("start-partition" | "stop-partition"))
    })?;
    let cut = op["value"]["cut"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| Some((l[0].as_str()?.to_string(), l[1].as_str()?.to_string())))
        .collect();
    Some((op["index"].as_u64()?, op["f"].as_str()?.to_string(), cut))
}

#[test]
fn the_partition_nemesis_on_netns_cuts_exactly_what_the_history_says() {
    if !netns_available("the_partition_nemesis_on_netns_cuts_exactly_what_the_history_says") {
        return;
    }
    let mut h = run(
        "--network netns --nemesis partition --partition-shapes one-way,bridge,isolate-leader \
         --nemesis-interval 2 --time-limit 60 --seed 31 --concurrency 3 --rate 50",
    );
    assert!(
        eventually(Duration::from_secs(60), || nodes_of(&h).len() == 3),
        "three nodes never ran"
    );
    let nodes = nodes_of(&h);
    let sockets: Vec<UdpSocket> = nodes
        .iter()
        .map(|n| socket_in(n.pid, SocketAddr::from((n.addr, PROBE_PORT))))
        .collect();
    // The harness's namespace: its clients are never cut off.
    let control = socket_in(h.child.id(), SocketAddr::from((CONTROL, PROBE_PORT)));
    let mut ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    ids.push("control".into());
    let all: Links = ids
        .iter()
        .flat_map(|a| ids.iter().map(move |b| (a.clone(), b.clone())))
        .filter(|(a, b)| a != b)
        .collect();
    let dir = {
        assert!(eventually(Duration::from_secs(30), || h
            .store
            .path()
            .join("latest")
            .exists()));
        h.latest()
    };
    // Shapes seen cut exactly, and whether a healed network was probed.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut healed = false;
    let deadline = Instant::now() + Duration::from_secs(90);
    while (!seen.contains_key("one-way") || seen.len() < 2 || !healed) && Instant::now() < deadline
    {
        let before = last_partition(&dir);
        let got = reachable(&nodes, &sockets, &control);
        std::thread::sleep(Duration::from_millis(100));
        let after = last_partition(&dir);
        if before.as_ref().map(|b| b.0) != after.as_ref().map(|a| a.0) {
            continue; // the network changed while probing
        }
        match before {
            Some((index, f, cut)) if f == "start-partition" => {
                let want: BTreeSet<_> = all.difference(&cut).cloned().collect();
                assert_eq!(
                    got, want,
                    "history op {index} cut {cut:?}, but the probes went through {got:?}"
                );
                let ops = history(&dir);
                let shape = ops[index as usize]["value"]["shape"]
                    .as_str()
                    .unwrap()
                    .to_string();
                if shape == "one-way" {
                    let back: BTreeSet<_> =
                        cut.iter().map(|(a, b)| (b.clone(), a.clone())).collect();
                    assert!(back.is_subset(&got), "a one-way cut cut both ways");
                }
                *seen.entry(shape).or_default() += 1;
            }
            _ => {
                assert_eq!(got, all, "nothing is cut, yet some probes were lost");
                healed = true;
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        seen.contains_key("one-way") && seen.len() >= 2 && healed,
        "probed too little: {seen:?}, healed {healed}"
    );
    println!("partitions probed and found exact, by shape: {seen:?}; a healed network too");
    let pid = h.child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    h.wait(Duration::from_secs(30));
    h.assert_no_nodes_left();
}

#[test]
fn a_netns_run_with_partitions_packet_faults_kills_and_pauses_is_valid() {
    if !netns_available("a_netns_run_with_partitions_packet_faults_kills_and_pauses_is_valid") {
        return;
    }
    let mut h = run(
        "--network netns --nemesis partition,packet,kill,pause --nemesis-interval 1 \
         --time-limit 10 --seed 41 --concurrency 6",
    );
    let out = h.expect_exit(Duration::from_secs(180), 0);
    assert!(out.contains("network: netns"), "{out}");
    assert!(out.contains("result: valid"), "{out}");
    let dir = h.latest();
    let run = read_json(&dir.join("run.json"));
    assert_eq!(run["options"]["network"], "netns");
    assert_eq!(run["network"]["kind"], "netns");
    for n in ["n1", "n2", "n3"] {
        let client = run["network"]["members"][n]["client"].as_str().unwrap();
        assert!(client.starts_with("198.18."), "{n} listens on {client}");
    }
    let ops = history(&dir);
    let starts: Vec<&Value> = ops
        .iter()
        .filter(|o| o["f"] == "start-packet")
        .map(|o| &o["value"])
        .collect();
    assert!(!starts.is_empty(), "no packet fault in the run");
    for v in &starts {
        assert!(!v["behaviours"].as_array().unwrap().is_empty(), "{v}");
        assert!(!v["links"].as_array().unwrap().is_empty(), "{v}");
    }
    assert!(ops.iter().any(|o| o["f"] == "stop-packet"));
    for kind in ["partition", "kill", "pause"] {
        assert!(
            ops.iter().any(|o| o["f"] == format!("start-{kind}")),
            "no start-{kind}"
        );
    }
    // The emulator saw the nodes' packets.
    let queued: u64 = run["network"]["links"]
        .as_object()
        .unwrap()
        .values()
        .map(|l| l["emulator"]["queued"].as_u64().unwrap_or(0))
        .sum();
    assert!(queued > 0, "{:#}", run["network"]["links"]);
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(
        report.contains("fault fk-packet"),
        "no packet row in the report"
    );
    h.assert_no_nodes_left();
}

#[test]
fn the_proxies_still_run_partitions_kills_and_figure8() {
    let mut h = run(
        "--network proxy --nemesis partition,kill,pause --nemesis-interval 0.7 --time-limit 5 \
         --seed 42 --concurrency 6",
    );
    let out = h.expect_exit(Duration::from_secs(120), 0);
    assert!(out.contains("network: proxy"), "{out}");
    let record = read_json(&h.latest().join("run.json"));
    assert_eq!(record["network"]["kind"], "proxy");
    assert_eq!(
        record["options"]["nemesis"],
        serde_json::json!(["partition", "kill", "pause"])
    );
    let client = record["network"]["members"]["n1"]["client"]
        .as_str()
        .unwrap();
    assert!(client.starts_with("127.0.0.1:"), "{client}");
    h.assert_no_nodes_left();

    // `all` on proxies leaves packet out rather than refusing it.
    let mut h = run("--network proxy --nemesis all --time-limit 2 --seed 43");
    h.expect_exit(Duration::from_secs(60), 0);
    let record = read_json(&h.latest().join("run.json"));
    let kinds = record["options"]["nemesis"].as_array().unwrap().clone();
    for kind in ["partition", "kill", "pause"] {
        assert!(kinds.contains(&serde_json::json!(kind)), "{kinds:?}");
    }
    assert!(!kinds.contains(&serde_json::json!("packet")), "{kinds:?}");

    let mut h = run(
        "--network proxy --time-limit 14 --nemesis figure8 --nemesis-interval 1 --concurrency 30 \
         --rate 500 --node-arg=--max-append-bytes=512 --seed 5",
    );
    h.expect_exit(Duration::from_secs(120), 0);
    let ops = history(&h.latest());
    assert!(
        ops.iter()
            .any(|o| o["f"] == "figure8-step" && o["value"]["step"] == "cut off the old leader"),
        "no figure-8 round reached its last step on proxies"
    );
}

#[test]
fn namespaces_where_they_cannot_run_are_one_line_and_exit_254() {
    // A missing tool: nothing on PATH.
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--network", "netns", "--time-limit", "1"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(status(&out), 254, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(
        err,
        "error: --network netns: network namespaces unavailable: ip not found on PATH \
         (install iproute2)\n"
    );
    // The default falls back to the proxies, and says why.
    let store = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--time-limit", "1", "--store"])
        .arg(store.path())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(status(&out), 0, "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with(
            "network: proxy (nodes on loopback ports; network namespaces unavailable: ip not found"
        ),
        "{stdout}"
    );
    let latest = std::fs::canonicalize(store.path().join("latest")).unwrap();
    assert_eq!(
        read_json(&latest.join("run.json"))["options"]["network"],
        "proxy"
    );

    // A missing privilege, where setpriv can drop it.
    let dropped = Command::new("setpriv")
        .args([
            "--inh-caps=-net_admin,-sys_admin",
            "--bounding-set=-net_admin,-sys_admin",
        ])
        .arg(env!("CARGO_BIN_EXE_harness"))
        .args(["bench", "--network", "netns", "--duration", "1"])
        .output();
    match dropped {
        Ok(out) if status(&out) == 254 => {
            let err = text(&out.stderr);
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(
                err.contains("--network netns") && err.contains("CAP_"),
                "{err}"
            );
        }
        Ok(out) if text(&out.stderr).contains("setpriv") => {
            eprintln!("skipped the privilege case: setpriv cannot drop capabilities here");
        }
        Ok(out) => panic!(
            "without CAP_NET_ADMIN: exit {:?}: {}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        ),
        Err(_) => eprintln!("skipped the privilege case: no setpriv"),
    }
}

#[test]
fn what_only_namespaces_can_do_is_refused_on_proxies_with_254() {
    for (args, needle) in [
        (
            &["run", "--network", "proxy", "--nemesis", "packet"][..],
            "--nemesis packet needs --network netns",
        ),
        (
            &[
                "run",
                "--network",
                "proxy",
                "--nemesis",
                "partition",
                "--partition-shapes",
                "one-way",
            ][..],
            "one-way needs --network netns",
        ),
        (
            &[
                "test-all",
                "--network",
                "proxy",
                "--nemeses",
                "none;packet,kill",
            ][..],
            "--nemesis packet needs --network netns",
        ),
        (
            &["run", "--network", "carrier-pigeon"][..],
            "carrier-pigeon",
        ),
        (&["run", "--nemesis", "figure8,packet"][..], "figure8"),
        (
            &["run", "--packet-behaviours", "delay,jitter"][..],
            "jitter",
        ),
    ] {
        let out = harness(args);
        assert_eq!(status(&out), 254, "{args:?}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// How a run ends in the leak test.
#[derive(Clone, Copy, Debug)]
enum End {
    Finish,
    Interrupt,
    Kill,
}

/// What the machine's own network namespace shows: links, named
/// namespaces, nftables tables, qdiscs (read only).
fn machine_view() -> String {
    let out = |prog: &str, args: &[&str]| {
        Command::new(prog)
            .args(args)
            .output()
            .map(|o| text(&o.stdout))
            .unwrap_or_default()
    };
    let links: BTreeSet<String> = out("ip", &["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(str::to_string))
        .collect();
    format!(
        "{links:?}\n{}\n{}\n{}",
        out("ip", &["netns", "list"]),
        out("nft", &["list", "tables"]),
        out("tc", &["qdisc", "show"])
    )
}

#[test]
fn nothing_of_the_network_is_left_after_a_run_ctrl_c_or_kill_9() {
    if !netns_available("nothing_of_the_network_is_left_after_a_run_ctrl_c_or_kill_9") {
        return;
    }
    let before = machine_view();
    for end in [End::Finish, End::Interrupt, End::Kill] {
        let limit = match end {
            End::Finish => 8,
            _ => 60,
        };
        let mut h = run(&format!(
            "--network netns --nemesis partition,packet --nemesis-interval 1 --time-limit {limit} \
             --fault-targets all --seed 51"
        ));
        let harness_pid = h.child.id();
        // Wait until faults are in force: rules, queues and emulators exist.
        assert!(
            eventually(Duration::from_secs(90), || {
                std::fs::canonicalize(h.store.path().join("latest"))
                    .map(|d| history(&d).iter().any(|o| o["f"] == "start-packet"))
                    .unwrap_or(false)
            }),
            "{end:?}: no packet fault started"
        );
        let mut namespaces: Vec<u64> = nodes_of(&h)
            .iter()
            .filter_map(|n| ns_inode(n.pid, "net"))
            .collect();
        assert_eq!(namespaces.len(), 3, "{end:?}: the nodes' namespaces");
        let own = ns_inode(harness_pid, "net").unwrap();
        let machine = ns_inode(std::process::id(), "net").unwrap();
        assert_ne!(
            own, machine,
            "{end:?}: the harness is in a private namespace"
        );
        namespaces.push(own);
        let in_use = netlab::testing::netns_in_use();
        assert!(namespaces.iter().all(|n| in_use.contains(n)));
        let pid = harness_pid.to_string();
        match end {
            End::Finish => {
                h.expect_exit(Duration::from_secs(120), 0);
            }
            End::Interrupt => {
                Command::new("kill").args(["-INT", &pid]).status().unwrap();
                h.expect_exit(Duration::from_secs(30), 255);
            }
            End::Kill => {
                Command::new("kill").args(["-KILL", &pid]).status().unwrap();
                h.wait(Duration::from_secs(30));
            }
        }
        h.assert_no_nodes_left();
        assert!(
            eventually(Duration::from_secs(10), || {
                let in_use = netlab::testing::netns_in_use();
                namespaces.iter().all(|n| !in_use.contains(n))
            }),
            "{end:?}: a namespace of the run outlived it"
        );
        assert_eq!(
            machine_view(),
            before,
            "{end:?}: the machine's namespace changed"
        );
    }
}

/// The self-test seeds a bug into the default suite on `--network netns`
/// and stops at the first anomaly: the two snapshot bugs, which only the
/// replica-state checker sees, are caught (built with `--features bugs`;
/// `harness selftest` runs every bug).
#[cfg(feature = "bugs")]
#[test]
fn the_self_test_on_netns_catches_bugs_with_the_default_suite() {
    if !netns_available("the_self_test_on_netns_catches_bugs_with_the_default_suite") {
        return;
    }
    let mut h = Running::start(
        "selftest",
        &[
            "--network",
            "netns",
            "--seeds",
            "1",
            "--bugs",
            "install-skips-apply,snapshot-drops-sessions",
        ],
    );
    let out = h.expect_exit(Duration::from_secs(900), 0);
    assert!(out.starts_with("network: netns"), "{out}");
    for bug in ["install-skips-apply", "snapshot-drops-sessions"] {
        assert!(
            out.lines().any(|l| l.starts_with("=== ")
                && l.contains(bug)
                && l.contains("caught by")
                && l.contains("replica-state")),
            "{bug} not caught on netns: {out}"
        );
        // The suite stopped at the catch: no run of the last cell.
        assert!(
            !out.contains(&format!("{bug} seed 1: partition+packet+kill+pause")),
            "{out}"
        );
    }
}
