//! `harness run --db etcd` end to end: real etcd members started by the
//! harness (each in its namespace on netns, on loopback otherwise), kills,
//! the register workload, every checker, and no member left behind.
//! Bad combinations exit 254 with the reason.
//!
//! Skipped, with the reason printed, where etcd is not installed (`.ci/run`
//! installs it). Every process the harness starts dies with it
//! (`Running`'s drop kills the harness, and the members have
//! PR_SET_PDEATHSIG); every wait is bounded.

mod common;

use std::time::Duration;

use common::cli::{Running, read_json};

fn etcd_or_skip() -> bool {
    match harness::etcd::member::find_binary(None) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// netns where the test may build namespaces (root), else proxies: kills
/// need neither.
fn network() -> &'static str {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        "netns"
    } else {
        "proxy"
    }
}

#[test]
fn etcd_under_kills_is_valid_with_every_checker_deciding() {
    if !etcd_or_skip() {
        return;
    }
    let args = format!(
        "--db etcd --nemesis kill --time-limit 8 --nemesis-interval 1.5 --seed 3 --network {}",
        network()
    );
    let mut h = Running::start("run", &args.split_whitespace().collect::<Vec<_>>());
    let out = h.expect_exit(Duration::from_secs(180), 0);
    assert!(out.contains("result: valid"), "{out}");
    let dir = h.latest();
    let results = read_json(&dir.join("results.json"));
    let checkers = &results["checkers"];
    // Neither is skipped: etcd's logs and hashes were read.
    assert_eq!(checkers["election"]["valid"], true, "{checkers}");
    assert!(checkers["election"]["terms"].as_u64().unwrap() >= 1);
    assert!(checkers["election"].get("skipped").is_none(), "{checkers}");
    assert_eq!(checkers["state-machine"]["valid"], true, "{checkers}");
    assert_eq!(checkers["state-machine"]["indexes"], 1, "{checkers}");
    let run = read_json(&dir.join("run.json"));
    assert_eq!(run["options"]["db"], "etcd");
    let kills: u64 = run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kills"].as_u64().unwrap())
        .sum();
    assert!(kills >= 1, "no kill in {}", run["nodes"]);
    let hashes = read_json(&dir.join("hashkv.json"));
    assert_eq!(hashes["hashes"].as_object().unwrap().len(), 3, "{hashes}");
    let log = std::fs::read_to_string(dir.join("nodes/n1/node.log")).unwrap();
    assert!(log.contains("became"), "n1's log has no role change");
    h.assert_no_nodes_left();
}

#[test]
fn partitions_on_proxies_and_a_missing_etcd_are_bad_arguments() {
    let mut h = Running::start(
        "run",
        &[
            "--db",
            "etcd",
            "--nemesis",
            "partition",
            "--network",
            "proxy",
        ],
    );
    let out = h.expect_exit(Duration::from_secs(30), 254);
    // Without etcd the binary is what is missing; with it, the network.
    assert!(
        out.contains("A→B apart from C→B") || out.contains("etcd-server"),
        "{out}"
    );
    let mut h = Running::start(
        "run",
        &[
            "--db",
            "etcd",
            "--db-bin",
            "/nonexistent/etcd",
            "--time-limit",
            "1",
        ],
    );
    let out = h.expect_exit(Duration::from_secs(30), 254);
    assert!(out.contains("/nonexistent/etcd"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{out}"
    );
}
