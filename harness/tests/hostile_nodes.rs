//! The harness against nodes that misbehave (`hostile-node`, built with
//! the harness) or do not run at all: every run ends with a verdict or one
//! clear error, at once where it can, and the harness's open file
//! descriptors (`/proc/<pid>/fd`, sampled while it runs) stay bounded, in
//! one run and across the cells of a `test-all`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::cli::{Running, read_json};

const HOSTILE: &str = env!("CARGO_BIN_EXE_hostile-node");

/// Descriptors a 3-node run may hold, whatever its nodes do: the client
/// pool (a connection per worker and node, at most 32 per node), the
/// proxies (at most 16 connection tasks per link, two descriptors each)
/// and the files and runtime around them. Without
/// the bounds, a node flooding its peers took the harness to its limit
/// (20,000 here) within seconds, and 500 workers held over 1,000.
const FD_BOUND: usize = 400;

/// The harness's open descriptors, sampled every 100 ms until it exits,
/// with the number of run directories in its store at each sample (the
/// cell of a `test-all` it is in).
struct Sampled {
    code: i32,
    out: String,
    /// (descriptors, run directories so far) per sample.
    samples: Vec<(usize, usize)>,
}

impl Sampled {
    fn max(&self) -> usize {
        self.samples.iter().map(|s| s.0).max().unwrap_or(0)
    }
}

fn sample(mut h: Running, within: Duration) -> (Running, Sampled) {
    let pid = h.child.id();
    let deadline = Instant::now() + within;
    let mut samples = Vec::new();
    while h.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the harness still runs after {within:?}"
        );
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            samples.push((fds.count(), run_dirs(h.store.path())));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, out) = h.wait(Duration::from_secs(1));
    (h, Sampled { code, out, samples })
}

fn run_dirs(store: &Path) -> usize {
    std::fs::read_dir(store).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.file_name() != "latest" && e.path().is_dir())
            .count()
    })
}

fn hostile(subcommand: &str, mode: &str, extra: &[&str]) -> Running {
    let mode = format!("--node-arg=--hostile={mode}");
    let mut args = vec!["--node-bin", HOSTILE, &mode, "--seed", "3"];
    args.extend_from_slice(extra);
    Running::start(subcommand, &args)
}

/// A run against `mode` ends with a verdict (unknown or invalid: nothing
/// these nodes say can be valid), with its descriptors bounded.
fn a_run_against(mode: &str, extra: &[&str]) {
    let mut args = vec!["--time-limit", "3", "--nemesis-interval", "0.5"];
    args.extend_from_slice(extra);
    let (h, s) = sample(hostile("run", mode, &args), Duration::from_secs(150));
    assert!(
        s.code == 1 || s.code == 2,
        "{mode}: exit {}:\n{}",
        s.code,
        s.out
    );
    assert!(s.out.contains("result: "), "{mode}: no verdict:\n{}", s.out);
    let results = read_json(&h.latest().join("results.json"));
    assert_ne!(results["valid"], true, "{mode}: {results:#}");
    assert!(
        s.max() <= FD_BOUND,
        "{mode}: the harness held {} descriptors (bound {FD_BOUND})",
        s.max()
    );
    h.assert_no_nodes_left();
}

#[test]
fn calls_that_never_answer_while_peers_flood_the_proxies() {
    a_run_against(
        "silent",
        &["--network", "proxy", "--node-arg=--hostile-peers=flood"],
    );
}

#[test]
fn connections_reset_by_every_call_under_kills() {
    a_run_against("reset", &["--network", "proxy", "--nemesis", "kill"]);
}

#[test]
fn not_leader_naming_itself() {
    a_run_against("not-leader-self", &["--network", "proxy"]);
}

#[test]
fn not_leader_redirects_that_go_round_under_partitions() {
    a_run_against(
        "not-leader-ring",
        &[
            "--network",
            "proxy",
            "--nemesis",
            "partition",
            "--node-arg=--hostile-peers=flood",
        ],
    );
}

#[test]
fn slow_answers_to_many_workers() {
    a_run_against("slow", &["--network", "proxy", "--concurrency", "300"]);
}

#[test]
fn nodes_that_accept_and_never_read_are_a_clear_failure() {
    let (h, s) = sample(
        hostile("run", "mute", &["--network", "proxy", "--time-limit", "2"]),
        Duration::from_secs(90),
    );
    assert_eq!(s.code, 255, "{}", s.out);
    assert!(s.out.contains("no leader elected"), "{}", s.out);
    assert!(s.out.contains("accepts connections"), "{}", s.out);
    assert!(s.max() <= FD_BOUND, "held {} descriptors", s.max());
    h.assert_no_nodes_left();
}

#[test]
fn test_all_against_a_hostile_node_does_not_grow_descriptors_across_cells() {
    let (h, s) = sample(
        hostile(
            "test-all",
            "not-leader-ring",
            &[
                "--network",
                "proxy",
                "--node-arg=--hostile-peers=flood",
                "--nemeses",
                "none;kill;partition",
                "--nodes",
                "3",
                "--time-limit",
                "2",
                "--nemesis-interval",
                "0.5",
            ],
        ),
        Duration::from_secs(400),
    );
    // Every cell judged, none crashed: unknown (no operation succeeded) or
    // invalid (the convergence checker: no write succeeded after recovery).
    assert!(matches!(s.code, 1 | 2), "{}", s.out);
    assert_eq!(
        s.out.matches("--- unknown").count() + s.out.matches("--- invalid").count(),
        3,
        "{}",
        s.out
    );
    assert!(
        s.max() <= FD_BOUND,
        "held {} descriptors: {:?}",
        s.max(),
        s.samples
    );
    // What a cell holds at its end is what the next starts from: the
    // fewest descriptors seen in each cell do not climb.
    let range = |cell: usize| {
        let counts = s.samples.iter().filter(|x| x.1 == cell).map(|x| x.0);
        let lowest = counts.clone().min();
        lowest
            .zip(counts.max())
            .unwrap_or_else(|| panic!("no sample in cell {cell}"))
    };
    let (lows, highs): (Vec<usize>, Vec<usize>) = (1..=3).map(range).unzip();
    assert!(
        lows[2] <= lows[1] + 10 && highs[2] <= highs[0] + 40,
        "descriptors grow across cells: lowest {lows:?}, highest {highs:?}"
    );
    h.assert_no_nodes_left();
}

/// A node binary that exits at once: said at once, with its status and
/// the end of its log, well before the 30 s a leader may take.
#[test]
fn a_node_binary_that_exits_at_once_is_named_with_its_status_and_log() {
    for (bin, status, log) in [
        ("/bin/true", "exit status: 0", "node.log is empty"),
        ("/bin/false", "exit status: 1", "node.log is empty"),
        ("/bin/sleep", "exit status: 1", "unrecognized option"),
    ] {
        let mut h = Running::start("run", &["--node-bin", bin, "--network", "proxy"]);
        let out = h.expect_exit(Duration::from_secs(15), 255);
        for needle in ["node n1 exited during start-up", status, log] {
            assert!(out.contains(needle), "{bin}: no {needle:?} in\n{out}");
        }
        assert!(
            out.contains("node n3 exited"),
            "{bin}: every node named\n{out}"
        );
        assert!(!out.contains("no leader elected"), "{bin}: {out}");
    }
}

/// A node that runs but never listens: a bounded wait, then one message
/// saying so.
#[test]
fn a_node_that_never_listens_is_a_clear_failure_after_a_bounded_wait() {
    let dir = tempfile::tempdir().unwrap();
    let deaf = dir.path().join("deaf-node");
    std::fs::write(
        &deaf,
        "#!/bin/sh\necho \"deaf node $1 $2\"\nexec sleep 300\n",
    )
    .unwrap();
    make_executable(&deaf);
    let mut h = Running::start(
        "run",
        &["--node-bin", deaf.to_str().unwrap(), "--network", "proxy"],
    );
    let out = h.expect_exit(Duration::from_secs(25), 255);
    assert!(out.contains("not accepting connections"), "{out}");
    assert!(out.contains("deaf node --id n1"), "the log's end: {out}");
    h.assert_no_nodes_left();
}

/// A `--node-bin` that cannot run is bad input: 254, before any run
/// directory exists.
#[test]
fn a_node_binary_that_cannot_run_is_bad_input_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    for (bin, needle) in [
        (plain.to_str().unwrap(), "not an executable file"),
        ("/nonexistent/node", "no such file"),
        ("/tmp", "not an executable file"),
    ] {
        for sub in ["run", "test-all"] {
            let mut h = Running::start(sub, &["--node-bin", bin, "--network", "proxy"]);
            let out = h.expect_exit(Duration::from_secs(30), 254);
            assert!(
                out.contains("--node-bin") && out.contains(needle),
                "{sub} {bin}: {out}"
            );
            assert_eq!(
                std::fs::read_dir(h.store.path()).unwrap().count(),
                0,
                "{sub} {bin}: the store is not empty"
            );
        }
    }
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
