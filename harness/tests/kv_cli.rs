//! The README's by-hand cluster: three nodes started with `harness node`
//! (the node built into the harness) and driven with `harness kv`.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use testkit::free_port;

struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn kv(node: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "kv",
            "--node",
            node,
            "--cluster-id",
            "demo",
            "--timeout",
            "2",
        ])
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn a_cluster_started_by_hand_elects_a_leader_and_serves_every_operation() {
    let tmp = tempfile::tempdir().unwrap();
    let addrs: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let mut nodes = Nodes(Vec::new());
    let started = Instant::now();
    for i in 0..3 {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
        cmd.args([
            "node",
            "--id",
            &format!("n{}", i + 1),
            "--listen",
            &addrs[i],
        ])
        .arg("--data-dir")
        .arg(tmp.path().join(format!("n{}", i + 1)))
        .args(["--cluster-id", "demo"]);
        for j in (0..3).filter(|&j| j != i) {
            cmd.args(["--peer", &format!("n{}={}", j + 1, addrs[j])]);
        }
        nodes.0.push(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }

    // Wait for a leader, asking node 1 (bounded).
    let leader_after = loop {
        let out = kv(&addrs[0], &["status"]);
        let s = stdout(&out);
        if out.status.success() && !s.contains("leader -") {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no leader: {s}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!(
        "leader known after {leader_after:?} (processes started to first status naming a leader)"
    );

    // Any node will do: followers redirect.
    let put = kv(&addrs[1], &["put", "k", "1"]);
    assert!(put.status.success(), "{put:?}");
    assert_eq!(stdout(&kv(&addrs[2], &["get", "k"])), "1");
    let mismatch = kv(&addrs[0], &["cas", "k", "6", "--expect", "5"]);
    assert_eq!(mismatch.status.code(), Some(1));
    assert_eq!(stdout(&mismatch), "mismatch: current value 1");
    assert!(
        kv(&addrs[0], &["cas", "k", "2", "--expect", "1"])
            .status
            .success()
    );
    assert!(
        kv(&addrs[0], &["cas", "fresh", "x", "--absent"])
            .status
            .success()
    );
    assert!(kv(&addrs[0], &["append", "k", "3"]).status.success());
    assert!(kv(&addrs[0], &["append", "k", "-4"]).status.success());
    assert_eq!(stdout(&kv(&addrs[0], &["get", "k"])), "23-4");
    assert_eq!(stdout(&kv(&addrs[0], &["get", "nothing"])), "(absent)");

    // A node that is not there is a clear error, not a hang.
    let dead = kv(&format!("127.0.0.1:{}", free_port()), &["get", "k"]);
    assert_eq!(dead.status.code(), Some(255));
    let bad = kv("not-an-address", &["get", "k"]);
    assert_eq!(bad.status.code(), Some(254), "{bad:?}");
}
