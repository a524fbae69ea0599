//! `harness run --nemesis power` end to end: real node processes on lazyfs
//! disks whose power is cut. The correct node stays valid; one that never
//! fsyncs loses acknowledged writes and the report names them; where FUSE
//! cannot run, asking for power is one line and exit 254, and `all` goes
//! on without it; no mount is left behind after a normal end, Ctrl-C or
//! kill -9 of the harness, and the data directories stay as the nodes
//! left them.
//!
//! Skipped (saying why) where this test process cannot mount FUSE itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::cli::{Running, expect_status, harness, read_json, run, text};
use serde_json::Value;

fn fuse_runs_here() -> bool {
    match lazyfs::check_available() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("skipped: FUSE cannot run here: {e}");
            false
        }
    }
}

fn history(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// lazyfs mount points under `store` in the mount namespace of `pid`
/// (`self` for this process, which is in the machine's).
fn lazyfs_mounts(pid: &str, store: &Path) -> Vec<String> {
    let store = store.canonicalize().unwrap();
    let store = store.to_str().unwrap();
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" - fuse.lazyfs "))
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(store))
        .map(str::to_string)
        .collect()
}

/// lazyfs mounts under `store` in any process's namespace.
fn lazyfs_mounts_anywhere(store: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if pid.parse::<u32>().is_ok() {
            found.extend(lazyfs_mounts(&pid, store));
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Each node's data directory holds its WAL, and no mount's shadow.
fn assert_data_dirs_intact(dir: &Path, shadow_allowed: bool) {
    for n in ["n1", "n2", "n3"] {
        let data = dir.join("nodes").join(n).join("data");
        let wal = std::fs::metadata(data.join("raft.wal"))
            .unwrap_or_else(|e| panic!("{}: no raft.wal: {e}", data.display()));
        assert!(wal.len() > 0, "{n}: empty raft.wal");
        if !shadow_allowed {
            assert!(!data.join(".lazyfs").exists(), "{n}: a shadow was left");
        }
        assert!(
            dir.join("nodes").join(n).join("events.jsonl").is_file(),
            "{n}: events.jsonl beside the data directory"
        );
        assert!(
            !data.join("events.jsonl").exists(),
            "{n}: events.jsonl on the disk whose power is cut"
        );
    }
}

/// Waits until the run has cut some power and its nodes run again.
fn wait_for_a_power_cut(h: &Running) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(dir) = std::fs::canonicalize(h.store.path().join("latest"))
            && std::fs::read_to_string(dir.join("history.jsonl"))
                .is_ok_and(|t| t.contains("\"stop-power\""))
        {
            return dir;
        }
        assert!(Instant::now() < deadline, "no power cut ended in time");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_correct_node_survives_power_cuts_and_nothing_is_left_mounted() {
    if !fuse_runs_here() {
        return;
    }
    let mut h = run("--nemesis power --time-limit 10 --nemesis-interval 1 --seed 3");
    let out = h.expect_exit(Duration::from_secs(180), 0);
    assert!(out.contains("result: valid"), "{out}");
    let dir = h.latest();
    let ops = history(&dir);
    let cuts: Vec<&Value> = ops.iter().filter(|o| o["f"] == "start-power").collect();
    assert!(!cuts.is_empty(), "no power cut in {}", dir.display());
    for cut in &cuts {
        let v = &cut["value"];
        assert_eq!(v["loss"], "all");
        for n in v["nodes"].as_array().unwrap() {
            let lost = &v["lost"][n.as_str().unwrap()];
            assert!(lost["bytes_lost"].is_u64(), "{cut}");
            assert!(lost["files_changed"].is_u64(), "{cut}");
            assert!(lost.get("errors").is_none(), "{cut}");
        }
    }
    assert!(ops.iter().any(|o| o["f"] == "stop-power"));
    let run = read_json(&dir.join("run.json"));
    assert_eq!(run["options"]["disk"], "lazy");
    assert_eq!(run["options"]["lazyfs_metadata"], "strict");
    let offs: u64 = run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["power_offs"].as_u64().unwrap())
        .sum();
    assert!(offs >= cuts.len() as u64, "{run:#}");
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains("fault fk-power"), "no power row");
    assert!(report.contains("power cuts: what each lost"));
    assert_data_dirs_intact(&dir, false);
    assert_eq!(lazyfs_mounts_anywhere(h.store.path()), Vec::<String>::new());
    h.assert_no_nodes_left();
}

#[test]
fn a_node_that_never_fsyncs_loses_acknowledged_writes_and_the_report_names_them() {
    if !fuse_runs_here() {
        return;
    }
    // Whole-cluster cuts: nothing the nodes wrote since their last
    // snapshot is durable, so every one of them forgets writes it acked.
    let mut h = run(
        "--nemesis power --fault-targets all --time-limit 10 --nemesis-interval 1.5 --node-arg=--fsync=never --seed 4",
    );
    let out = h.expect_exit(Duration::from_secs(180), 1);
    assert!(out.contains("result: INVALID"), "{out}");
    let dir = h.latest();
    let results = read_json(&dir.join("results.json"));
    let failures = results["checkers"]["linearizable"]["failures"]
        .as_array()
        .unwrap();
    let named: Vec<&Value> = failures
        .iter()
        .filter(|f| f["lost_writes"].as_array().is_some_and(|l| !l.is_empty()))
        .collect();
    assert!(
        !named.is_empty(),
        "no failure names a lost write: {failures:#?}"
    );
    let explanation = named[0]["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("it missed the acknowledged write"),
        "{explanation}"
    );
    // The named write was acknowledged (an ok completion in the history).
    let lost = named[0]["lost_writes"][0].as_u64().unwrap();
    let ops = history(&dir);
    let invoke = &ops[lost as usize];
    assert!(
        ops.iter().any(|o| o["process"] == invoke["process"]
            && o["type"] == "ok"
            && o["index"].as_u64() > Some(lost)),
        "op {lost} was never acknowledged"
    );
    let bytes: u64 = ops
        .iter()
        .filter(|o| o["f"] == "start-power")
        .flat_map(|o| {
            o["value"]["lost"]
                .as_object()
                .unwrap()
                .values()
                .map(|l| l["bytes_lost"].as_u64().unwrap())
                .collect::<Vec<_>>()
        })
        .sum();
    assert!(bytes > 0, "the disks lost nothing");
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains("it missed the acknowledged write"));
    assert_data_dirs_intact(&dir, false);
    h.assert_no_nodes_left();
}

#[test]
fn interrupting_or_killing_a_power_run_leaves_no_mount_and_the_data_intact() {
    if !fuse_runs_here() {
        return;
    }
    for how in ["INT", "KILL"] {
        let mut h = run("--nemesis power --time-limit 120 --nemesis-interval 1 --seed 8");
        let dir = wait_for_a_power_cut(&h);
        let pid = h.child.id().to_string();
        // The mounts live in the harness's own namespace, never in ours.
        assert_eq!(lazyfs_mounts(&pid, h.store.path()).len(), 3, "{how}");
        assert_eq!(lazyfs_mounts("self", h.store.path()), Vec::<String>::new());
        Command::new("kill")
            .args([&format!("-{how}"), &pid])
            .status()
            .unwrap();
        let (code, out) = h.wait(Duration::from_secs(60));
        if how == "INT" {
            assert_eq!(code, 255, "{out}");
            assert!(out.contains("interrupted"), "{out}");
        }
        h.assert_no_nodes_left();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !lazyfs_mounts_anywhere(h.store.path()).is_empty() {
            assert!(
                Instant::now() < deadline,
                "{how}: a mount outlived the harness"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // After kill -9 nobody unmounted: a shadow directory may remain
        // (the next mount of the directory removes it).
        assert_data_dirs_intact(&dir, how == "KILL");
    }
}

/// Runs `harness ARGS` in a mount namespace whose /dev has no fuse device
/// (an empty tmpfs, with /dev/null bound back in), as in a container
/// started without `--device /dev/fuse`.
fn harness_without_dev_fuse(args: &[&str]) -> Option<Output> {
    if Command::new("unshare").arg("--version").output().is_err() {
        eprintln!("skipped: no unshare(1)");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("null"), "").unwrap();
    let script = r#"mount --bind /dev/null "$1/null" && mount -t tmpfs none /dev \
        && touch /dev/null && mount --bind "$1/null" /dev/null && shift && exec "$@""#;
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(tmp.path())
        .arg(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .unwrap();
    Some(out)
}

#[test]
fn where_fuse_cannot_run_power_is_one_line_and_all_goes_on_without_it() {
    let store = tempfile::tempdir().unwrap();
    let s = store.path().to_str().unwrap();
    let Some(out) = harness_without_dev_fuse(&["run", "--nemesis", "kill,power", "--store", s])
    else {
        return;
    };
    assert_eq!(out.status.code(), Some(254), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: --nemesis power needs FUSE")
            && err.contains("no /dev/fuse")
            && err.contains("--device /dev/fuse"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(store.path()).unwrap().count(),
        0,
        "no run directory for a run that never started"
    );

    let out = harness_without_dev_fuse(&[
        "run",
        "--nemesis",
        "all",
        "--time-limit",
        "3",
        "--nemesis-interval",
        "0.5",
        "--seed",
        "2",
        "--store",
        s,
    ])
    .unwrap();
    let said = expect_status(&out, 0);
    assert!(
        said.lines().any(
            |l| l.starts_with("note: running without power and slow-disk faults: ")
                && l.contains("no /dev/fuse")
        ),
        "{said}"
    );
    let dir = std::fs::canonicalize(store.path().join("latest")).unwrap();
    let run = read_json(&dir.join("run.json"));
    assert_eq!(run["options"]["disk"], "plain");
    assert!(
        run["without_power"]
            .as_str()
            .unwrap()
            .contains("no /dev/fuse")
    );
    assert!(
        !history(&dir)
            .iter()
            .any(|o| o["f"] == "start-power" || o["f"] == "start-slow-disk")
    );
}

#[test]
fn slow_disks_slow_fsyncs_and_get_their_speed_back() {
    if !fuse_runs_here() {
        return;
    }
    let mut h = run("--nemesis slow-disk --time-limit 8 --nemesis-interval 1 --seed 4");
    let out = h.expect_exit(Duration::from_secs(180), 0);
    assert!(out.contains("result: valid"), "{out}");
    let dir = h.latest();
    let ops = history(&dir);
    let starts: Vec<&Value> = ops.iter().filter(|o| o["f"] == "start-slow-disk").collect();
    assert!(!starts.is_empty(), "no slow disk in {}", dir.display());
    for s in &starts {
        let ms = s["value"]["fsync_delay_ms"].as_u64().unwrap();
        assert!((5..=800).contains(&ms), "{s}");
        assert!(!s["value"]["nodes"].as_array().unwrap().is_empty(), "{s}");
    }
    let stops = ops.iter().filter(|o| o["f"] == "stop-slow-disk").count();
    assert!(
        stops + 1 >= starts.len(),
        "{stops} stops for {} starts",
        starts.len()
    );
    let run = read_json(&dir.join("run.json"));
    assert_eq!(run["options"]["disk"], "lazy");
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains("fault fk-slow-disk"), "no slow-disk row");
    assert!(report.contains("fsync +"), "the delay is not shown");
    assert_data_dirs_intact(&dir, false);
    assert_eq!(lazyfs_mounts_anywhere(h.store.path()), Vec::<String>::new());
    h.assert_no_nodes_left();
}

#[test]
fn help_says_exactly_what_each_metadata_model_keeps() {
    let out = harness(&["run", "--help"]);
    let help = expect_status(&out, 0);
    for model in [lazyfs::STRICT_MODEL_HELP, lazyfs::DURABLE_MODEL_HELP] {
        for line in model.lines() {
            assert!(help.contains(line.trim()), "--help lacks {line:?}");
        }
    }
    assert!(help.contains(lazyfs::POWER_LOSS_HELP.lines().next().unwrap()));
}

#[test]
fn bench_runs_the_same_load_on_a_lazy_disk() {
    if !fuse_runs_here() {
        return;
    }
    let mut h = Running::start(
        "bench",
        &[
            "--disk",
            "lazy",
            "--nodes",
            "1",
            "--concurrency",
            "4",
            "--duration",
            "1",
        ],
    );
    let out = h.expect_exit(Duration::from_secs(120), 0);
    assert!(out.contains("disk: lazyfs (strict metadata"), "{out}");
    let bench = std::fs::read_dir(h.store.path())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("bench-"))
        .expect("a bench directory")
        .path();
    let report = read_json(&bench.join("bench.json"));
    assert_eq!(report["disk"], "lazy");
    assert!(report["ops"].as_u64().unwrap() > 0, "{report:#}");
    assert_eq!(lazyfs_mounts_anywhere(h.store.path()), Vec::<String>::new());
    h.assert_no_nodes_left();
}
