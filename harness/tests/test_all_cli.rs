//! `harness test-all` as CI runs it: a matrix of short runs, the table, the
//! exit status, and JUnit XML that a parser accepts.

mod common;

use std::time::Duration;

use common::cli::{Running, expect_status, harness};

#[test]
fn a_small_matrix_passes_and_writes_junit() {
    let junit = tempfile::tempdir().unwrap();
    let junit = junit.path().join("out/junit.xml");
    let mut h = Running::start(
        "test-all",
        &[
            "--nemeses",
            "none;kill,pause",
            "--nodes",
            "3",
            "--time-limit",
            "3",
            "--nemesis-interval",
            "0.8",
            "--seed",
            "21",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let text = h.expect_exit(Duration::from_secs(120), 0);
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
        expect_status(&harness(&[&["test-all"][..], args].concat()), 254);
    }
}

/// Without the node's seeded bugs there is nothing to self-test: refused
/// before any run, naming the build flag.
#[cfg(not(feature = "bugs"))]
#[test]
fn selftest_without_the_bugs_feature_is_bad_arguments() {
    for args in [&["test-all", "--selftest"][..], &["selftest"][..]] {
        let out = harness(args);
        expect_status(&out, 254);
        let err = common::cli::text(&out.stderr);
        assert!(err.contains("--features bugs"), "{args:?}: {err}");
    }
}
