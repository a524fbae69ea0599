//! How long a node takes to restart after a long history, with snapshots
//! on: the measurement behind "restart time is dominated by the snapshot
//! load" (issue 7). Not an assertion about the machine, so ignored by
//! default; run it in release:
//!
//! ```text
//! cargo test --release -p node --test restart_time -- --ignored --nocapture
//! ```
//!
//! Knobs (environment): `RESTART_WRITES` (default 1000000), `RESTART_KEYS`
//! (distinct keys written round-robin, default 100000), `RESTART_VALUE_BYTES`
//! (default 100), `RESTART_SNAPSHOT_EVERY` (default 4096), `RESTART_CLIENTS`
//! (concurrent clients, default 128), `RESTART_FSYNC` (default always).
//!
//! One node process is loaded over gRPC, its data directory's WAL and
//! snapshot sizes are sampled throughout, then it is killed (SIGKILL) and
//! restarted. Reported: the node's own account of the restart (snapshot
//! read, image decode, log replay, from its `start` event), the time until
//! it serves Admin.Status, and until it has applied everything again.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use node::client::Session;
use support::Cluster;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The node's log as plain text (tracing colours its fields).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn file_len(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand with --release --ignored --nocapture"]
async fn restart_time_after_a_million_writes() {
    let writes = knob("RESTART_WRITES", 1_000_000);
    let keys = knob("RESTART_KEYS", 100_000);
    let value_bytes = knob("RESTART_VALUE_BYTES", 100) as usize;
    let every = knob("RESTART_SNAPSHOT_EVERY", 4096);
    let clients = knob("RESTART_CLIENTS", 128);
    let fsync = std::env::var("RESTART_FSYNC").unwrap_or_else(|_| "always".into());
    let mut c = Cluster::start(
        1,
        &["--snapshot-every", &every.to_string(), "--fsync", &fsync],
    );
    c.leader(Duration::from_secs(10)).await.expect("a leader");
    let dir = c.nodes[0].dir.clone();

    // Sample the on-disk sizes while the load runs.
    let max_wal = Arc::new(AtomicU64::new(0));
    let max_snap = Arc::new(AtomicU64::new(0));
    let sampling = Arc::new(AtomicU64::new(1));
    let sampler = {
        let (dir, max_wal, max_snap, sampling) = (
            dir.clone(),
            max_wal.clone(),
            max_snap.clone(),
            sampling.clone(),
        );
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) == 1 {
                max_wal.fetch_max(file_len(&dir.join("raft.wal")), Ordering::Relaxed);
                max_snap.fetch_max(file_len(&dir.join("snapshot")), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..clients {
        let client = c.client(0);
        let next = next.clone();
        let value = Bytes::from(vec![b'v'; value_bytes]);
        tasks.push(tokio::spawn(async move {
            let mut seq = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= writes {
                    return;
                }
                seq += 1;
                let key = format!("key{}", i % keys);
                loop {
                    let put = Session::new(t + 1, seq).put(&key, value.clone());
                    let r = client.call(put, Duration::from_secs(10)).await;
                    if r.is_ok_and(|r| !r.is_not_leader()) {
                        break;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let load = started.elapsed();
    sampling.store(0, Ordering::Relaxed);
    sampler.await.unwrap();
    let before = c.client(0).status(Duration::from_secs(5)).await.unwrap();
    let wal_at_end = file_len(&dir.join("raft.wal"));
    let snap_at_end = file_len(&dir.join("snapshot"));

    // What taking each snapshot cost: the time the driver thread was
    // blocked (the image), and in all (the file written in the background).
    let log = strip_ansi(&c.log_of(0));
    let field = |name: &str| -> Vec<u64> {
        let mut v: Vec<u64> = log
            .lines()
            .filter(|l| l.contains("took snapshot"))
            .filter_map(|l| {
                l.split(&format!(" {name}="))
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        v.sort_unstable();
        v
    };
    let (blocked, took) = (field("blocked_ms"), field("ms"));

    c.kill(0);
    let restarted = Instant::now();
    c.restart(0);
    let serving = loop {
        if c.client(0).status(Duration::from_millis(200)).await.is_ok() {
            break restarted.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let caught_up = loop {
        if let Ok(s) = c.client(0).status(Duration::from_millis(200)).await
            && s.last_applied >= before.last_applied
        {
            break restarted.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let start_note = events
        .lines()
        .rev()
        .find(|l| l.contains(r#""event":"start""#))
        .unwrap()
        .to_string();

    println!("--- restart after {writes} writes ---");
    println!(
        "load: {writes} puts of {value_bytes} B over {keys} keys by {clients} clients, --snapshot-every {every}, --fsync {fsync}: {:.1} s ({:.0} writes/s)",
        load.as_secs_f64(),
        writes as f64 / load.as_secs_f64()
    );
    println!(
        "before the kill: last applied {}, snapshot index {}, first log index {}",
        before.last_applied, before.snapshot_index, before.first_log_index
    );
    println!(
        "on disk: raft.wal {wal_at_end} B at the end, at most {} B sampled; snapshot {snap_at_end} B (at most {} B)",
        max_wal.load(Ordering::Relaxed),
        max_snap.load(Ordering::Relaxed)
    );
    if !took.is_empty() && blocked.len() == took.len() {
        println!(
            "snapshots taken: {}; driver blocked (image + checksum) {} ms median, {} ms max; \
             in all (+ background write and fsync, rename, WAL rewrite) {} ms median, {} ms max",
            took.len(),
            blocked[blocked.len() / 2],
            blocked[blocked.len() - 1],
            took[took.len() / 2],
            took[took.len() - 1]
        );
    }
    println!("node's start event: {start_note}");
    println!(
        "restart: serving Admin.Status after {} ms; applied {} again after {} ms (includes the single node's election timeout)",
        serving.as_millis(),
        before.last_applied,
        caught_up.as_millis()
    );
}
