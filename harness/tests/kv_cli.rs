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

/// Starts node `i` of `addrs` (n1, n2, ...), with every other as a peer.
fn start(nodes: &mut Nodes, tmp: &std::path::Path, addrs: &[String], i: usize) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args([
        "node",
        "--id",
        &format!("n{}", i + 1),
        "--listen",
        &addrs[i],
    ])
    .arg("--data-dir")
    .arg(tmp.join(format!("n{}", i + 1)))
    .args(["--cluster-id", "demo"]);
    for j in (0..addrs.len()).filter(|&j| j != i) {
        cmd.args(["--peer", &format!("n{}={}", j + 1, addrs[j])]);
    }
    nodes.0.push(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
}

/// Polls `harness kv ARGS` at `node` until its output contains `want` (bounded).
fn wait_for(node: &str, args: &[&str], want: &str) -> String {
    let started = Instant::now();
    loop {
        let out = stdout(&kv(node, args));
        if out.contains(want) {
            return out;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "`{}` never said {want:?}: {out}",
            args.join(" ")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
        start(&mut nodes, tmp.path(), &addrs, i);
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

    values_from_files_and_stdin(&addrs[0], tmp.path());

    // Another cluster's node says so: the user's --cluster-id is wrong.
    let stranger = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "kv",
            "--node",
            &addrs[0],
            "--cluster-id",
            "other",
            "get",
            "k",
        ])
        .output()
        .unwrap();
    assert_eq!(stranger.status.code(), Some(254), "{stranger:?}");
    let err = String::from_utf8_lossy(&stranger.stderr);
    assert!(
        err.contains("--cluster-id other") && err.contains("`demo`"),
        "{err}"
    );
    assert!(!err.contains("could not be reached"), "{err}");

    // A node that is not there is a clear error, not a hang.
    let dead = kv(&format!("127.0.0.1:{}", free_port()), &["get", "k"]);
    assert_eq!(dead.status.code(), Some(255));
    let bad = kv("not-an-address", &["get", "k"]);
    assert_eq!(bad.status.code(), Some(254), "{bad:?}");
}

/// `put --value-file PATH` and `--value-file -` (stdin) carry any bytes;
/// a value above the node's limit is refused at once, whatever its size.
fn values_from_files_and_stdin(node: &str, tmp: &std::path::Path) {
    let file = tmp.join("value");
    let value: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(&file, &value).unwrap();
    let put = kv(
        node,
        &["put", "big", "--value-file", file.to_str().unwrap()],
    );
    assert!(put.status.success(), "{put:?}");
    assert_eq!(stdout(&kv(node, &["get", "big"])).as_bytes(), &value[..]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["kv", "--node", node, "--cluster-id", "demo"])
        .args(["put", "piped", "--value-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&kv(node, &["get", "piped"])), "from stdin");

    for size in [(1u64 << 20) + 1, 10 << 20, 100 << 20] {
        // Sparse: 100 MB of zeros that take no disk.
        let f = std::fs::File::create(&file).unwrap();
        f.set_len(size).unwrap();
        let out = kv(
            node,
            &["put", "big", "--value-file", file.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(254), "{size} bytes: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("limit of 1048576 bytes"),
            "{size} bytes: {err}"
        );
    }
    let missing = kv(node, &["put", "k", "--value-file", "/nonexistent/value"]);
    assert_eq!(missing.status.code(), Some(254), "{missing:?}");
    let both = kv(node, &["put", "k", "v", "--value-file", "-"]);
    assert_eq!(both.status.code(), Some(254), "{both:?}");
    // The value read back is unchanged.
    assert_eq!(stdout(&kv(node, &["get", "big"])).len(), value.len());
}

#[test]
fn members_are_listed_added_handed_leadership_and_removed_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    let addrs: Vec<String> = (0..4)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let mut nodes = Nodes(Vec::new());
    // n1..n3 form the cluster (n4 is listed as their peer only once it
    // exists: each node names the others it knows at its start).
    for i in 0..3 {
        start(&mut nodes, tmp.path(), &addrs[..3], i);
    }
    let list = wait_for(&addrs[0], &["member", "list"], "n3 voter");
    assert_eq!(list.lines().count(), 3, "{list}");
    // n4 starts with an empty directory: the cluster exists, so it joins
    // as a non-member until added.
    start(&mut nodes, tmp.path(), &addrs, 3);
    wait_for(&addrs[3], &["status"], " joined");
    let add = kv(&addrs[1], &["member", "add", "n4", &addrs[3]]);
    assert!(add.status.success(), "{add:?}");
    let out = stdout(&add);
    assert!(out.starts_with("ok (configuration at log index"), "{out}");
    assert!(out.contains("n4 voter"), "{out}");
    // Refusals name the reason and exit 1.
    let refused = kv(&addrs[0], &["member", "promote", "n2"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(stdout(&refused).contains("refused: n2 is already a voter"));
    let bad = kv(&addrs[0], &["member", "add", "n5", "nowhere"]);
    assert_ne!(bad.status.code(), Some(0), "{bad:?}");

    let transfer = kv(&addrs[0], &["member", "transfer", "n4"]);
    assert!(transfer.status.success(), "{transfer:?}");
    wait_for(&addrs[3], &["status"], "n4 leader");
    let remove = kv(&addrs[0], &["member", "remove", "n1"]);
    assert!(remove.status.success(), "{remove:?}");
    let list = wait_for(&addrs[3], &["member", "list"], "n4 voter");
    assert!(!list.contains("n1 "), "{list}");
    assert!(kv(&addrs[3], &["put", "after", "changes"]).status.success());
}
