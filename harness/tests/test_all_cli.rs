//! `harness test-all` as CI runs it: a matrix of short runs, the table, the
//! exit status, and JUnit XML that a parser accepts.

use std::process::Command;
use std::time::Duration;

#[test]
fn a_small_matrix_passes_and_writes_junit() {
    let store = tempfile::tempdir().unwrap();
    let junit = store.path().join("out/junit.xml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "test-all",
            "--nemeses",
            "none;kill,pause",
            "--nodes",
            "3",
            "--time-limit",
            "3",
        ])
        .args(["--nemesis-interval", "0.8", "--seed", "21", "--store"])
        .arg(store.path())
        .arg("--junit")
        .arg(&junit)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("test-all did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(
        text.contains("2 runs: 2 valid, 0 invalid, 0 unknown, 0 crashed"),
        "{text}"
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("JUnit XML is well-formed");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 2, "{xml}");
    let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert!(names[0].starts_with("none n3 #1"), "{names:?}");
    assert!(names[1].starts_with("kill+pause n3 #1"), "{names:?}");
    assert!(
        !xml.contains("<failure") && !xml.contains("<error"),
        "{xml}"
    );
}

#[test]
fn bad_matrix_flags_exit_254() {
    for args in [
        &["--nemeses", "partition;flood"][..],
        &["--nodes", "3,x"][..],
        &["--nodes", "0"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg("test-all")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(254), "{args:?}");
    }
}

/// Without the node's seeded bugs there is nothing to self-test: refused
/// before any run, naming the build flag.
#[cfg(not(feature = "bugs"))]
#[test]
fn selftest_without_the_bugs_feature_is_bad_arguments() {
    for args in [&["test-all", "--selftest"][..], &["selftest"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {err}");
        assert!(err.contains("--features bugs"), "{args:?}: {err}");
    }
}
