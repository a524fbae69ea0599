//! Snapshots between real node processes (§7): a node that was down while
//! the others wrote past several snapshots comes back, receives the
//! leader's snapshot over the streamed InstallSnapshot RPC, continues from
//! the log, and ends with the same values as the cluster.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use node::kv::{Command, KvState};
use node::storage::{FsyncPolicy, Storage};
use raft::{EntryKind, LogIndex};
use support::Cluster;

/// The snapshot events of a node's events.jsonl, as (how, index).
fn snapshot_events(c: &Cluster, i: usize) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(c.nodes[i].dir.join("events.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "snapshot")
        .map(|v| {
            (
                v["how"].as_str().unwrap_or_default().to_string(),
                v["index"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The state machine a data directory restarts to, up to `applied`.
fn state_on_disk(dir: &std::path::Path, applied: u64) -> (KvState, u64) {
    let (_, restored) = Storage::open(dir, FsyncPolicy::Always).unwrap();
    let snap = restored.snapshot.expect("the node holds a snapshot");
    let mut kv = KvState::from_image(snap.image()).unwrap();
    for e in restored
        .entries
        .iter()
        .filter(|e| e.index <= LogIndex(applied))
    {
        if e.kind == EntryKind::Normal {
            kv.apply(e.index, &Command::decode(&e.data).unwrap());
        }
    }
    (kv, snap.meta.index.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_several_snapshots_catches_up_by_install_snapshot() {
    let every = 20;
    let mut c = Cluster::start(3, &["--snapshot-every", &every.to_string()]);
    let t = Duration::from_secs(10);
    let leader = c.leader(t).await.expect("a leader");
    let lagger = (leader + 1) % 3;
    let mut expected = BTreeMap::new();
    let mut seq = 0;
    let mut write = async |c: &Cluster, key: String, value: String| {
        seq += 1;
        assert!(c.put(&key, &value, (1, seq), t).await, "write {seq}");
        expected.insert(key, value);
    };
    for i in 0..5 {
        write(&c, format!("k{i}"), format!("early{i}")).await;
    }

    c.kill(lagger);
    // Past several snapshots, on a few keys (overwritten) and many (kept).
    for i in 0..120 {
        write(&c, format!("k{}", i % 13), format!("v{i}")).await;
        if i % 10 == 0 {
            write(&c, format!("new{i}"), format!("n{i}")).await;
        }
    }
    let leader = c.leader(t).await.expect("a leader");
    let taken = snapshot_events(&c, leader);
    assert!(
        taken.iter().filter(|(how, _)| how == "taken").count() >= 5,
        "the leader compacted several times: {taken:?}"
    );

    c.restart(lagger);
    let target = c
        .client(leader)
        .status(Duration::from_secs(1))
        .await
        .unwrap()
        .commit_index;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(s) = c.client(lagger).status(Duration::from_millis(500)).await
            && s.last_applied >= target
        {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted node did not catch up to {target}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let installed: Vec<u64> = snapshot_events(&c, lagger)
        .into_iter()
        .filter(|(how, _)| how == "installed")
        .map(|(_, index)| index)
        .collect();
    assert!(
        !installed.is_empty(),
        "caught up by InstallSnapshot: {:?}",
        snapshot_events(&c, lagger)
    );
    assert!(status.snapshot_index >= installed[0], "{status:?}");
    assert!(status.first_log_index > 5 + 1, "{status:?}");

    // Then by the log: a write after the install reaches it as an entry.
    write(&c, "after".into(), "install".into()).await;
    let target = status.last_applied + 1;
    let deadline = Instant::now() + Duration::from_secs(10);
    let applied = loop {
        if let Ok(s) = c.client(lagger).status(Duration::from_millis(500)).await
            && s.last_applied >= target
        {
            break s.last_applied;
        }
        assert!(Instant::now() < deadline, "no entry after the install");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Its state machine, as it would restart: every value as written.
    for i in 0..3 {
        c.kill(i);
    }
    let (kv, snapshot_index) = state_on_disk(&c.nodes[lagger].dir, applied);
    assert!(snapshot_index >= installed[0]);
    for (k, v) in &expected {
        assert_eq!(
            kv.get(k).map(|b| String::from_utf8(b.to_vec()).unwrap()),
            Some(v.clone()),
            "key {k}"
        );
    }
    assert_eq!(kv.len(), expected.len());
    // One session (client 1), still remembering its latest request.
    assert_eq!(kv.session_count(), 1);
}
