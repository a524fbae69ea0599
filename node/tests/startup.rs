//! How the node binary starts, or refuses to: bad flags, a torn log tail
//! (cut and carry on), corruption in the middle (stop, naming file and offset).

mod support;

use std::process::Command;
use std::time::Duration;

use support::Cluster;

fn node(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_node"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bad_flags_exit_non_zero_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for (args, needle) in [
        (
            vec!["--id", "n1", "--listen", "nowhere", "--data-dir", d],
            "HOST:PORT",
        ),
        (
            vec![
                "--id",
                "n1",
                "--listen",
                "127.0.0.1:1",
                "--data-dir",
                d,
                "--peer",
                "n2",
            ],
            "ID=HOST:PORT",
        ),
        (
            vec![
                "--id",
                "n1",
                "--listen",
                "127.0.0.1:1",
                "--data-dir",
                d,
                "--fsync",
                "maybe",
            ],
            "fsync",
        ),
        (
            vec![
                "--id",
                "n1",
                "--listen",
                "127.0.0.1:1",
                "--data-dir",
                d,
                "--heartbeat-ms",
                "500",
            ],
            "greater than",
        ),
        (vec!["--listen", "127.0.0.1:1", "--data-dir", d], "--id"),
    ] {
        let out = node(&args);
        assert!(!out.status.success(), "{args:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or_default();
        assert!(first.contains("error"), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let help = node(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--id",
        "--listen",
        "--data-dir",
        "--peer",
        "--cluster-id",
        "--heartbeat-ms",
        "--election-timeout-ms",
        "--fsync",
        "--snapshot-every",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
    assert!(text.contains("BENCHMARKS ONLY"));
}

#[test]
fn an_unusable_data_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let port = support::free_port().to_string();
    let out = node(&[
        "--id",
        "n1",
        "--listen",
        &port,
        "--data-dir",
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a-file"), "{err}");
}

async fn write_some(c: &Cluster, n: u64) {
    c.leader(Duration::from_secs(10)).await.expect("a leader");
    for i in 0..n {
        assert!(
            c.put(&format!("k{i}"), "v", (3, i + 1), Duration::from_secs(10))
                .await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_cut_off_and_the_node_carries_on() {
    let mut c = Cluster::start(1, &[]);
    write_some(&c, 5).await;
    c.kill(0);
    let wal = c.nodes[0].dir.join("raft.wal");
    let len = std::fs::metadata(&wal).unwrap().len();
    // A crash in the middle of the last record's write.
    let f = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);
    c.restart(0);
    c.leader(Duration::from_secs(10))
        .await
        .expect("restarts after a torn tail");
    assert!(
        c.put("after", "tear", (4, 1), Duration::from_secs(10))
            .await
    );
    let events = std::fs::read_to_string(c.nodes[0].dir.join("events.jsonl")).unwrap();
    assert!(events.contains("torn tail"), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_in_the_middle_stops_the_node_naming_file_and_offset() {
    let mut c = Cluster::start(1, &[]);
    write_some(&c, 20).await;
    c.kill(0);
    let wal = c.nodes[0].dir.join("raft.wal");
    let mut bytes = std::fs::read(&wal).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&wal, &bytes).unwrap();

    let node = &c.nodes[0];
    let port = support::free_port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_node"))
        .args([
            "--id",
            "n1",
            "--listen",
            &port,
            "--data-dir",
            node.dir.to_str().unwrap(),
            "--cluster-id",
            support::CLUSTER,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a corrupt log must stop the node");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("raft.wal") && err.contains("byte"), "{err}");
    // The file is left as it was for inspection: nothing was cut.
    assert_eq!(std::fs::read(&wal).unwrap(), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_data_dir_is_refused() {
    let c = Cluster::start(1, &[]);
    c.leader(Duration::from_secs(10)).await.expect("a leader");
    let port = support::free_port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_node"))
        .args([
            "--id",
            "n1",
            "--listen",
            &port,
            "--data-dir",
            c.nodes[0].dir.to_str().unwrap(),
            "--cluster-id",
            support::CLUSTER,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another node process"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_to_a_file_has_no_colour_codes() {
    let c = Cluster::start(1, &[]);
    c.leader(Duration::from_secs(10)).await.expect("a leader");
    let log = c.log_of(0);
    assert!(log.contains(" INFO "), "the node logged nothing: {log}");
    assert!(!log.contains('\x1b'), "colour codes in a log file:\n{log}");
}

/// Kills the process when dropped, also when the test fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_cluster_is_refused_and_logged_once() {
    let c = Cluster::start(1, &[]);
    c.leader(Duration::from_secs(10)).await.expect("a leader");
    // n2 of cluster `other` keeps asking n1 (`Raft.Hello`, every 500 ms)
    // whether the cluster exists.
    let dir = tempfile::tempdir().unwrap();
    let stranger = Killed(
        Command::new(env!("CARGO_BIN_EXE_node"))
            .args(["--id", "n2", "--listen"])
            .arg(support::free_port().to_string())
            .arg("--data-dir")
            .arg(dir.path().join("n2"))
            .args(["--cluster-id", "other", "--peer"])
            .arg(format!("n1={}", c.nodes[0].addr))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let refusals = |log: &str| {
        log.lines()
            .filter(|l| l.contains("refusing traffic from peer `n2`"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while refusals(&c.log_of(0)).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "never logged:\n{}",
            c.log_of(0)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several more attempts later, still the one line.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lines = refusals(&c.log_of(0));
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("`other`") && lines[0].contains(&format!("`{}`", support::CLUSTER)),
        "both cluster ids: {}",
        lines[0]
    );
    drop(stranger);
}
