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

fn imported(name: &str) -> String {
    examples()
        .join("imported")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

/// Runs `check` and returns (status, stdout, stderr).
fn check(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let out = harness(&all);
    (status(&out), text(&out.stdout), text(&out.stderr))
}

/// A register that starts at 0, as Jepsen's `(cas-register 0)` assumes
/// without the history saying so: invalid as read, valid once told.
#[test]
fn initial_values_are_given_on_the_command_line() {
    let path = imported("register-from-0.edn");
    let (code, out, _) = check(&[&path]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("only value it could see was absent (initial state); keys start absent: if this system's start with a value, give it with --initial-value"),
        "{out}"
    );
    for flag in ["0", "register=0"] {
        let (code, out, err) = check(&[&path, "--initial-value", flag]);
        assert_eq!(code, 0, "--initial-value {flag}: {out}{err}");
    }
    // A finished write of 0 first says the same thing in the history.
    let dir = tempfile::tempdir().unwrap();
    let prepended = dir.path().join("history.edn");
    let body = std::fs::read_to_string(&path)
        .unwrap()
        .replace(":time ", ":time 1");
    std::fs::write(
        &prepended,
        "{:type :invoke, :f :write, :value 0, :process 9, :time 1, :index 100}\n\
         {:type :ok, :f :write, :value 0, :process 9, :time 2, :index 101}\n"
            .replace(":index 10", ":index ")
            + &body.replace(":index ", ":index 1"),
    )
    .unwrap();
    let (code, out, err) = check(&[prepended.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    // A value of the wrong kind for the key is bad input, named.
    let (code, _, err) = check(&[&path, "--initial-value", "\"x\""]);
    assert_eq!(code, 254);
    assert!(
        err.contains("key \"register\" holds integers (a register), so it cannot start as \"x\""),
        "{err}"
    );
    let (code, _, err) = check(&[&path, "--initial-value", "register=x"]);
    assert_eq!(code, 254);
    assert!(err.contains("--initial-value register=x"), "{err}");
}

/// Every format other tools write, told apart by content, with the verdict
/// those tools give (histories/examples/imported/README.md).
#[test]
fn other_tools_histories_are_read_with_their_verdicts() {
    for (name, want) in [
        ("porcupine-etcd_002.log", 0),
        ("porcupine-etcd_097.log", 1),
        ("porcupine-kv-c01-ok.txt", 0),
        ("porcupine-kv-c01-bad.txt", 1),
        ("porcupine-kv-c10-ok.txt", 0),
        ("porcupine-kv-c10-bad.txt", 1),
        ("knossos-rethink-fail-minimal.edn", 1),
        ("knossos-memstress3-tuples.edn", 0),
        ("knossos-issue-13-history.txt", 1),
    ] {
        let (code, out, err) = check(&[&imported(name)]);
        assert_eq!(code, want, "{name}\n{out}{err}");
    }
    // The string model names the strings.
    let (_, out, _) = check(&[&imported("porcupine-kv-c01-bad.txt")]);
    assert!(out.contains("(string model)"), "{out}");
    assert!(out.contains("every key starts as \"\""), "{out}");
    // Knossos's complaint about jepsen-io/knossos#13, from the state its
    // excerpt starts in.
    let (code, out, _) = check(&[
        &imported("knossos-issue-13-history.txt"),
        "--initial-value",
        "4",
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("read of register returned 2"), "{out}");
    // The tuple file has ten keys (tuples [key value]).
    let (_, out, _) = check(&[&imported("knossos-memstress3-tuples.edn")]);
    assert!(out.contains("10 keys"), "{out}");
}

#[test]
fn the_format_can_be_named() {
    let log = imported("porcupine-etcd_002.log");
    let (code, _, _) = check(&[&log, "--format", "text"]);
    assert_eq!(code, 0);
    let (code, _, err) = check(&[&log, "--format", "edn"]);
    assert_eq!(code, 254, "{err}");
    let (code, _, err) = check(&[&log, "--format", "yaml"]);
    assert_eq!(code, 254);
    assert!(err.contains("expected one of jsonl, edn, text"), "{err}");
}

/// Integers read as the text the Kv API stores: appends concatenate.
#[test]
fn integer_values_can_be_read_as_strings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let line = |i: u32, p: u32, t: &str, f: &str, v: &str| {
        format!(
            r#"{{"index":{i},"time":{i},"process":{p},"type":"{t}","f":"{f}","key":"k","value":{v}}}"#
        ) + "\n"
    };
    let text = [
        line(0, 0, "invoke", "append", "1"),
        line(1, 0, "ok", "append", "1"),
        line(2, 0, "invoke", "append", "2"),
        line(3, 0, "ok", "append", "2"),
        line(4, 1, "invoke", "read", "null"),
        line(5, 1, "ok", "read", "12"),
    ]
    .concat();
    std::fs::write(&path, text).unwrap();
    let p = path.to_str().unwrap();
    let (code, _, err) = check(&[p]);
    assert_eq!(code, 254, "an integer read of a list key");
    assert!(err.contains("used as a register of integers"), "{err}");
    let (code, out, err) = check(&[p, "--strings"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("append 2/0/0"), "{out}");
}

#[test]
fn deep_nesting_is_bad_input_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let edn = dir.path().join("history.edn");
    std::fs::write(&edn, format!("\n\n{}", "[".repeat(20_000))).unwrap();
    let (code, _, err) = check(&[edn.to_str().unwrap()]);
    assert_eq!(code, 254, "{err}");
    assert!(
        err.contains("history.edn:3: nested more than 256 levels deep"),
        "{err}"
    );
    let jsonl = dir.path().join("history.jsonl");
    std::fs::write(
        &jsonl,
        format!(
            "{}\n{{\"index\":1,\"x\":{}}}\n",
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read","key":"a"}"#,
            "[".repeat(20_000)
        ),
    )
    .unwrap();
    let (code, _, err) = check(&[jsonl.to_str().unwrap()]);
    assert_eq!(code, 254, "{err}");
    assert!(
        err.contains("history.jsonl:2: invalid JSON: nested more than 256"),
        "{err}"
    );
}

#[test]
fn times_that_go_backwards_are_refused_unless_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"index":0,"time":50,"process":0,"type":"invoke","f":"write","key":"a","value":1}"#,
            "\n",
            r#"{"index":1,"time":60,"process":0,"type":"ok","f":"write","key":"a","value":1}"#,
            "\n\n",
            r#"{"index":2,"time":40,"process":1,"type":"invoke","f":"read","key":"a"}"#,
            "\n",
            r#"{"index":3,"time":70,"process":1,"type":"ok","f":"read","key":"a","value":1}"#,
            "\n",
        ),
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let (code, _, err) = check(&[p]);
    assert_eq!(code, 254);
    assert!(
        err.contains(
            "history.jsonl:4: field \"time\": 40 ns is earlier than the previous line's 60 ns"
        ),
        "{err}"
    );
    let (code, out, err) = check(&[p, "--ignore-times"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("perf           skipped  the history has no times"),
        "{out}"
    );
}

#[test]
fn an_empty_history_says_no_operations_plainly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    std::fs::write(&path, "\n  \n").unwrap();
    let (code, out, _) = check(&[path.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("history.jsonl: no operations\n"), "{out}");
    assert!(
        !out.contains(" ; ") && !out.contains("  ;"),
        "a stray separator: {out}"
    );
    assert!(
        out.contains(
            "result: unknown (stats: no operations: the history has no client operations)"
        ),
        "{out}"
    );
}

#[test]
fn binary_garbage_is_named_by_its_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let mut bytes =
        br#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read","key":"a"}"#.to_vec();
    bytes.extend_from_slice(b"\n\x7fELF\x02\x01\x00\x00garbage");
    let nul = bytes.iter().position(|&b| b == 0).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let (code, _, err) = check(&[path.to_str().unwrap()]);
    assert_eq!(code, 254);
    assert!(
        err.contains(&format!(
            "not a history: binary data (a NUL byte) at byte offset {nul}"
        )),
        "{err}"
    );
    std::fs::write(&path, b"\xff\xfe{}").unwrap();
    let (code, _, err) = check(&[path.to_str().unwrap()]);
    assert_eq!(code, 254);
    assert!(err.contains("byte offset 0 is not UTF-8"), "{err}");
}

/// An interrupted run leaves each node's events in its data directory:
/// they are found there. A node with none anywhere makes the node-log
/// checkers (and the verdict) unknown, never valid.
#[test]
fn node_logs_are_found_in_data_or_the_verdict_is_unknown() {
    let dir = run_dir();
    let n2 = dir.path().join("nodes/n2");
    std::fs::create_dir_all(n2.join("data")).unwrap();
    std::fs::rename(n2.join("events.jsonl"), n2.join("data/events.jsonl")).unwrap();
    let (code, out, _) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("election       valid"), "{out}");
    assert!(
        out.contains("n2/data/events.jsonl: read from the node's data directory"),
        "{out}"
    );
    std::fs::remove_file(n2.join("data/events.jsonl")).unwrap();
    // n2 ran (its node.log has lines), so its events are missing, not
    // absent because it never started.
    std::fs::write(n2.join("node.log"), "n2 listening\n").unwrap();
    let (code, out, _) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("election       unknown  no events.jsonl for n2"),
        "{out}"
    );
    assert!(
        out.contains("state-machine  unknown  no events.jsonl for n2"),
        "{out}"
    );
    assert!(
        out.contains("result: unknown (election: no events.jsonl for n2"),
        "{out}"
    );
    assert_eq!(results(dir.path())["valid"], "unknown");
    // An anomaly in the logs that are there still makes the run invalid.
    for n in ["n1", "n3"] {
        let path = dir.path().join("nodes").join(n).join("events.jsonl");
        let mut events = std::fs::read_to_string(&path).unwrap();
        events += &format!(
            r#"{{"time":"2026-11-22T10:00:01Z","node":"{n}","event":"role","role":"leader","term":9}}"#
        );
        events += "\n";
        std::fs::write(&path, events).unwrap();
    }
    let (code, out, _) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
}

/// results.json cannot be written (here: a directory is in its way, which
/// fails for root too): the verdict is printed and sets the status.
#[test]
fn a_run_directory_that_cannot_be_written_still_gets_a_verdict() {
    let dir = run_dir();
    std::fs::create_dir(dir.path().join("results.json")).unwrap();
    std::fs::write(dir.path().join("results.json/keep"), "").unwrap();
    let (code, out, err) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("result: valid"), "{out}");
    assert!(
        err.contains("warning: results.json not written (")
            && err.contains("the verdict above stands"),
        "{err}"
    );
    assert!(!dir.path().join("results.json.tmp").exists());
}

/// Bad numbers are refused before anything starts, naming the flag, with
/// the status of bad arguments.
#[test]
fn bad_flags_name_themselves_and_exit_254() {
    for (args, want) in [
        (&["run", "--nodes", "-1"][..], "'--nodes <NODES>'"),
        (
            &["run", "--rate", "-1"][..],
            "--rate -1: must be a non-negative number",
        ),
        (
            &["test-all", "--test-count", "0"][..],
            "'--test-count <TEST_COUNT>'",
        ),
        (
            &["bench", "--value-size", "999999999999"][..],
            "expected a number of bytes from 1 to 1048576",
        ),
        (&["node", "--frob"][..], "--frob"),
        (
            &["check", "x", "--initial-value", "k=x"][..],
            "--initial-value k=x",
        ),
    ] {
        let out = harness(args);
        assert_eq!(status(&out), 254, "{args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(want),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

/// A Jepsen store directory holds history.edn (or history.txt), not
/// history.jsonl: `check DIR` reads it.
#[test]
fn a_jepsen_store_directory_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        imported("knossos-rethink-fail-minimal.edn"),
        dir.path().join("history.edn"),
    )
    .unwrap();
    let (code, out, err) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("history.edn: 4 client operations"), "{out}");
    assert_eq!(results(dir.path())["valid"], false);
}
