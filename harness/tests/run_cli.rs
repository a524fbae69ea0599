//! `harness run` end to end: a real 3-node cluster in node mode, faults,
//! clients, the run directory, exit codes, and no node left behind — also
//! when the harness is interrupted or killed.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cli::{read_json, run};
use serde_json::Value;

/// `harness run --store TMP ARGS`, the arguments as one would type them.
fn history(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_run_with_every_fault_is_recorded_checked_and_cleaned_up() {
    let mut h =
        run("--time-limit 6 --nemesis all --nemesis-interval 0.7 --seed 11 --concurrency 6");
    let out = h.expect_exit(Duration::from_secs(120), 0);
    assert!(out.contains("result: valid"), "{out}");
    let dir = h.latest();
    for f in ["history.jsonl", "results.json", "run.json"] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    for n in ["n1", "n2", "n3"] {
        let node = dir.join("nodes").join(n);
        assert!(node.join("events.jsonl").is_file(), "{n} events");
        assert!(node.join("node.log").is_file(), "{n} log");
        assert!(node.join("data").is_dir(), "{n} data dir");
    }

    let ops = history(&dir);
    let faults: Vec<&str> = ops
        .iter()
        .filter(|o| o["process"] == "nemesis")
        .map(|o| o["f"].as_str().unwrap())
        .collect();
    for kind in ["partition", "kill", "pause"] {
        assert!(
            faults.iter().any(|f| *f == format!("start-{kind}")),
            "no start-{kind} in {faults:?}"
        );
    }
    // The last fault op is the recovery; the convergence the harness saw
    // after it may follow.
    let last = faults.iter().rposition(|f| *f != "convergence");
    assert_eq!(last.map(|i| faults[i]), Some("recover"), "{faults:?}");
    let ok = ops.iter().filter(|o| o["type"] == "ok").count();
    assert!(ok > 50, "only {ok} ok operations");
    // Indexes are dense and every completion follows its invocation.
    for (i, o) in ops.iter().enumerate() {
        assert_eq!(o["index"], i as u64);
    }
    // The final reads come after the recovery, one per key used.
    let recover = ops.iter().position(|o| o["f"] == "recover").unwrap();
    assert!(
        ops[recover..]
            .iter()
            .any(|o| o["f"] == "read" && o["type"] == "ok")
    );

    // Each leader elected during the load (a term above the first
    // leader's) had the keys in use read at it at once: probe processes,
    // each used for one read.
    let mut leader_terms: Vec<u64> = Vec::new();
    for n in ["n1", "n2", "n3"] {
        let text = std::fs::read_to_string(dir.join("nodes").join(n).join("events.jsonl")).unwrap();
        for e in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            if e["event"] == "role" && e["role"] == "leader" {
                leader_terms.push(e["term"].as_u64().unwrap());
            }
        }
    }
    let first = leader_terms.iter().min().copied().unwrap_or(0);
    let probes: Vec<&Value> = ops
        .iter()
        .filter(|o| o["process"].as_u64().is_some_and(|p| p >= 2_000_000_000))
        .collect();
    if leader_terms.iter().any(|&t| t > first) {
        assert!(
            !probes.is_empty(),
            "new leaders in terms {leader_terms:?} but no probe"
        );
    }
    for p in &probes {
        assert_eq!(p["f"], "read", "{p}");
        let uses = probes
            .iter()
            .filter(|q| q["process"] == p["process"])
            .count();
        assert!(uses <= 2, "probe process reused: {p}");
    }

    let results = read_json(&dir.join("results.json"));
    assert_eq!(results["valid"], true, "{results:#}");
    // Every node's own state was dumped after the final reads and compared.
    let replicas = read_json(&dir.join("replicas.json"));
    assert_eq!(
        replicas["nodes"].as_array().unwrap().len(),
        3,
        "{replicas:#}"
    );
    let c = &results["checkers"];
    assert!(
        c["replica-state"]["final_compared"]
            .as_array()
            .unwrap()
            .len()
            >= 2,
        "{c:#}"
    );
    for name in ["replica-state", "availability", "node-health"] {
        assert_eq!(c[name]["valid"], true, "{name}: {c:#}");
    }
    let run = read_json(&dir.join("run.json"));
    assert_eq!(run["seed"], 11);
    assert!(run["command"].as_str().unwrap().contains("--seed 11"));
    assert!(run["finished"].is_string());
    h.assert_no_nodes_left();
}

#[test]
fn an_append_run_without_faults_is_valid() {
    let mut h = run("--time-limit 2 --workload append --nodes 1 --seed 3");
    h.expect_exit(Duration::from_secs(60), 0);
    let ops = history(&h.latest());
    assert!(ops.iter().any(|o| o["f"] == "append" && o["type"] == "ok"));
    h.assert_no_nodes_left();
}

#[test]
fn workers_sharing_streams_under_every_fault_keep_the_history_valid() {
    // Kv.Stream batches many calls per message: the checkers judge that
    // path under kills, pauses and partitions as they judge the unary one.
    let mut h = run(
        "--time-limit 6 --nemesis all --nemesis-interval 0.7 --workload append --api stream --concurrency 8 --seed 12",
    );
    let out = h.expect_exit(Duration::from_secs(120), 0);
    assert!(out.contains("result: valid"), "{out}");
    let dir = h.latest();
    assert_eq!(read_json(&dir.join("run.json"))["options"]["api"], "stream");
    let ops = history(&dir);
    let ok = ops.iter().filter(|o| o["type"] == "ok").count();
    assert!(ok > 50, "only {ok} ok operations");
    assert!(
        ops.iter()
            .any(|o| o["process"] == "nemesis" && o["f"] == "start-kill"),
        "no kill in the run"
    );
    h.assert_no_nodes_left();
}

#[test]
fn bad_flags_exit_254_and_name_the_flag() {
    for (args, needle) in [
        ("--nemesis flood", "flood"),
        ("--nodes 0", "--nodes"),
        ("--workload bank", "bank"),
        ("--time-limit -3", "-3"),
        ("--node-bin /nonexistent/node", "/nonexistent/node"),
        ("--partition-shapes isolate-leader,zigzag", "zigzag"),
        ("--nemesis figure8,partition", "figure8"),
        ("--api carrier-pigeon", "carrier-pigeon"),
    ] {
        let mut h = run(args);
        let out = h.expect_exit(Duration::from_secs(30), 254);
        assert!(out.contains(needle), "{args:?}: {out}");
    }
}

#[test]
fn interrupting_a_run_stops_every_node() {
    let mut h = run("--time-limit 60 --nemesis kill --seed 5");
    // Wait until the cluster is up and clients are running.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let started = std::fs::canonicalize(h.store.path().join("latest"))
            .ok()
            .and_then(|d| std::fs::metadata(d.join("history.jsonl")).ok())
            .is_some_and(|m| m.len() > 0);
        if started {
            break;
        }
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!h.nodes().is_empty(), "nodes are running");
    let pid = h.child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let out = h.expect_exit(Duration::from_secs(30), 255);
    assert!(out.contains("interrupted"), "{out}");
    h.assert_no_nodes_left();
}

#[test]
fn a_killed_harness_takes_its_nodes_with_it() {
    let mut h = run("--time-limit 60 --seed 6");
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.nodes().len() < 3 {
        assert!(Instant::now() < deadline, "nodes never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    h.child.kill().unwrap();
    h.wait(Duration::from_secs(10));
    h.assert_no_nodes_left();
}

#[test]
fn nodes_that_fall_behind_catch_up_by_snapshot_and_the_run_stays_valid() {
    // Kills of about a second at 300 ops/s leave a node hundreds of
    // entries behind, far past the leader's compaction every 20.
    let mut h = run(
        "--time-limit 12 --nemesis kill,partition --nemesis-interval 1 --snapshot-every 20 --rate 300 --seed 17",
    );
    h.expect_exit(Duration::from_secs(120), 0);
    let dir = h.latest();
    let mut taken = 0;
    let mut installed = 0;
    for n in ["n1", "n2", "n3"] {
        let events =
            std::fs::read_to_string(dir.join("nodes").join(n).join("events.jsonl")).unwrap();
        for line in events
            .lines()
            .filter(|l| l.contains("\"event\":\"snapshot\""))
        {
            let e: Value = serde_json::from_str(line).unwrap();
            match e["how"].as_str() {
                Some("taken") => taken += 1,
                Some("installed") => installed += 1,
                other => panic!("snapshot event without how: {other:?} in {line}"),
            }
        }
    }
    assert!(taken >= 3, "only {taken} snapshots taken");
    assert!(
        installed >= 1,
        "no node caught up by InstallSnapshot ({taken} taken)"
    );
    // Snapshots log state digests, which the replicas must agree on.
    let results = read_json(&dir.join("results.json"));
    let compared = results["checkers"]["replica-state"]["compared_indexes"].as_u64();
    assert!(compared.unwrap_or(0) > 0, "{results:#}");
    let run = read_json(&dir.join("run.json"));
    assert_eq!(run["options"]["snapshot_every"], 20);
    h.assert_no_nodes_left();
}

#[test]
fn the_figure8_nemesis_walks_a_correct_cluster_through_figure_8_without_loss() {
    // Small AppendEntries, so the old leader's entries need several; the
    // correct node still commits nothing of an old term by counting.
    let mut h = run(
        "--time-limit 20 --nemesis figure8 --nemesis-interval 1 --concurrency 30 --rate 500 --node-arg=--max-append-bytes=512 --seed 5",
    );
    let out = h.expect_exit(Duration::from_secs(120), 0);
    let ops = history(&h.latest());
    let steps: Vec<&str> = ops
        .iter()
        .filter(|o| o["f"] == "figure8-step")
        .filter_map(|o| o["value"]["step"].as_str())
        .collect();
    assert!(
        steps.contains(&"cut off the old leader"),
        "no round reached its last step: {steps:?}"
    );
    let finished = ops
        .iter()
        .filter(|o| o["f"] == "stop-figure8" && o["value"]["leader"].is_string())
        .count();
    assert!(finished >= 1, "no round finished: {out}");
    h.assert_no_nodes_left();
}
