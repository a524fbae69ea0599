//! Scenario tests of the WAL, by what they guard:
//!
//! - [`recovery`]: what was persisted comes back after a restart (Figure 2's
//!   persistent state), group commit does one fsync, bad batches are refused.
//! - [`crash`]: a crash at any byte of the last write is repaired (§5.1: a
//!   node that crashes must restart from its durable state).
//! - [`corruption`]: damage anywhere else is refused, naming file and offset.
//! - [`model`]: random batches against an in-memory model (proptest).
//! - [`snapshot`]: a crash at every step of taking or installing a snapshot
//!   (§7) leaves the old or the new one; restart restores state and sessions.

mod corruption;
mod crash;
mod model;
mod recovery;
mod snapshot;

use std::path::{Path, PathBuf};

use bytes::Bytes;

use raft::{Entry, EntryKind, HardState, LogIndex, NodeId, Term};

use super::record::{self, Frame};
use super::{FsyncPolicy, PersistBatch, Recovered, WAL_FILE_NAME, Wal};

fn entry(index: u64, term: u64, data: &str) -> Entry {
    Entry {
        index: LogIndex(index),
        term: Term(term),
        kind: EntryKind::Normal,
        data: Bytes::copy_from_slice(data.as_bytes()),
    }
}

/// Entries `first..=last` of `term`, with data naming index and term.
fn entries(first: u64, last: u64, term: u64) -> Vec<Entry> {
    (first..=last)
        .map(|i| entry(i, term, &format!("cmd {i} of term {term}")))
        .collect()
}

fn hs(term: u64, vote: Option<&str>) -> HardState {
    HardState {
        term: Term(term),
        voted_for: vote.map(NodeId::new),
    }
}

fn open(dir: &Path) -> (Wal, Recovered) {
    Wal::open(dir, FsyncPolicy::Always).unwrap()
}

fn wal_path(dir: &Path) -> PathBuf {
    dir.join(WAL_FILE_NAME)
}

fn append(wal: &mut Wal, entries: &[Entry]) {
    wal.persist(&PersistBatch {
        entries,
        ..PersistBatch::default()
    })
    .unwrap();
}

fn save_hard_state(wal: &mut Wal, hard_state: &HardState) {
    wal.persist(&PersistBatch {
        hard_state: Some(hard_state),
        ..PersistBatch::default()
    })
    .unwrap();
}

/// The byte offset where each record of a healthy WAL file starts.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = record::FILE_HEADER_LEN;
    while at < bytes.len() {
        offsets.push(at);
        match record::next_frame(&bytes[at..]) {
            Frame::Record { size, .. } => at += size,
            other => panic!("not a healthy file at byte {at}: {other:?}"),
        }
    }
    offsets
}

/// A fresh directory holding a WAL file with exactly these bytes.
fn dir_with_file(bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(wal_path(dir.path()), bytes).unwrap();
    dir
}
