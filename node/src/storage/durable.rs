//! [`Storage`]: the WAL and the snapshot file of one node, kept consistent.
//!
//! Restart is "load the snapshot, then replay the log after it" (§7). Taking
//! or installing a snapshot is two atomic steps, each a rename:
//!
//! 1. [`SnapshotStore::save`]: the new snapshot file replaces the old one;
//! 2. [`Wal::rewrite`]: the WAL is replaced by one that starts after the
//!    new snapshot (its index and term, the hard state, the entries after it).
//!
//! A new term or vote that comes with the snapshot (a leader's first message
//! of a new term may be its snapshot) is appended to the old WAL first, so
//! at no point does the disk hold a snapshot of a later term than the
//! current term.
//!
//! A crash before 1 leaves the old snapshot and the old WAL. A crash between
//! 1 and 2 leaves the new snapshot and the old WAL, whose snapshot record is
//! older: [`Storage::open`] notices and finishes step 2, keeping the WAL's
//! entries after the new snapshot only if the WAL holds the snapshot's last
//! entry with the same term (the rule of §7 for a follower receiving a
//! snapshot). Entries that do not follow it were never committed (a
//! committed entry at that index has the snapshot's term), so dropping them
//! loses nothing acknowledged. A crash after 2 leaves the new state.

use std::path::Path;
use std::time::{Duration, Instant};

use raft::{Entry, HardState, LogIndex};

use super::snapshot::{self, Prepared, Snapshot, SnapshotStore};
use super::{FsyncPolicy, PersistBatch, StorageError, TailRepair, Wal};

/// What a node restarts from.
#[derive(Debug, Default)]
pub struct Restored {
    /// The last term and vote persisted.
    pub hard_state: HardState,
    /// The state machine image the log starts after, if any.
    pub snapshot: Option<Snapshot>,
    /// The log after the snapshot, in index order.
    pub entries: Vec<Entry>,
    /// Set when a torn write at the tail of the WAL was cut off.
    pub repaired_tail: Option<TailRepair>,
    /// Set when a crash had interrupted a snapshot and open finished it.
    pub finished_compaction: Option<String>,
    /// Time spent reading and checking the snapshot file.
    pub snapshot_read: Duration,
    /// Time spent reading and replaying the WAL (and finishing a compaction).
    pub wal_replay: Duration,
}

/// The durable state of one node: its WAL and its snapshot file.
#[derive(Debug)]
pub struct Storage {
    pub(super) wal: Wal,
    pub(super) snapshots: SnapshotStore,
}

impl Storage {
    /// Opens both files in `dir` (created if missing), checks that they fit
    /// together, finishes a compaction a crash interrupted, and returns what
    /// the node restarts from.
    pub fn open(dir: &Path, policy: FsyncPolicy) -> Result<(Storage, Restored), StorageError> {
        let started = Instant::now();
        let (mut wal, recovered) = Wal::open(dir, policy)?;
        let wal_done = Instant::now();
        let (snapshots, snapshot) = SnapshotStore::open(dir)?;
        let snapshot_read = wal_done.elapsed();

        let wal_base = recovered.snapshot.as_ref().map(|s| (s.index, s.term));
        let mut entries = recovered.entries;
        let mut finished = None;
        let inconsistent = |reason: String| StorageError::Corrupt {
            path: snapshots.path().to_path_buf(),
            offset: 0,
            reason,
        };
        match (&snapshot, wal_base) {
            (None, None) => {}
            (None, Some((index, _))) => {
                return Err(inconsistent(format!(
                    "missing, but {} starts after a snapshot at index {index}",
                    wal.path().display()
                )));
            }
            (Some(s), Some((index, term))) if s.meta.index == index => {
                if s.meta.term != term {
                    return Err(inconsistent(format!(
                        "holds index {index} at term {}, the log says term {term}",
                        s.meta.term
                    )));
                }
            }
            (Some(s), base) if s.meta.index < base.map_or(LogIndex(0), |b| b.0) => {
                return Err(inconsistent(format!(
                    "ends at index {}, before the log's start at {}",
                    s.meta.index,
                    wal.first_index()
                )));
            }
            (Some(s), _) => {
                // Step 1 happened, step 2 did not: finish it.
                let at = s.meta.index;
                let keep = if wal.term(at) == Some(s.meta.term) {
                    entries.retain(|e| e.index > at);
                    entries
                } else {
                    Vec::new()
                };
                finished = Some(format!(
                    "finished installing the snapshot at index {at}, keeping {} log entries after it",
                    keep.len()
                ));
                wal.rewrite(Some(&s.meta), &recovered.hard_state, &keep)?;
                entries = keep;
            }
        }
        let restored = Restored {
            hard_state: recovered.hard_state,
            snapshot,
            entries,
            repaired_tail: recovered.repaired_tail,
            finished_compaction: finished,
            snapshot_read,
            wal_replay: started.elapsed() - snapshot_read,
        };
        Ok((Storage { wal, snapshots }, restored))
    }

    /// Makes `snapshot` the base of the durable state: the snapshot file
    /// first, then a WAL holding only `hard_state` and `entries`, which must
    /// follow the snapshot. Used both when this node compacts and when it
    /// installs a leader's snapshot; either way, whatever the WAL held at or
    /// below the snapshot's index is gone afterwards.
    pub fn install(
        &mut self,
        snapshot: &Snapshot,
        hard_state: &HardState,
        entries: &[Entry],
    ) -> Result<(), StorageError> {
        self.persist_hard_state(hard_state)?;
        let prepared = snapshot::prepare(self.snapshots.dir(), snapshot)?;
        self.finish(prepared, hard_state, entries)
    }

    /// [`Storage::install`] for a snapshot whose file was already prepared
    /// (written and fsynced, perhaps on another thread).
    pub fn finish(
        &mut self,
        prepared: Prepared,
        hard_state: &HardState,
        entries: &[Entry],
    ) -> Result<(), StorageError> {
        self.persist_hard_state(hard_state)?;
        let meta = prepared.meta().clone();
        self.snapshots.commit(prepared)?;
        self.wal.rewrite(Some(&meta), hard_state, entries)
    }

    /// Appends a `Ready`'s hard state and entries to the WAL, durably
    /// (see [`Wal::persist`]).
    pub fn persist(&mut self, batch: &PersistBatch) -> Result<(), StorageError> {
        self.wal.persist(batch)
    }

    /// The term and vote last persisted.
    pub fn hard_state(&self) -> &HardState {
        self.wal.hard_state()
    }

    /// The data directory, where snapshots are prepared.
    pub fn dir(&self) -> &Path {
        self.snapshots.dir()
    }

    /// The current snapshot file (which may not exist yet).
    pub fn snapshot_path(&self) -> &Path {
        self.snapshots.path()
    }

    /// Turns on the seeded bug `hardstate-nosync` (see [`Wal::set_hardstate_nosync`]).
    #[cfg(feature = "bugs")]
    pub fn set_hardstate_nosync(&mut self) {
        self.wal.set_hardstate_nosync();
    }

    /// Turns on the seeded bug `lazy-persist` (see [`Wal::set_lazy_persist`]).
    #[cfg(feature = "bugs")]
    pub fn set_lazy_persist(&mut self) {
        self.wal.set_lazy_persist();
    }

    /// A new term or vote goes to the old WAL before the new snapshot
    /// replaces anything (see the module comment).
    fn persist_hard_state(&mut self, hard_state: &HardState) -> Result<(), StorageError> {
        if hard_state == self.wal.hard_state() {
            return Ok(());
        }
        self.wal.persist(&PersistBatch {
            hard_state: Some(hard_state),
            ..PersistBatch::default()
        })
    }
}
