//! Damage that a crash mid-append cannot explain is refused with the file and
//! the byte offset, and the file is left as it was: a complete record may
//! hold a committed entry, and dropping it silently would break Leader
//! Completeness (§5.4) — the node must stop and a human must look.

use std::fs;

use super::*;
use crate::storage::StorageError;

/// A healthy file: hard state, five entries, a truncation, two entries.
fn healthy_file() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path());
    save_hard_state(&mut wal, &hs(1, Some("n1")));
    for i in 1..=5 {
        append(&mut wal, &entries(i, i, 1));
    }
    wal.persist(&PersistBatch {
        truncate_from: Some(LogIndex(5)),
        entries: &entries(5, 6, 2),
        ..PersistBatch::default()
    })
    .unwrap();
    fs::read(wal_path(dir.path())).unwrap()
}

/// Opens a WAL made of `bytes`, expects corruption at `offset`, and checks
/// the message and that the file was not touched.
fn assert_corrupt_at(bytes: &[u8], offset: usize, reason_part: &str) {
    let dir = dir_with_file(bytes);
    let err = Wal::open(dir.path(), FsyncPolicy::Always).unwrap_err();
    let path = wal_path(dir.path());
    match &err {
        StorageError::Corrupt {
            path: p,
            offset: o,
            reason,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*o, offset as u64, "{err}");
            assert!(reason.contains(reason_part), "{err}");
        }
        other => panic!("expected corruption at {offset}, got: {other}"),
    }
    let msg = err.to_string();
    let expected = format!("corrupt record in {} at byte {offset}: ", path.display());
    assert!(msg.starts_with(&expected), "{msg}");
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "a corrupt file is left as it was"
    );
}

fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 0x10;
    b
}

#[test]
fn a_flipped_byte_in_any_field_of_a_middle_record_is_corruption() {
    let bytes = healthy_file();
    let offsets = record_offsets(&bytes);
    let middle = offsets[3];
    let next = offsets[4];
    for at in middle..middle + 8 {
        assert_corrupt_at(&flipped(&bytes, at), middle, "length");
    }
    for at in middle + 8..middle + 12 {
        assert_corrupt_at(&flipped(&bytes, at), middle, "payload checksum");
    }
    for at in middle + 12..next {
        assert_corrupt_at(&flipped(&bytes, at), middle, "payload checksum");
    }
}

#[test]
fn a_damaged_last_record_is_corruption_not_a_torn_tail() {
    // The record is complete, so it was written whole: it may have been
    // acknowledged. In particular a damaged length that now points past the
    // end of the file must not be taken for a torn write.
    let bytes = healthy_file();
    let last = *record_offsets(&bytes).last().unwrap();
    let mut big_len = bytes.clone();
    big_len[last + 2] = 0x7F;
    assert_corrupt_at(&big_len, last, "length");
    for at in last..bytes.len() {
        let reason = if at < last + 8 { "length" } else { "checksum" };
        assert_corrupt_at(&flipped(&bytes, at), last, reason);
    }
}

#[test]
fn garbage_after_the_last_record_is_corruption() {
    // Eight bytes or more that do not start a valid record header cannot be
    // the prefix of any write this WAL makes.
    let bytes = healthy_file();
    for junk in [8, 12, 100] {
        let mut file = bytes.clone();
        file.extend((0..junk).map(|i| i as u8 ^ 0xA5));
        assert_corrupt_at(&file, bytes.len(), "length");
    }
}

#[test]
fn zeros_in_the_middle_are_corruption() {
    // Zeros followed by data are not a tail that never reached the disk.
    let bytes = healthy_file();
    let offsets = record_offsets(&bytes);
    let mut file = bytes.clone();
    file[offsets[2]..offsets[4]].fill(0);
    assert_corrupt_at(&file, offsets[2], "length");
}

#[test]
fn a_lost_record_in_the_middle_is_corruption() {
    // Whole records with good checksums, but entry 3 is missing: replay
    // refuses the gap instead of returning a log with a hole in it.
    let bytes = healthy_file();
    let offsets = record_offsets(&bytes);
    let mut file = bytes[..offsets[3]].to_vec();
    file.extend_from_slice(&bytes[offsets[4]..]);
    assert_corrupt_at(&file, offsets[3], "does not follow");
}

#[test]
fn impossible_records_with_good_checksums_are_corruption() {
    let bytes = healthy_file();
    let end = bytes.len();
    /// Appends one well-framed record to a file.
    type Write = fn(&mut Vec<u8>);
    let impossible: [(&str, Write); 7] = [
        ("does not follow", |b| {
            record::encode_entry(b, &entry(9, 2, "gap")).unwrap()
        }),
        ("lower than the term", |b| {
            record::encode_entry(b, &entry(7, 1, "old term")).unwrap()
        }),
        ("past the end", |b| record::encode_truncate(b, LogIndex(9))),
        ("term would go back", |b| {
            record::encode_hard_state(b, &hs(0, None)).unwrap()
        }),
        ("vote of term 1", |b| {
            record::encode_hard_state(b, &hs(1, Some("n2"))).unwrap()
        }),
        ("unknown record kind", |b| {
            record::encode_raw(b, &[42, 0, 0])
        }),
        ("payload: cut short", |b| record::encode_raw(b, &[3, 1, 2])),
    ];
    for (reason, write) in impossible {
        let mut file = bytes.clone();
        write(&mut file);
        assert_corrupt_at(&file, end, reason);
    }
}

#[test]
fn a_wrong_file_is_refused_with_a_clear_error() {
    let header = record::file_header();
    let mut other_version = header;
    other_version[8..12].copy_from_slice(&7u32.to_le_bytes());
    let crc = crc32fast::hash(&other_version[..12]);
    other_version[12..].copy_from_slice(&crc.to_le_bytes());
    let cases: [(&[u8], &str); 4] = [
        (b"", "shorter than the 16-byte header"),
        (&header[..9], "shorter than the 16-byte header"),
        (b"SQLite format 3\0 and more bytes", "bad magic"),
        (&other_version, "format version 7"),
    ];
    for (bytes, reason) in cases {
        let dir = dir_with_file(bytes);
        let err = Wal::open(dir.path(), FsyncPolicy::Always).unwrap_err();
        assert!(matches!(err, StorageError::NotAWal { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(reason), "{msg}");
        assert!(
            msg.contains(&wal_path(dir.path()).display().to_string()),
            "{msg}"
        );
        assert_eq!(fs::read(wal_path(dir.path())).unwrap(), bytes);
    }
    // The right magic with a damaged header is a damaged WAL.
    assert_corrupt_at(&flipped(&header, 9), 0, "header checksum");
}
