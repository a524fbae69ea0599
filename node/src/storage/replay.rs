//! Reading a WAL back: records are applied in file order (the last hard
//! state wins, a truncation drops the suffix, a snapshot replaces the log),
//! and the first bad spot decides the outcome — a torn tail is reported for
//! cutting, anything else is [`StorageError::Corrupt`] at its byte offset.

use std::fmt;
use std::path::Path;

use raft::{Entry, HardState, SnapshotMeta};

use super::StorageError;
use super::position::{LogPosition, check_hard_state};
use super::record::{self, Frame, HeaderError, Record};

/// A torn write found at the tail of the WAL on open and cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailRepair {
    /// Where the file now ends: just after the last good record.
    pub offset: u64,
    /// How many bytes were cut off.
    pub bytes_dropped: u64,
    /// What the dropped bytes looked like, e.g. "record header cut short".
    pub reason: &'static str,
}

impl fmt::Display for TailRepair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cut a torn write at byte {} ({} bytes dropped: {})",
            self.offset, self.bytes_dropped, self.reason
        )
    }
}

/// The state a WAL file describes.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    pub(crate) hard_state: HardState,
    pub(crate) snapshot: Option<SnapshotMeta>,
    /// The entries after the snapshot, in index order.
    pub(crate) entries: Vec<Entry>,
    pub(crate) position: LogPosition,
    /// The offset just past the last good record: where appends go.
    pub(crate) end: u64,
    /// Set when the bytes from `end` to the end of the file are a torn write.
    pub(crate) torn: Option<TailRepair>,
    /// The file's format version.
    pub(crate) version: u32,
}

/// Replays a whole WAL file; `path` is only used in errors.
pub(crate) fn replay(bytes: &[u8], path: &Path) -> Result<Replayed, StorageError> {
    let version = match record::check_file_header(bytes) {
        Ok(v) => v,
        Err(HeaderError::NotAWal(reason)) => {
            return Err(StorageError::NotAWal {
                path: path.into(),
                reason,
            });
        }
        Err(HeaderError::Corrupt(reason)) => {
            return Err(StorageError::Corrupt {
                path: path.into(),
                offset: 0,
                reason,
            });
        }
    };
    let mut state = Replayed {
        version,
        ..Replayed::default()
    };
    let mut offset = record::FILE_HEADER_LEN;
    while offset < bytes.len() {
        let corrupt = |reason: String| StorageError::Corrupt {
            path: path.into(),
            offset: offset as u64,
            reason,
        };
        match record::next_frame(&bytes[offset..]) {
            Frame::Record { payload, size } => {
                let rec = record::decode(payload, version)
                    .map_err(|e| corrupt(format!("undecodable payload: {e}")))?;
                state.apply(rec).map_err(corrupt)?;
                offset += size;
            }
            Frame::Torn(reason) => {
                state.torn = Some(TailRepair {
                    offset: offset as u64,
                    bytes_dropped: (bytes.len() - offset) as u64,
                    reason,
                });
                break;
            }
            Frame::Corrupt(reason) => return Err(corrupt(reason)),
        }
    }
    state.end = offset as u64;
    Ok(state)
}

impl Replayed {
    /// Applies one record with the checks [`super::Wal::persist`] makes before
    /// writing it: a record that fails them was never written by a correct
    /// WAL, so it is corruption.
    fn apply(&mut self, rec: Record) -> Result<(), String> {
        match rec {
            Record::HardState(hs) => {
                check_hard_state(&self.hard_state, &hs)?;
                self.hard_state = hs;
            }
            Record::Entry(e) => {
                self.position.append(e.index, e.term)?;
                self.entries.push(e);
            }
            Record::Truncate(from) => {
                let first = self.position.first_index();
                self.position.truncate(from)?;
                self.entries.truncate((from.0 - first.0) as usize);
            }
            Record::Snapshot(s) => {
                self.position.reset_to_snapshot(s.index, s.term);
                self.entries.clear();
                self.snapshot = Some(s);
            }
        }
        Ok(())
    }
}
