//! `harness report` as a user runs it: a well-formed page for every example
//! history (run directory, bare history.jsonl, Jepsen EDN), errors that name
//! the file and line with exit 254, `harness check` rewriting a run
//! directory's report, and the headless-browser check of
//! `scripts/report-screenshot.sh` (skipped, with a message, without Chromium).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli::{TempFile, copy_dir, examples, expect_status, harness, root, status, text};

/// Parses a report as XML (it is written XHTML-compatible) and checks the
/// five sections and the charts are there; returns the text.
fn check_well_formed(path: &Path) -> String {
    let html = std::fs::read_to_string(path).unwrap();
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(&html, opts)
        .unwrap_or_else(|e| panic!("{}: not well-formed: {e}", path.display()));
    for id in ["verdict", "timeline", "latency", "anomalies", "nodes"] {
        assert!(
            doc.descendants()
                .any(|n| n.tag_name().name() == "section" && n.attribute("id") == Some(id)),
            "{}: no section {id}",
            path.display()
        );
    }
    let svgs: Vec<&str> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "svg")
        .filter_map(|n| n.attribute("class"))
        .collect();
    for chart in ["timeline", "latency", "throughput"] {
        assert!(
            svgs.contains(&chart),
            "{}: no {chart} chart",
            path.display()
        );
    }
    // Self-contained: nothing is loaded from elsewhere.
    assert!(!html.contains("<script"), "{}", path.display());
    assert!(!html.contains("src=\""), "{}", path.display());
    assert!(!html.contains("href=\"http"), "{}", path.display());
    assert!(!html.contains("url(http"), "{}", path.display());
    html
}

#[test]
fn report_of_every_example_is_well_formed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for e in std::fs::read_dir(examples()).unwrap() {
        let dir = e.unwrap().path();
        if !dir.join("history.jsonl").is_file() {
            continue;
        }
        seen += 1;
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        // As a run directory (a copy: the examples stay clean).
        let copy = tmp.path().join(&name);
        copy_dir(&dir, &copy);
        let out = harness(&["report", copy.to_str().unwrap()]);
        assert!(expect_status(&out, 0).contains("report.html"), "{name}");
        let html = check_well_formed(&copy.join("report.html"));
        assert!(
            !copy.join("results.json").exists(),
            "{name}: report does not write results.json"
        );
        // As a bare history.jsonl, written elsewhere with --out.
        let out_file = tmp.path().join(format!("{name}-bare.html"));
        let out = harness(&[
            "report",
            dir.join("history.jsonl").to_str().unwrap(),
            "--out",
            out_file.to_str().unwrap(),
        ]);
        assert_eq!(status(&out), 0, "{name}: {}", text(&out.stderr));
        let bare = check_well_formed(&out_file);
        assert!(bare.contains("No node event logs: this is a bare history.jsonl"));
        match name.as_str() {
            "stale-read" => {
                for h in [&html, &bare] {
                    assert!(h.contains("verdict v-invalid"), "{name}");
                    assert!(h.contains("class=\"wbar stuck-op\""), "{name}");
                    assert!(h.contains(
                        "read of x returned 1 at 7.00 ms, but the only value it could see was 2"
                    ));
                }
            }
            "valid" => {
                assert!(html.contains("verdict v-valid"));
                assert!(html.contains("No anomaly found."));
                // Node logs: a row per node, with links to its files.
                for n in ["n1", "n2", "n3"] {
                    assert!(
                        html.contains(&format!("<a href=\"nodes/{n}/events.jsonl\">")),
                        "{n}"
                    );
                }
                assert!(html.contains("class=\"leaderlabel\""));
            }
            _ => {}
        }
    }
    assert!(seen >= 2, "the examples are there");
}

#[test]
fn report_of_a_jepsen_edn_history_says_there_are_no_node_logs() {
    let file = TempFile::with_lines(
        "history.edn",
        &[
            "{:type :invoke, :f :write, :value [0 1], :process 0, :time 100, :index 0}",
            "{:type :ok, :f :write, :value [0 1], :process 0, :time 200, :index 1}",
            "{:type :info, :f :start, :value nil, :process :nemesis, :time 250, :index 2}",
            "{:type :invoke, :f :read, :value [0 nil], :process 1, :time 300, :index 3}",
            "{:type :ok, :f :read, :value [0 1], :process 1, :time 400, :index 4}",
        ],
    );
    expect_status(&harness(&["report", file.arg()]), 0);
    let html = check_well_formed(&file.dir.path().join("report.html"));
    assert!(html.contains("No node event logs: this is a history imported from Jepsen EDN"));
    assert!(html.contains("verdict v-valid"));
}

#[test]
fn report_on_bad_input_names_the_file_and_line_and_exits_254() {
    let tmp = tempfile::tempdir().unwrap();
    // A malformed history line.
    let dir = tmp.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("history.jsonl"),
        "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"k\",\"value\":null}\nnot json\n",
    )
    .unwrap();
    let out = harness(&["report", dir.to_str().unwrap()]);
    expect_status(&out, 254);
    let err = text(&out.stderr);
    assert!(err.contains("history.jsonl:2:"), "{err}");
    assert!(!dir.join("report.html").exists());

    // A malformed results.json.
    let dir = tmp.path().join("run2");
    copy_dir(&examples().join("stale-read"), &dir);
    std::fs::write(dir.join("results.json"), "{\n  \"valid\": maybe\n}\n").unwrap();
    let out = harness(&["report", dir.to_str().unwrap()]);
    assert_eq!(status(&out), 254);
    let err = text(&out.stderr);
    assert!(err.contains("results.json:2:"), "{err}");

    // No such path; a directory without history.jsonl.
    let out = harness(&["report", tmp.path().join("nope").to_str().unwrap()]);
    assert_eq!(status(&out), 254);
    assert!(text(&out.stderr).contains("nope"));
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = harness(&["report", empty.to_str().unwrap()]);
    assert_eq!(status(&out), 254);
    assert!(text(&out.stderr).contains("no history.jsonl"));
}

#[test]
fn check_of_a_run_directory_rewrites_its_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("valid");
    copy_dir(&examples().join("valid"), &dir);
    let out = harness(&["check", dir.to_str().unwrap()]);
    expect_status(&out, 0);
    assert!(dir.join("results.json").is_file());
    let html = check_well_formed(&dir.join("report.html"));
    assert!(html.contains("verdict v-valid"));
}

fn bash() -> Option<PathBuf> {
    ["/bin/bash", "/usr/bin/bash"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

#[test]
fn report_screenshot_script_skips_without_chromium() {
    let Some(bash) = bash() else {
        eprintln!("no bash: skipping");
        return;
    };
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(bash)
        .arg(root().join("scripts/report-screenshot.sh"))
        .args(["some-run", "out.png"])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    expect_status(&out, 0);
    assert!(text(&out.stdout).contains("no chromium found"));
    assert!(text(&out.stdout).contains("skipping"));
}

/// The browser check itself, where Chromium is installed: the stale-read
/// example renders to a PNG.
#[test]
fn report_renders_in_headless_chromium_when_present() {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .any(|c| {
            Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(bash) = bash().filter(|_| found) else {
        eprintln!("chromium not installed: skipping the headless browser check");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stale-read");
    copy_dir(&examples().join("stale-read"), &dir);
    let png = tmp.path().join("shot.png");
    let out = Command::new(bash)
        .arg(root().join("scripts/report-screenshot.sh"))
        .arg(&dir)
        .arg(&png)
        .arg("1280,1600")
        .env("HARNESS", env!("CARGO_BIN_EXE_harness"))
        .output()
        .unwrap();
    expect_status(&out, 0);
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
    assert!(bytes.len() > 20_000, "not blank: {} bytes", bytes.len());
}

/// Other tools' histories (Jepsen's log lines, Porcupine's kv) get a
/// report too: the format is told from the content, as `check` tells it.
#[test]
fn other_formats_get_a_report() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["porcupine-etcd_097.log", "porcupine-kv-c01-bad.txt"] {
        let src = root().join("histories/examples/imported").join(name);
        let out_path = dir.path().join(format!("{name}.html"));
        let out = harness(&[
            "report",
            src.to_str().unwrap(),
            "--out",
            out_path.to_str().unwrap(),
        ]);
        assert_eq!(status(&out), 0, "{name}: {}", text(&out.stderr));
        let page = check_well_formed(&out_path);
        assert!(
            page.contains("invalid") || page.contains("INVALID"),
            "{name}"
        );
    }
}
