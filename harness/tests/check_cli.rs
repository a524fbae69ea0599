//! `harness check` as a user runs it: the exit status of docs/contract.md, the
//! summary, errors that name the file and line, and results.json in a run
//! directory.

mod common;

use std::path::Path;

use common::cli::{TempFile, examples, expect_status, harness, status, text};

#[test]
fn the_valid_example_exits_0() {
    let path = examples().join("valid/history.jsonl");
    let out = harness(&["check", path.to_str().unwrap()]);
    let stdout = expect_status(&out, 0);
    assert!(stdout.contains("linearizable   valid"), "{stdout}");
    assert!(stdout.contains("election       skipped"), "{stdout}");
    assert!(stdout.contains("result: valid"), "{stdout}");
}

#[test]
fn the_stale_read_example_exits_1_and_says_why() {
    let path = examples().join("stale-read/history.jsonl");
    let out = harness(&["check", path.to_str().unwrap()]);
    let stdout = expect_status(&out, 1);
    assert!(stdout.contains("linearizable   INVALID"), "{stdout}");
    assert!(
        stdout.contains("read of x returned 1 at 7.00 ms, but the only value it could see was 2 (written by op 2 at 4.00 ms)"),
        "{stdout}"
    );
    assert!(stdout.contains("result: INVALID"), "{stdout}");
}

#[test]
fn a_malformed_line_exits_254_naming_file_and_line() {
    let file = TempFile::with_lines(
        "history.jsonl",
        &[
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read","key":"a","value":null}"#,
            r#"{"index":1,"time":2,"process":0,"type":"okay","f":"read","key":"a","value":null}"#,
        ],
    );
    let out = harness(&["check", file.arg()]);
    assert_eq!(status(&out), 254);
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim(),
        format!(
            "error: {}:2: field \"type\": expected one of invoke, ok, fail, info",
            file.path.display()
        )
    );
}

#[test]
fn a_missing_file_and_bad_flags_exit_254() {
    let out = harness(&["check", "/nonexistent/history.jsonl"]);
    assert_eq!(status(&out), 254);
    assert!(text(&out.stderr).starts_with("error: /nonexistent/history.jsonl:"));
    let path = examples().join("valid/history.jsonl");
    let out = harness(&["check", path.to_str().unwrap(), "--check-budget", "-1"]);
    expect_status(&out, 254);
    assert_eq!(status(&harness(&["check"])), 254);
    assert_eq!(status(&harness(&["frobnicate"])), 254);
    assert_eq!(status(&harness(&["check", "--help"])), 0);
}

#[test]
fn a_history_where_nothing_succeeded_exits_2() {
    let file = TempFile::with_lines(
        "history.jsonl",
        &[
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","key":"a","value":1}"#,
            r#"{"index":1,"time":2,"process":0,"type":"info","f":"write","key":"a","value":1,"error":"timeout"}"#,
        ],
    );
    let out = harness(&["check", file.arg()]);
    expect_status(&out, 2);
    assert!(text(&out.stdout).contains("no client operation succeeded"));
}

#[test]
fn a_jepsen_edn_history_is_checked() {
    let file = TempFile::with_lines(
        "history.edn",
        &[
            "{:type :invoke, :f :write, :value [0 1], :process 0, :time 100, :index 0}",
            "{:type :ok, :f :write, :value [0 1], :process 0, :time 200, :index 1}",
            "{:type :info, :f :start, :value nil, :process :nemesis, :time 250, :index 2}",
            "{:type :invoke, :f :read, :value #jepsen.independent.Tuple{:key 0, :value nil}, :process 1, :time 300, :index 3}",
            "{:type :ok, :f :read, :value #jepsen.independent.Tuple{:key 0, :value 1}, :process 1, :time 400, :index 4}",
        ],
    );
    let (path, edn) = (&file.path, std::fs::read_to_string(&file.path).unwrap());
    let out = harness(&["check", file.arg()]);
    expect_status(&out, 0);
    std::fs::write(path, edn.replace(":value 1}", ":value 2}")).unwrap();
    assert_eq!(status(&harness(&["check", path.to_str().unwrap()])), 1);
    std::fs::write(path, edn.replace(":time 300", ":time 300 :process")).unwrap();
    let out = harness(&["check", path.to_str().unwrap()]);
    assert_eq!(status(&out), 254);
    assert!(
        text(&out.stderr).starts_with(&format!("error: {}:4: ", path.display())),
        "{}",
        text(&out.stderr)
    );
}

/// Copies the valid example (history and node logs) into a temporary run
/// directory.
fn run_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = examples().join("valid");
    std::fs::copy(src.join("history.jsonl"), dir.path().join("history.jsonl")).unwrap();
    for n in ["n1", "n2", "n3"] {
        let d = dir.path().join("nodes").join(n);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(
            src.join("nodes").join(n).join("events.jsonl"),
            d.join("events.jsonl"),
        )
        .unwrap();
    }
    dir
}

fn results(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

#[test]
fn a_run_directory_gets_results_json() {
    let dir = run_dir();
    std::fs::write(
        dir.path().join("run.json"),
        r#"{"seed":42,"nemesis":"partition"}"#,
    )
    .unwrap();
    let out = harness(&["check", dir.path().to_str().unwrap()]);
    expect_status(&out, 0);
    let r = results(dir.path());
    assert_eq!(r["valid"], true);
    for checker in ["linearizable", "election", "state-machine", "stats", "perf"] {
        assert_eq!(r["checkers"][checker]["valid"], true, "{checker}: {r:#}");
    }
    assert_eq!(r["checkers"]["election"]["terms"], 2);
    assert!(r["checkers"]["election"].get("skipped").is_none());
    assert_eq!(r["run"]["seed"], 42, "run section from run.json");

    // A re-check keeps the run section of the results.json it replaces.
    std::fs::write(dir.path().join("run.json"), r#"{"seed":7}"#).unwrap();
    let mut r = results(dir.path());
    r["run"] = serde_json::json!({"seed": 42, "written-by": "run"});
    std::fs::write(dir.path().join("results.json"), r.to_string()).unwrap();
    assert_eq!(
        status(&harness(&["check", dir.path().to_str().unwrap()])),
        0
    );
    assert_eq!(results(dir.path())["run"]["written-by"], "run");
}

#[test]
fn two_leaders_in_a_term_make_a_run_invalid() {
    let dir = run_dir();
    let n3 = dir.path().join("nodes/n3/events.jsonl");
    let mut events = std::fs::read_to_string(&n3).unwrap();
    events += r#"{"time":"2026-11-22T10:00:00.390000Z","node":"n3","event":"role","role":"leader","term":2}"#;
    events += "\n";
    // A torn last line, as a node killed mid-write leaves: a warning only.
    events += r#"{"time":"2026-11-22T10:00:00.391000Z","node":"n3","ev"#;
    std::fs::write(&n3, events).unwrap();
    let out = harness(&["check", dir.path().to_str().unwrap()]);
    expect_status(&out, 1);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("term 2: two leaders: n2 at 2026-11-22T10:00:00.382000Z, n3 at 2026-11-22T10:00:00.390000Z"), "{stdout}");
    assert!(
        stdout.contains("warning:") && stdout.contains("torn last line"),
        "{stdout}"
    );
    let r = results(dir.path());
    assert_eq!(r["valid"], false);
    assert_eq!(r["checkers"]["linearizable"]["valid"], true);
    assert_eq!(r["checkers"]["election"]["violations"][0]["term"], 2);
    assert_eq!(
        r["checkers"]["election"]["violations"][0]["nodes"],
        serde_json::json!(["n2", "n3"])
    );
}

#[test]
fn diverging_state_machines_make_a_run_invalid() {
    let dir = run_dir();
    let n2 = dir.path().join("nodes/n2/events.jsonl");
    let events = std::fs::read_to_string(&n2)
        .unwrap()
        .replace("d4735e3a265e", "ffffffffffff");
    std::fs::write(&n2, events).unwrap();
    let out = harness(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(status(&out), 1);
    assert!(
        text(&out.stdout).contains(
            "index 2: n1 applied term 1 digest d4735e3a265e; n2 applied term 1 digest ffffffffffff"
        ),
        "{}",
        text(&out.stdout)
    );
    let v = &results(dir.path())["checkers"]["state-machine"]["violations"][0];
    assert_eq!(v["index"], 2);
    assert_eq!(v["nodes"], serde_json::json!(["n1", "n2", "n3"]));
}

#[test]
fn a_directory_without_history_exits_254() {
    let dir = tempfile::tempdir().unwrap();
    let out = harness(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(status(&out), 254);
    assert!(text(&out.stderr).contains("no history.jsonl"));
}
