//! Membership faults end to end: the `member` and `wipe` nemeses on real
//! clusters, the wiped node re-added, `--initial-members`, and the
//! `convergence` checker, which must flag a follower that never catches up
//! (the seeded bug `ignore-lost-tail`) and pass the correct node on the
//! same faults.

mod common;

use std::path::Path;
use std::time::Duration;

use common::cli::{netns_available, read_json, run};
use serde_json::Value;

fn fuse_available(test: &str) -> bool {
    match lazyfs::check_available() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("skipped {test}: FUSE cannot run here: {e}");
            false
        }
    }
}

/// The history's nemesis ops named `f`.
fn nemesis_ops(dir: &Path, f: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|o| o["process"] == "nemesis" && o["f"] == f)
        .map(|o| o["value"].clone())
        .collect()
}

#[test]
fn a_cluster_that_shrinks_and_grows_under_kills_and_partitions_is_valid() {
    if !netns_available("a_cluster_that_shrinks_and_grows_under_kills_and_partitions_is_valid") {
        return;
    }
    let mut h = run(
        "--nodes 5 --initial-members 3 --nemesis member,kill,partition --nemesis-interval 1.5 \
         --time-limit 14 --seed 21 --concurrency 6",
    );
    let out = h.expect_exit(Duration::from_secs(180), 0);
    assert!(out.contains("result: valid"), "{out}");
    let dir = h.latest();
    let changes: Vec<Value> = nemesis_ops(&dir, "start-member")
        .into_iter()
        .chain(nemesis_ops(&dir, "stop-member"))
        .collect();
    // The first change can only grow (3 voters of 5 is the least), and the
    // history says what changed.
    let done: Vec<&Value> = changes.iter().filter(|c| c["done"] == true).collect();
    assert!(
        done.iter().any(|c| c["action"] == "grow"),
        "no grow done: {changes:#?}"
    );
    for c in &done {
        let voters = c["voters"].as_array().unwrap();
        assert!(voters.len() >= 3, "fewer than 3 voters: {c}");
        let node = &c["nodes"][0];
        let member = voters.contains(node) || c["learners"].as_array().unwrap().contains(node);
        assert_eq!(member, c["action"] == "grow", "{c}");
    }
    let results = read_json(&dir.join("results.json"));
    assert_eq!(
        results["checkers"]["convergence"]["valid"], true,
        "{results:#}"
    );
    assert!(results["checkers"]["convergence"]["skipped"].is_null());
    // The leaders logged each configuration entry they appended, and each
    // kept Raft's rules for changes.
    let sm = &results["checkers"]["state-machine"];
    assert!(sm["changes"].as_u64().unwrap() >= 2, "{sm:#}");
    assert_eq!(sm["unsafe_changes"], serde_json::json!([]), "{sm:#}");
    let run = read_json(&dir.join("run.json"));
    assert_eq!(run["options"]["initial_members"], 3);
    h.assert_no_nodes_left();
}

#[test]
fn a_wiped_node_rejoins_safely_and_is_readded_under_kills() {
    let mut h = run(
        "--nemesis wipe,kill --fault-targets one,leader --nemesis-interval 1.5 --time-limit 14 \
         --seed 22 --concurrency 6",
    );
    let out = h.expect_exit(Duration::from_secs(180), 0);
    assert!(out.contains("result: valid"), "{out}");
    let dir = h.latest();
    let wiped: Vec<Value> = nemesis_ops(&dir, "start-wipe")
        .into_iter()
        .filter(|w| w["nodes"].is_array())
        .collect();
    assert!(!wiped.is_empty(), "nothing was wiped");
    let readded: Vec<Value> = nemesis_ops(&dir, "stop-wipe")
        .into_iter()
        .chain(nemesis_ops(&dir, "readd"))
        .filter(|r| r["readded"].as_array().is_some_and(|a| !a.is_empty()))
        .collect();
    assert!(!readded.is_empty(), "no wiped node was re-added");
    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["valid"], true, "{results:#}");
    // The wiped node ran as a second incarnation, which the election
    // checker tells apart.
    let incarnations = &results["checkers"]["election"]["incarnations"];
    let node = wiped[0]["nodes"][0].as_str().unwrap();
    assert!(
        incarnations[node].as_u64().unwrap_or(0) >= 2,
        "{incarnations}"
    );
    let run = read_json(&dir.join("run.json"));
    let wipes: u64 = run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["wipes"].as_u64().unwrap())
        .sum();
    assert_eq!(wipes, wiped.len() as u64);
    h.assert_no_nodes_left();
}

/// The faults that make a follower lose the tail of its log: power cuts of
/// one node at a time, on nodes that never fsync.
const LOST_TAIL: &str = "--nemesis power --fault-targets one --node-arg=--fsync=never \
                         --nemesis-interval 2 --time-limit 12 --concurrency 6";

#[test]
fn the_correct_node_converges_after_losing_log_tails() {
    if !fuse_available("the_correct_node_converges_after_losing_log_tails") {
        return;
    }
    let mut h = run(&format!("{LOST_TAIL} --seed 11"));
    let out = h.expect_exit(Duration::from_secs(180), 0);
    assert!(out.contains("result: valid"), "{out}");
    let results = read_json(&h.latest().join("results.json"));
    let c = &results["checkers"]["convergence"];
    assert_eq!(c["valid"], true, "{c}");
    assert_eq!(c["converged"].as_array().unwrap().len(), 3, "{c}");
    h.assert_no_nodes_left();
}

/// `ignore-lost-tail` brings finding 2 back: the leader never catches up a
/// follower that came back behind, and the convergence checker says which
/// node and where it stands. Power cuts hit a random node, so a seed whose
/// last cut hit the leader (a new leader starts afresh) can miss: up to
/// three seeds.
#[cfg(feature = "bugs")]
#[test]
fn the_convergence_checker_names_a_follower_that_never_catches_up() {
    if !fuse_available("the_convergence_checker_names_a_follower_that_never_catches_up") {
        return;
    }
    let mut seen = Vec::new();
    for seed in [11, 12, 13] {
        let mut h = run(&format!(
            "{LOST_TAIL} --node-arg=--bug=ignore-lost-tail --seed {seed}"
        ));
        let (code, out) = h.wait(Duration::from_secs(180));
        h.assert_no_nodes_left();
        let results = read_json(&h.latest().join("results.json"));
        let c = results["checkers"]["convergence"].clone();
        if code == 1 && c["valid"] == false {
            assert!(out.contains("convergence    INVALID"), "{out}");
            let lagging = c["lagging"].as_array().unwrap();
            assert!(!lagging.is_empty(), "{c}");
            let first = &lagging[0];
            let e = c["explanation"].as_str().unwrap();
            assert!(
                e.contains(&format!(
                    "{} did not reach the leader's commit index {}",
                    first["node"].as_str().unwrap(),
                    c["target_index"]
                )),
                "{e}"
            );
            assert!(first["commit"].as_u64().unwrap() < c["target_index"].as_u64().unwrap());
            return;
        }
        seen.push(format!("seed {seed}: exit {code}, convergence {c}"));
    }
    panic!("ignore-lost-tail was never caught: {seen:#?}");
}

#[test]
fn initial_members_below_nodes_needs_the_member_nemesis_and_netns() {
    for (args, says) in [
        (
            "--nodes 5 --initial-members 3 --nemesis kill",
            "only --nemesis member adds",
        ),
        (
            "--nodes 3 --initial-members 4 --nemesis member",
            "must be between 1 and --nodes",
        ),
        (
            "--nodes 5 --initial-members 3 --nemesis member --network proxy",
            "needs --network netns",
        ),
        ("--convergence-timeout -1", "--convergence-timeout"),
    ] {
        let mut h = run(args);
        let out = h.expect_exit(Duration::from_secs(30), 254);
        assert!(out.contains(says), "{args}: {out}");
    }
}
