//! Durable Raft state: the current term, the vote and the log, in one
//! append-only file per node, `DIR/raft.wal`, and the snapshot the log
//! starts after, `DIR/snapshot`.
//!
//! - `record`: the on-disk format — file header, record framing with
//!   checksums, and the payload of each record kind.
//! - `position`: the little the WAL remembers of the log (first and last
//!   index, the term of each run of entries) to check that what it writes and
//!   replays has the shape of a Raft log.
//! - `replay`: reading a file back, record by record, telling a torn tail
//!   (cut off) from corruption (refused).
//! - `wal`: [`Wal`] itself: open and recover, persist a batch with one
//!   write and one fsync (group commit), rewrite for compaction.
//! - [`snapshot`]: the snapshot file (format, checksum, atomic replacement).
//! - `dirs`: creating the data directory durably (the parent fsynced), and
//!   the directory fsync that makes a new name durable.
//! - [`identity`]: whose directory this is (cluster, node, incarnation) and
//!   how the node came into its cluster, written before anything else.
//! - `durable`: [`Storage`], the WAL and the snapshot kept consistent:
//!   restart = snapshot + log after it, and compaction that a crash at any
//!   step leaves with the old snapshot or the new one, never neither.
//! - [`bench`](mod@bench): how long one small append + fdatasync takes on a directory.
//!
//! The rule the driver relies on (Raft §5, Figure 2): whatever [`Wal::persist`]
//! returned `Ok` for is on disk (with [`FsyncPolicy::Always`]) and comes back
//! from [`Wal::open`] after any crash, and a torn write at the very tail is the
//! only damage that is repaired silently — anything else stops the node.

pub mod bench;
mod dirs;
mod durable;
pub mod identity;
mod position;
mod record;
mod replay;
pub mod snapshot;
mod wal;

#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

pub use bench::{FsyncStats, measure_fsync};
pub use dirs::{create_dir_durably, fsync_dir};
pub use durable::{Restored, Storage};
pub use identity::{Identity, Standing};
pub use replay::TailRepair;
pub use snapshot::{SNAPSHOT_FILE_NAME, Snapshot, SnapshotStore};
pub use wal::{PersistBatch, Recovered, WAL_FILE_NAME, Wal};

/// Whether [`Wal::persist`] waits for the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FsyncPolicy {
    /// One `fdatasync` per persisted batch: what Raft needs for safety.
    #[default]
    Always,
    /// No fsync of batches: the data is in the page cache only, so it survives
    /// `kill -9` but not a power loss. For benchmarks only. Creation, tail
    /// repair and rewrites are still synced, since they are rare.
    Never,
}

/// Everything that can go wrong in storage. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A system call failed; `action` says what was being done.
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done, as a verb phrase ("open", "fsync").
        action: &'static str,
        /// What the system said.
        error: io::Error,
    },
    /// The file is not a WAL of this program, or of a format version this
    /// build does not read.
    #[error("{} is not a Raft WAL this build can read: {reason}", path.display())]
    NotAWal {
        /// The file.
        path: PathBuf,
        /// What is wrong with its header.
        reason: String,
    },
    /// A complete record that is damaged or impossible, anywhere but a torn
    /// tail. Never repaired automatically: it may hold committed entries.
    #[error("corrupt record in {} at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// The caller asked for something that would not leave a valid Raft log
    /// (a gap, a term going backwards, a changed vote). Nothing was written.
    #[error("refused to write to {}: {reason}", path.display())]
    InvalidBatch {
        /// The WAL.
        path: PathBuf,
        /// What the batch would have broken.
        reason: String,
    },
    /// An earlier write or fsync failed, so what is on disk is unknown (the
    /// kernel may have dropped the dirty pages). Restart and recover from disk.
    #[error(
        "{} is unusable after a failed write or fsync; restart to recover from disk",
        path.display()
    )]
    Poisoned {
        /// The WAL.
        path: PathBuf,
    },
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, error: io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            action,
            error,
        }
    }
}
