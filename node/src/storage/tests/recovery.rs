//! What was persisted comes back: Figure 2's persistent state (currentTerm,
//! votedFor, log[]) survives a restart, including truncations (§5.3) and
//! compaction (§7).

use std::fs;

use super::*;
use crate::storage::StorageError;
use raft::SnapshotMeta;

#[test]
fn a_new_wal_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, rec) = open(dir.path());
    assert_eq!(rec, Recovered::default());
    assert_eq!((wal.last_index(), wal.last_term()), (LogIndex(0), Term(0)));
    assert_eq!(wal.first_index(), LogIndex(1));
    drop(wal);
    // Reopening an empty WAL finds it empty, with nothing to repair.
    assert_eq!(open(dir.path()).1, Recovered::default());
}

#[test]
fn round_trip_of_hard_states_entries_and_truncations() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path());
    let first = entries(1, 3, 1);
    wal.persist(&PersistBatch {
        hard_state: Some(&hs(1, Some("n1"))),
        truncate_from: None,
        entries: &first,
    })
    .unwrap();
    let second = entries(3, 4, 2);
    wal.persist(&PersistBatch {
        hard_state: Some(&hs(2, None)),
        truncate_from: Some(LogIndex(3)),
        entries: &second,
    })
    .unwrap();
    save_hard_state(&mut wal, &hs(2, Some("n2")));
    let len = wal.file_len();
    drop(wal);

    let expected: Vec<Entry> = [&first[..2], &second[..]].concat();
    for _ in 0..2 {
        let (wal, rec) = open(dir.path());
        assert_eq!(rec.hard_state, hs(2, Some("n2")));
        assert_eq!(rec.entries, expected);
        assert_eq!(rec.snapshot, None);
        assert_eq!(rec.repaired_tail, None);
        assert_eq!((wal.last_index(), wal.last_term()), (LogIndex(4), Term(2)));
        assert_eq!(wal.term(LogIndex(2)), Some(Term(1)));
        assert_eq!(wal.term(LogIndex(3)), Some(Term(2)));
        assert_eq!(wal.hard_state(), &hs(2, Some("n2")));
        // Opening a healthy file does not change it.
        assert_eq!(fs::metadata(wal_path(dir.path())).unwrap().len(), len);
    }
}

#[test]
fn term_and_vote_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path());
    save_hard_state(&mut wal, &hs(5, None));
    save_hard_state(&mut wal, &hs(5, Some("n3")));
    drop(wal);

    let (mut wal, rec) = open(dir.path());
    assert_eq!(rec.hard_state, hs(5, Some("n3")));
    // The restored vote still binds (§5.2: one vote per term, even across a
    // restart), and the term cannot go back.
    for bad in [hs(5, Some("n2")), hs(5, None), hs(4, Some("n3"))] {
        let err = wal
            .persist(&PersistBatch {
                hard_state: Some(&bad),
                ..PersistBatch::default()
            })
            .unwrap_err();
        assert!(matches!(err, StorageError::InvalidBatch { .. }), "{err}");
    }
    save_hard_state(&mut wal, &hs(6, Some("n1")));
    drop(wal);
    assert_eq!(open(dir.path()).1.hard_state, hs(6, Some("n1")));
}

#[test]
fn truncate_then_append_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path());
    append(&mut wal, &entries(1, 5, 1));
    let replacement = entries(3, 4, 2);
    wal.persist(&PersistBatch {
        truncate_from: Some(LogIndex(3)),
        entries: &replacement,
        ..PersistBatch::default()
    })
    .unwrap();
    drop(wal);

    let (mut wal, rec) = open(dir.path());
    let mut expected = [&entries(1, 2, 1)[..], &replacement[..]].concat();
    assert_eq!(rec.entries, expected);
    assert_eq!((wal.last_index(), wal.last_term()), (LogIndex(4), Term(2)));
    // Appending after a restart continues from the recovered end.
    append(&mut wal, &entries(5, 5, 3));
    expected.extend(entries(5, 5, 3));
    drop(wal);
    assert_eq!(open(dir.path()).1.entries, expected);

    // A truncation alone, down to an empty log, is durable too.
    let (mut wal, _) = open(dir.path());
    wal.persist(&PersistBatch {
        truncate_from: Some(LogIndex(1)),
        ..PersistBatch::default()
    })
    .unwrap();
    assert_eq!((wal.last_index(), wal.last_term()), (LogIndex(0), Term(0)));
    drop(wal);
    assert_eq!(open(dir.path()).1.entries, vec![]);
}

#[test]
fn group_commit_is_one_fsync_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path());
    let batch = entries(1, 100, 1);
    let before = wal.fsync_count();
    wal.persist(&PersistBatch {
        hard_state: Some(&hs(1, Some("n1"))),
        truncate_from: Some(LogIndex(1)),
        entries: &batch,
    })
    .unwrap();
    assert_eq!(wal.fsync_count() - before, 1);
    append(&mut wal, &entries(101, 101, 1));
    assert_eq!(wal.fsync_count() - before, 2);
    // Nothing to persist, nothing to sync.
    wal.persist(&PersistBatch::default()).unwrap();
    assert_eq!(wal.fsync_count() - before, 2);
}

#[test]
fn fsync_never_skips_the_sync_but_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), FsyncPolicy::Never).unwrap();
    let before = wal.fsync_count();
    append(&mut wal, &entries(1, 10, 1));
    assert_eq!(wal.fsync_count(), before);
    drop(wal);
    // Still written: a process crash (not a power loss) keeps it.
    assert_eq!(open(dir.path()).1.entries, entries(1, 10, 1));
}

#[test]
fn bad_batches_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path());
    append(&mut wal, &entries(1, 3, 2));
    let (len, syncs) = (wal.file_len(), wal.fsync_count());
    let gap = entries(5, 5, 2);
    let older_term = entries(4, 4, 1);
    let out_of_order = [entry(4, 2, "a"), entry(4, 2, "b")];
    let batches = [
        PersistBatch {
            entries: &gap,
            ..PersistBatch::default()
        },
        PersistBatch {
            entries: &older_term,
            ..PersistBatch::default()
        },
        PersistBatch {
            entries: &out_of_order,
            ..PersistBatch::default()
        },
        PersistBatch {
            truncate_from: Some(LogIndex(5)),
            ..PersistBatch::default()
        },
        PersistBatch {
            truncate_from: Some(LogIndex(0)),
            ..PersistBatch::default()
        },
        // The entries must start at the truncation point.
        PersistBatch {
            truncate_from: Some(LogIndex(2)),
            entries: &older_term,
            ..PersistBatch::default()
        },
    ];
    for batch in &batches {
        let err = wal.persist(batch).unwrap_err();
        assert!(matches!(err, StorageError::InvalidBatch { .. }), "{err}");
        assert!(err.to_string().contains(WAL_FILE_NAME), "{err}");
        assert_eq!((wal.file_len(), wal.fsync_count()), (len, syncs));
        assert_eq!((wal.last_index(), wal.last_term()), (LogIndex(3), Term(2)));
    }
    // The WAL is still usable and unchanged.
    append(&mut wal, &entries(4, 4, 2));
    drop(wal);
    assert_eq!(open(dir.path()).1.entries, entries(1, 4, 2));
}

#[test]
fn rewrite_keeps_only_the_live_records() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path());
    save_hard_state(&mut wal, &hs(3, Some("n2")));
    append(&mut wal, &entries(1, 6, 1));
    append(&mut wal, &entries(7, 10, 3));
    let snapshot = SnapshotMeta {
        index: LogIndex(6),
        term: Term(1),
        membership: raft::Membership::voters(["n1", "n2", "n3"].map(NodeId::new)),
    };
    let before = wal.file_len();
    wal.rewrite(Some(&snapshot), &hs(3, Some("n2")), &entries(7, 10, 3))
        .unwrap();
    assert!(wal.file_len() < before);
    assert_eq!(wal.first_index(), LogIndex(7));
    assert_eq!(wal.term(LogIndex(6)), Some(Term(1)));
    assert_eq!(wal.term(LogIndex(5)), None);
    // Appends go to the new file.
    append(&mut wal, &entries(11, 11, 3));
    drop(wal);

    let (wal, rec) = open(dir.path());
    assert_eq!(rec.snapshot, Some(snapshot.clone()));
    assert_eq!(rec.hard_state, hs(3, Some("n2")));
    assert_eq!(rec.entries, entries(7, 11, 3));
    assert_eq!((wal.last_index(), wal.last_term()), (LogIndex(11), Term(3)));
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [WAL_FILE_NAME], "no temporary file is left behind");
    drop(wal);

    // Entries must follow the snapshot; an older snapshot is refused.
    let (mut wal, _) = open(dir.path());
    let err = wal
        .rewrite(Some(&snapshot), &hs(3, None), &entries(8, 8, 3))
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidBatch { .. }), "{err}");
    let older = SnapshotMeta {
        index: LogIndex(2),
        ..snapshot
    };
    assert!(wal.rewrite(Some(&older), &hs(3, None), &[]).is_err());
    assert!(wal.rewrite(None, &hs(3, None), &entries(1, 1, 1)).is_err());
    // A snapshot that covers the whole log leaves it empty.
    let all = SnapshotMeta {
        index: LogIndex(11),
        term: Term(3),
        membership: raft::Membership::default(),
    };
    wal.rewrite(Some(&all), &hs(4, None), &[]).unwrap();
    assert_eq!((wal.last_index(), wal.last_term()), (LogIndex(11), Term(3)));
    append(&mut wal, &entries(12, 12, 4));
    drop(wal);
    let (_, rec) = open(dir.path());
    assert_eq!(rec.snapshot, Some(all));
    assert_eq!(rec.entries, entries(12, 12, 4));
}

#[test]
fn a_temporary_file_left_by_a_crash_is_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path());
    append(&mut wal, &entries(1, 2, 1));
    drop(wal);
    // A crash during a rewrite, before its rename: the old WAL stands.
    fs::write(dir.path().join("raft.wal.tmp"), b"half a new file").unwrap();
    let (_, rec) = open(dir.path());
    assert_eq!(rec.entries, entries(1, 2, 1));
    assert!(!dir.path().join("raft.wal.tmp").exists());
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the WAL should be cannot be read as a file.
    fs::create_dir(wal_path(dir.path())).unwrap();
    let err = Wal::open(dir.path(), FsyncPolicy::Always).unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&wal_path(dir.path()).display().to_string()),
        "{msg}"
    );
}

#[test]
fn a_version_1_wal_is_read_and_rewritten_in_the_current_format() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path());
    let written = entries(1, 3, 1);
    save_hard_state(&mut wal, &hs(1, Some("n1")));
    append(&mut wal, &written);
    drop(wal);
    // Hard states and normal entries are the same in version 1: make the
    // header say 1 (and its checksum match).
    let path = wal_path(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    fs::write(&path, &bytes).unwrap();

    let (_, rec) = open(dir.path());
    assert_eq!(rec.hard_state, hs(1, Some("n1")));
    assert_eq!(rec.entries, written);
    let upgraded = fs::read(&path).unwrap();
    assert_eq!(u32::from_le_bytes(upgraded[8..12].try_into().unwrap()), 2);
    assert_eq!(open(dir.path()).1.entries, written);
}

#[test]
fn a_wal_of_an_unknown_version_is_refused_naming_the_file() {
    let mut bytes = crate::storage::record::file_header().to_vec();
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    let dir = dir_with_file(&bytes);
    let err = Wal::open(dir.path(), FsyncPolicy::Always).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StorageError::NotAWal { .. }), "{text}");
    assert!(
        text.contains("raft.wal") && text.contains("version 3"),
        "{text}"
    );
}
