//! Snapshots and compaction on disk (§7): a crash at any step of taking or
//! installing a snapshot leaves the old snapshot or the new one usable,
//! never neither, and a restart (snapshot + the log after it) restores the
//! state machine with its client sessions.
//!
//! The crash states are built from the files themselves: the old snapshot
//! and WAL, the new ones, and every prefix of the temporary file a crash
//! could leave while writing either.

use std::fs;
use std::path::Path;

use super::*;
use crate::kv::{Command, KvState, Op, Outcome};
use crate::storage::{SNAPSHOT_FILE_NAME, Snapshot, Storage, StorageError};
use raft::SnapshotMeta;

fn meta(index: u64, term: u64) -> SnapshotMeta {
    SnapshotMeta {
        index: LogIndex(index),
        term: Term(term),
        membership: raft::Membership::voters(["n1", "n2", "n3"].map(NodeId::new)),
    }
}

fn open_storage(dir: &Path) -> (Storage, crate::storage::Restored) {
    Storage::open(dir, FsyncPolicy::Always).unwrap()
}

/// What a node restarts from, in comparable form.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    hard_state: HardState,
    entries: Vec<Entry>,
}

fn state_of(r: &crate::storage::Restored) -> State {
    State {
        snapshot: r
            .snapshot
            .as_ref()
            .map(|s| (s.meta.clone(), s.image().to_vec())),
        hard_state: r.hard_state.clone(),
        entries: r.entries.clone(),
    }
}

/// The files of a data directory that matter.
#[derive(Clone)]
struct Files {
    snapshot: Option<Vec<u8>>,
    wal: Vec<u8>,
}

fn files(dir: &Path) -> Files {
    Files {
        snapshot: fs::read(dir.join(SNAPSHOT_FILE_NAME)).ok(),
        wal: fs::read(wal_path(dir)).unwrap(),
    }
}

/// A fresh directory with these files and, optionally, temporary files.
fn dir_with(f: &Files, snapshot_tmp: Option<&[u8]>, wal_tmp: Option<&[u8]>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if let Some(s) = &f.snapshot {
        fs::write(dir.path().join(SNAPSHOT_FILE_NAME), s).unwrap();
    }
    fs::write(wal_path(dir.path()), &f.wal).unwrap();
    if let Some(t) = snapshot_tmp {
        fs::write(dir.path().join("snapshot.tmp"), t).unwrap();
    }
    if let Some(t) = wal_tmp {
        fs::write(dir.path().join("raft.wal.tmp"), t).unwrap();
    }
    dir
}

/// Cut points of a file worth trying: every byte of a small file.
fn cuts(len: usize) -> impl Iterator<Item = usize> {
    0..=len
}

/// Opens the crash state, checks it restores `expected`, and that the node
/// carries on: a new entry is durable across one more restart.
fn check_recovers(dir: &Path, expected: &State, what: &str) {
    let (mut storage, restored) = open_storage(dir);
    assert_eq!(state_of(&restored), *expected, "{what}");
    let names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(names.is_empty(), "{what}: left {names:?}");
    let last = expected
        .entries
        .last()
        .map(|e| (e.index, e.term))
        .or(expected.snapshot.as_ref().map(|s| (s.0.index, s.0.term)))
        .unwrap();
    let next = entry(last.0.0 + 1, last.1.0, "after the crash");
    append(&mut storage.wal, std::slice::from_ref(&next));
    drop(storage);
    let (_, again) = open_storage(dir);
    let mut want = expected.clone();
    want.entries.push(next);
    assert_eq!(state_of(&again), want, "{what}, after one more restart");
}

/// Runs `step`, which installs a snapshot with `hard_state`, on a directory
/// in state `before`, and checks every state a crash in the middle of it can
/// leave.
fn check_every_crash_point(
    before: &Files,
    hard_state: &HardState,
    step: impl FnOnce(&mut Storage),
) {
    // A changed term or vote is appended to the old WAL first (a crash in
    // that append is the WAL's business, see `crash.rs`).
    let dir = dir_with(before, None, None);
    let (mut storage, _) = open_storage(dir.path());
    if storage.wal.hard_state() != hard_state {
        save_hard_state(&mut storage.wal, hard_state);
    }
    drop(storage);
    let before = &files(dir.path());
    let (mut storage, old) = open_storage(dir.path());
    let old = state_of(&old);
    step(&mut storage);
    drop(storage);
    let after = files(dir.path());
    let (_, new) = open_storage(dir.path());
    let new = state_of(&new);
    assert_ne!(old, new);
    let new_snapshot = after.snapshot.clone().unwrap();

    // 1. Writing the new snapshot's temporary file: any prefix, even all of
    //    it fsynced, is ignored until the rename.
    for cut in cuts(new_snapshot.len()) {
        let d = dir_with(before, Some(&new_snapshot[..cut]), None);
        check_recovers(d.path(), &old, &format!("snapshot.tmp cut at {cut}"));
    }
    // 2. Renamed, but the WAL not yet rewritten: the open finishes the job.
    let renamed = Files {
        snapshot: Some(new_snapshot.clone()),
        wal: before.wal.clone(),
    };
    let d = dir_with(&renamed, None, None);
    check_recovers(d.path(), &new, "new snapshot, old WAL");
    // 3. Writing the new WAL's temporary file: any prefix.
    for cut in cuts(after.wal.len()) {
        let d = dir_with(&renamed, None, Some(&after.wal[..cut]));
        check_recovers(d.path(), &new, &format!("raft.wal.tmp cut at {cut}"));
    }
    // 4. Both renamed.
    let d = dir_with(&after, None, None);
    check_recovers(d.path(), &new, "new snapshot, new WAL");
}

fn image(tag: &str) -> Vec<u8> {
    format!("state machine {tag}").into_bytes()
}

#[test]
fn crash_at_every_step_of_taking_a_snapshot_leaves_the_old_or_the_new_one() {
    // Before: a snapshot at 4 and the log 5..=12 after it.
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open_storage(dir.path());
    save_hard_state(&mut storage.wal, &hs(2, Some("n1")));
    append(&mut storage.wal, &entries(1, 6, 1));
    append(&mut storage.wal, &entries(7, 12, 2));
    storage
        .install(
            &Snapshot::new(meta(4, 1), &image("at 4")),
            &hs(2, Some("n1")),
            &entries(5, 6, 1)
                .into_iter()
                .chain(entries(7, 12, 2))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    drop(storage);
    let before = files(dir.path());

    // The step: the node applied up to 9 and compacts there.
    check_every_crash_point(&before, &hs(2, Some("n1")), |storage| {
        storage
            .install(
                &Snapshot::new(meta(9, 2), &image("at 9")),
                &hs(2, Some("n1")),
                &entries(10, 12, 2),
            )
            .unwrap();
    });
}

#[test]
fn crash_at_every_step_of_the_first_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open_storage(dir.path());
    save_hard_state(&mut storage.wal, &hs(1, None));
    append(&mut storage.wal, &entries(1, 5, 1));
    drop(storage);
    let before = files(dir.path());
    assert!(before.snapshot.is_none());
    check_every_crash_point(&before, &hs(1, None), |storage| {
        storage
            .install(
                &Snapshot::new(meta(3, 1), &image("at 3")),
                &hs(1, None),
                &entries(4, 5, 1),
            )
            .unwrap();
    });
}

#[test]
fn crash_at_every_step_of_installing_a_leaders_snapshot_over_a_stale_log() {
    // A follower holds uncommitted entries 5..=8 of term 2; the leader's
    // snapshot at 8 has term 3, so they conflict and must all go.
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open_storage(dir.path());
    save_hard_state(&mut storage.wal, &hs(2, None));
    append(&mut storage.wal, &entries(1, 4, 1));
    append(&mut storage.wal, &entries(5, 8, 2));
    drop(storage);
    let before = files(dir.path());
    check_every_crash_point(&before, &hs(3, None), |storage| {
        storage
            .install(
                &Snapshot::new(meta(8, 3), &image("leader's at 8")),
                &hs(3, None),
                &[],
            )
            .unwrap();
    });
}

#[test]
fn a_crash_after_the_snapshot_keeps_only_log_entries_that_follow_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open_storage(dir.path());
    append(&mut storage.wal, &entries(1, 4, 1));
    append(&mut storage.wal, &entries(5, 8, 2));
    // Only the snapshot file made it (a crash before the WAL rewrite).
    storage
        .snapshots
        .save(&Snapshot::new(meta(6, 2), &image("at 6")))
        .unwrap();
    drop(storage);
    let (storage, r) = open_storage(dir.path());
    assert_eq!(
        r.entries,
        entries(7, 8, 2),
        "(6, term 2) matches: 7 and 8 follow it"
    );
    assert!(r.finished_compaction.is_some());
    assert_eq!(storage.wal.first_index(), LogIndex(7));
    drop(storage);

    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open_storage(dir.path());
    append(&mut storage.wal, &entries(1, 4, 1));
    append(&mut storage.wal, &entries(5, 8, 2));
    storage
        .snapshots
        .save(&Snapshot::new(meta(6, 3), &image("at 6, another term")))
        .unwrap();
    drop(storage);
    let (storage, r) = open_storage(dir.path());
    assert_eq!(
        r.entries,
        vec![],
        "(6, term 3) conflicts: nothing follows it"
    );
    assert_eq!(
        (storage.wal.last_index(), storage.wal.last_term()),
        (LogIndex(6), Term(3))
    );
}

#[test]
fn a_snapshot_and_log_that_do_not_fit_together_stop_the_node() {
    // The WAL starts after a snapshot that is gone.
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open_storage(dir.path());
    append(&mut storage.wal, &entries(1, 5, 1));
    storage
        .install(
            &Snapshot::new(meta(3, 1), b"x"),
            &hs(1, None),
            &entries(4, 5, 1),
        )
        .unwrap();
    drop(storage);
    let snap = fs::read(dir.path().join(SNAPSHOT_FILE_NAME)).unwrap();
    fs::remove_file(dir.path().join(SNAPSHOT_FILE_NAME)).unwrap();
    let err = Storage::open(dir.path(), FsyncPolicy::Always).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");

    // A snapshot older than where the WAL starts.
    let (mut wal, _) = open(dir.path());
    wal.rewrite(Some(&meta(4, 1)), &hs(1, None), &entries(5, 5, 1))
        .unwrap();
    drop(wal);
    fs::write(dir.path().join(SNAPSHOT_FILE_NAME), &snap).unwrap();
    let err = Storage::open(dir.path(), FsyncPolicy::Always).unwrap_err();
    assert!(err.to_string().contains("before the log's start"), "{err}");
}

// ---- the state machine across a restart ----------------------------------

fn put(client: u64, seq: u64, key: &str, value: &str) -> Command {
    Command {
        client_id: client,
        seq,
        key: key.into(),
        op: Op::Put {
            value: bytes::Bytes::from(value.to_string()),
        },
    }
}

fn append_cmd(client: u64, seq: u64, key: &str, suffix: &str) -> Command {
    Command {
        client_id: client,
        seq,
        key: key.into(),
        op: Op::Append {
            suffix: bytes::Bytes::from(suffix.to_string()),
        },
    }
}

fn cmd_entry(index: u64, c: &Command) -> Entry {
    Entry {
        index: LogIndex(index),
        term: Term(1),
        kind: EntryKind::Normal,
        data: c.encode(),
    }
}

/// What the driver does on start-up: the image, then the log after it.
fn restart(dir: &Path) -> (KvState, LogIndex) {
    let (_, r) = open_storage(dir);
    let mut kv = match &r.snapshot {
        Some(s) => KvState::from_image(s.image()).unwrap(),
        None => KvState::default(),
    };
    let mut applied = r.snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.index);
    for e in &r.entries {
        kv.apply(e.index, &Command::decode(&e.data).unwrap());
        applied = e.index;
    }
    (kv, applied)
}

#[test]
fn restart_restores_values_and_sessions_so_a_retry_is_answered_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open_storage(dir.path());
    let mut kv = KvState::default();
    let cmds = [
        append_cmd(1, 1, "log", "a,"),
        put(2, 1, "x", "1"),
        append_cmd(1, 2, "log", "b,"),
        put(3, 5, "y", "2"),
        // Applied after the snapshot: comes back from the log.
        append_cmd(2, 2, "log", "c,"),
        put(4, 1, "z", "3"),
    ];
    let mut answers = Vec::new();
    let mut log = Vec::new();
    for (i, c) in cmds.iter().enumerate() {
        let index = i as u64 + 1;
        answers.push(kv.apply(LogIndex(index), c));
        log.push(cmd_entry(index, c));
        append(&mut storage.wal, &log[i..=i]);
        if index == 4 {
            let snap = Snapshot::new(meta(4, 1), &kv.to_image());
            storage.install(&snap, &hs(1, None), &[]).unwrap();
        }
    }
    drop(storage);

    let (mut back, applied) = restart(dir.path());
    assert_eq!(applied, LogIndex(6));
    assert_eq!(back, kv, "values and sessions");
    // Client 1's last request was folded into the snapshot: retried, it is
    // answered as the first time and not applied again.
    let again = back.apply(LogIndex(7), &cmds[2]);
    assert_eq!(again, answers[2]);
    assert_eq!(back.get("log").unwrap().as_ref(), b"a,b,c,");
    // Likewise for one replayed from the log after the snapshot.
    assert_eq!(back.apply(LogIndex(8), &cmds[4]), answers[4]);
    assert_eq!(back.get("log").unwrap().as_ref(), b"a,b,c,");
    // An older request of a client is known to be stale, not reapplied.
    assert_eq!(back.apply(LogIndex(9), &cmds[0]).outcome, Outcome::Stale);
    assert_eq!(back.get("log").unwrap().as_ref(), b"a,b,c,");
}

#[test]
fn the_wal_stays_bounded_across_many_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _) = open_storage(dir.path());
    let mut kv = KvState::default();
    let mut largest = 0;
    let every = 100;
    for i in 1..=2_000u64 {
        let c = put(i % 7 + 1, i, &format!("k{}", i % 10), "0123456789");
        kv.apply(LogIndex(i), &c);
        append(&mut storage.wal, &[cmd_entry(i, &c)]);
        largest = largest.max(storage.wal.file_len());
        if i % every == 0 {
            storage
                .install(
                    &Snapshot::new(meta(i, 1), &kv.to_image()),
                    &hs(1, None),
                    &[],
                )
                .unwrap();
        }
    }
    // About `every` entries of ~50 bytes, never the whole history.
    assert!(largest < 100 * 80, "WAL grew to {largest} bytes");
    drop(storage);
    assert_eq!(restart(dir.path()), (kv, LogIndex(2_000)));
}
