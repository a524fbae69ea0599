//! A crash (kill -9, power loss) in the middle of an append leaves a prefix of
//! the write, or zeros, at the tail. That append never returned, so nothing in
//! it was acknowledged: the tail is cut and the node carries on, and the next
//! append goes right after the last good record.

use std::fs;

use super::*;

/// Writes a few records of every kind, then `last` as the final batch;
/// returns the file bytes and where the final batch starts.
fn file_ending_with(last: PersistBatch) -> (Vec<u8>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path());
    save_hard_state(&mut wal, &hs(1, Some("n1")));
    append(&mut wal, &entries(1, 3, 1));
    wal.persist(&PersistBatch {
        hard_state: Some(&hs(2, None)),
        truncate_from: Some(LogIndex(3)),
        entries: &entries(3, 3, 2),
    })
    .unwrap();
    let before = wal.file_len() as usize;
    wal.persist(&last).unwrap();
    (fs::read(wal_path(dir.path())).unwrap(), before)
}

/// The state `file_ending_with` wrote before its final batch.
fn state_before_last() -> (HardState, Vec<Entry>) {
    let log = [&entries(1, 2, 1)[..], &entries(3, 3, 2)[..]].concat();
    (hs(2, None), log)
}

#[test]
fn crash_at_any_byte_of_the_last_record_is_repaired() {
    let long_entry = [entry(4, 2, &"x".repeat(100))];
    let noop = [Entry {
        kind: EntryKind::Noop,
        ..entry(4, 3, "")
    }];
    let vote = hs(2, Some("n3"));
    let last_records = [
        PersistBatch {
            entries: &long_entry,
            ..PersistBatch::default()
        },
        PersistBatch {
            entries: &noop,
            ..PersistBatch::default()
        },
        PersistBatch {
            hard_state: Some(&vote),
            ..PersistBatch::default()
        },
        PersistBatch {
            truncate_from: Some(LogIndex(2)),
            ..PersistBatch::default()
        },
    ];
    let (hard_state, log) = state_before_last();
    for last in last_records {
        let (bytes, before) = file_ending_with(last);
        assert_eq!(record_offsets(&bytes).last(), Some(&before), "one record");
        for cut in before..bytes.len() {
            let dir = dir_with_file(&bytes[..cut]);
            let (mut wal, rec) = open(dir.path());
            assert_eq!(rec.hard_state, hard_state, "cut at {cut}");
            assert_eq!(rec.entries, log, "cut at {cut}");
            let repair = rec.repaired_tail;
            if cut == before {
                assert_eq!(repair, None);
            } else {
                let repair = repair.unwrap_or_else(|| panic!("cut at {cut}: no repair"));
                assert_eq!(repair.offset, before as u64);
                assert_eq!(repair.bytes_dropped, (cut - before) as u64);
            }
            let len = fs::metadata(wal_path(dir.path())).unwrap().len();
            assert_eq!(len, before as u64, "the torn tail is cut off the file");

            // New appends go right after the last good record and survive.
            let new = entry(4, 2, "after the crash");
            append(&mut wal, std::slice::from_ref(&new));
            drop(wal);
            let (_, rec) = open(dir.path());
            assert_eq!(rec.repaired_tail, None, "cut at {cut}");
            assert_eq!(rec.entries, [&log[..], &[new][..]].concat(), "cut at {cut}");
        }
    }
}

/// A batch is several records written at once; a crash may keep any prefix
/// of them. Each prefix must replay to the state after that many records,
/// which is always a state Raft can restart from (see `wal.rs`).
#[test]
fn crash_anywhere_in_a_batch_keeps_a_prefix_of_it() {
    let new_entries = entries(2, 4, 3);
    let vote = hs(3, Some("n2"));
    let (bytes, before) = file_ending_with(PersistBatch {
        hard_state: Some(&vote),
        truncate_from: Some(LogIndex(2)),
        entries: &new_entries,
    });
    let (old_hs, old_log) = state_before_last();
    // The state after each record of the batch.
    let after: Vec<(HardState, Vec<Entry>)> = vec![
        (old_hs, old_log.clone()),
        (vote.clone(), old_log.clone()),
        (vote.clone(), old_log[..1].to_vec()),
        (vote.clone(), [&old_log[..1], &new_entries[..1]].concat()),
        (vote.clone(), [&old_log[..1], &new_entries[..2]].concat()),
        (vote.clone(), [&old_log[..1], &new_entries[..3]].concat()),
    ];
    let mut boundaries: Vec<usize> = record_offsets(&bytes)
        .into_iter()
        .filter(|&o| o >= before)
        .collect();
    boundaries.push(bytes.len());
    assert_eq!(boundaries.len(), after.len());
    for cut in before..=bytes.len() {
        let whole = boundaries.iter().filter(|&&b| b <= cut).count() - 1;
        let dir = dir_with_file(&bytes[..cut]);
        let (_, rec) = open(dir.path());
        assert_eq!(
            (rec.hard_state, rec.entries),
            after[whole].clone(),
            "cut at {cut}"
        );
        assert_eq!(rec.repaired_tail.is_some(), !boundaries.contains(&cut));
    }
}

#[test]
fn a_zero_filled_tail_is_torn() {
    let (bytes, _) = file_ending_with(PersistBatch {
        entries: &entries(4, 4, 2),
        ..PersistBatch::default()
    });
    let (_, log) = state_before_last();
    let expected = [&log[..], &entries(4, 4, 2)[..]].concat();
    for zeros in [1, 7, 8, 12, 4096] {
        let mut file = bytes.clone();
        file.resize(bytes.len() + zeros, 0);
        let dir = dir_with_file(&file);
        let (_, rec) = open(dir.path());
        assert_eq!(rec.entries, expected);
        let repair = rec.repaired_tail.unwrap();
        assert_eq!(repair.offset, bytes.len() as u64);
        assert_eq!(repair.bytes_dropped, zeros as u64);
        assert_eq!(repair.reason, "zero-filled tail");
    }

    // Part of a record, then blocks that never got their data: still torn,
    // because the record's length reaches past the end of the file.
    let last = *record_offsets(&bytes).last().unwrap();
    let mut file = bytes[..last + 20].to_vec();
    file.resize(bytes.len() - 1, 0);
    let dir = dir_with_file(&file);
    let (_, rec) = open(dir.path());
    assert_eq!(rec.entries, log);
    assert_eq!(rec.repaired_tail.unwrap().offset, last as u64);
}

#[test]
fn a_few_bytes_after_the_last_record_are_a_torn_header() {
    // Fewer than 8 bytes cannot be told from the start of a record header
    // (its length field is not complete yet), so they are a torn write.
    let (bytes, _) = file_ending_with(PersistBatch {
        entries: &entries(4, 4, 2),
        ..PersistBatch::default()
    });
    for junk in 1..8 {
        let mut file = bytes.clone();
        file.extend(std::iter::repeat_n(0xAB, junk));
        let dir = dir_with_file(&file);
        let (_, rec) = open(dir.path());
        assert_eq!(rec.entries.len(), 4);
        assert_eq!(rec.repaired_tail.unwrap().bytes_dropped, junk as u64);
    }
}
