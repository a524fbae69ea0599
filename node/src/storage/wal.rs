//! [`Wal`]: the file `DIR/raft.wal`, opened and recovered, appended to in
//! batches (one write, one fsync: group commit) and rewritten for compaction.
//!
//! Every prefix of a batch is a state Raft can restart from: the hard state
//! comes first (a term or vote on disk without the reply is harmless), a
//! truncation drops only conflicting, hence uncommitted, entries (§5.3), and
//! entries are a log prefix. So a crash that tears a batch anywhere loses
//! nothing that was acknowledged, and replay needs no batch markers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use raft::{Entry, HardState, LogIndex, SnapshotMeta, Term};

use super::position::{LogPosition, check_hard_state};
use super::record;
use super::replay::{TailRepair, replay};
use super::{FsyncPolicy, StorageError};

/// The WAL's file name inside the data directory.
pub const WAL_FILE_NAME: &str = "raft.wal";
/// Where a new or rewritten WAL is prepared before it is renamed into place.
const TMP_FILE_NAME: &str = "raft.wal.tmp";
/// The write buffer is kept between batches, unless a huge batch grew it.
const KEEP_BUFFER: usize = 4 << 20;

/// One unit of group commit, applied in this order: the hard state, then the
/// truncation, then the entries. Persist it BEFORE sending any message or
/// reply that depends on it (Figure 2: "updated on stable storage before
/// responding to RPCs").
#[derive(Clone, Copy, Debug, Default)]
pub struct PersistBatch<'a> {
    /// The new term and vote, if they changed.
    pub hard_state: Option<&'a HardState>,
    /// Drop the entries at this index and after (a conflict, §5.3); the
    /// index may be one past the last entry, which drops nothing.
    pub truncate_from: Option<LogIndex>,
    /// Entries to append: contiguous, starting right after the last entry
    /// (after the truncation, if any), terms never decreasing.
    pub entries: &'a [Entry],
}

impl PersistBatch<'_> {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none() && self.truncate_from.is_none() && self.entries.is_empty()
    }
}

/// What a WAL held when it was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The last hard state persisted; term 0 and no vote for a new WAL.
    pub hard_state: HardState,
    /// The log after the snapshot (or from index 1), in index order.
    pub entries: Vec<Entry>,
    /// The snapshot the log starts after, if [`Wal::rewrite`] recorded one.
    pub snapshot: Option<SnapshotMeta>,
    /// Set when a torn write at the tail was cut off: worth one log line.
    pub repaired_tail: Option<TailRepair>,
}

/// The durable Raft log and hard state of one node.
///
/// Not thread-safe by design: the driver owns it and calls it from one place.
/// After a failed write or fsync every call fails with
/// [`StorageError::Poisoned`]: the node must restart and recover from disk
/// (after a failed fsync the kernel may have thrown the data away while
/// reporting later fsyncs as successful).
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    policy: FsyncPolicy,
    /// The offset just past the last record: where the next batch goes.
    end: u64,
    hard_state: HardState,
    position: LogPosition,
    buf: Vec<u8>,
    fsyncs: u64,
    poisoned: bool,
    /// Seeded bug `lazy-persist`: records wait here, in user space, until
    /// [`LAZY_FLUSH`] bytes pile up; kill -9 loses them.
    lazy: Option<Vec<u8>>,
    /// Seeded bug `hardstate-nosync`: batches without entries are not fsynced.
    hardstate_nosync: bool,
}

/// How much the `lazy-persist` bug buffers, like a default `BufWriter`.
const LAZY_FLUSH: usize = 64 << 10;

impl Wal {
    /// Opens or creates `dir/raft.wal`, replays it, cuts a torn tail, and
    /// returns what was durable. Creates `dir` if needed.
    pub fn open(dir: &Path, policy: FsyncPolicy) -> Result<(Wal, Recovered), StorageError> {
        super::create_dir_durably(dir).map_err(|e| StorageError::io(dir, "create directory", e))?;
        let path = dir.join(WAL_FILE_NAME);
        let mut fsyncs = 0;
        // Left over by a crash while creating or rewriting; the WAL itself
        // was never replaced by it, since the rename is the commit point.
        let tmp = dir.join(TMP_FILE_NAME);
        if let Err(e) = fs::remove_file(&tmp)
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err(StorageError::io(tmp, "remove", e));
        }
        let exists = path
            .try_exists()
            .map_err(|e| StorageError::io(&path, "look for", e))?;
        if !exists {
            let header = record::file_header();
            install(dir, &path, &header, &mut fsyncs)?;
        }

        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, "open", e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| StorageError::io(&path, "read", e))?;
        let replayed = replay(&bytes, &path)?;
        drop(bytes);

        if let Some(torn) = &replayed.torn {
            // The torn bytes belong to an append that never returned, so
            // nobody was told it was durable (see the module comment).
            file.set_len(torn.offset)
                .map_err(|e| StorageError::io(&path, "cut the torn tail of", e))?;
        }
        // A run killed before its fsync left bytes in the page cache, or a
        // rewrite's rename without its directory fsync: this run reads
        // them as its state and builds on them (acknowledges the entries,
        // keeps the vote), so they become durable before anything else.
        file.sync_all()
            .map_err(|e| StorageError::io(&path, "fsync", e))?;
        fsyncs += 1;
        sync_dir(dir, &mut fsyncs)?;

        let version = replayed.version;
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            path,
            file,
            policy,
            end: replayed.end,
            hard_state: replayed.hard_state.clone(),
            position: replayed.position,
            buf: Vec::new(),
            fsyncs,
            poisoned: false,
            lazy: None,
            hardstate_nosync: false,
        };
        let recovered = Recovered {
            hard_state: replayed.hard_state,
            entries: replayed.entries,
            snapshot: replayed.snapshot,
            repaired_tail: replayed.torn,
        };
        if version != record::VERSION {
            // Written before configurations: rewritten in the current
            // format (same content) so that appends never mix the two.
            wal.rewrite(
                recovered.snapshot.as_ref(),
                &recovered.hard_state,
                &recovered.entries,
            )?;
        }
        Ok((wal, recovered))
    }

    /// Makes one batch durable with one write and, with
    /// [`FsyncPolicy::Always`], one fdatasync. The batch is checked first
    /// (contiguous entries, terms never decreasing, the term never going
    /// back, no change of a vote already cast in the term); a batch that
    /// fails is refused with [`StorageError::InvalidBatch`] and nothing is
    /// written. An empty batch does nothing.
    pub fn persist(&mut self, batch: &PersistBatch) -> Result<(), StorageError> {
        self.check_usable()?;
        if batch.is_empty() {
            return Ok(());
        }
        let invalid = |reason: String| StorageError::InvalidBatch {
            path: self.path.clone(),
            reason,
        };
        let mut position = self.position.clone();
        self.buf.clear();
        if let Some(hs) = batch.hard_state {
            check_hard_state(&self.hard_state, hs).map_err(invalid)?;
            record::encode_hard_state(&mut self.buf, hs).map_err(invalid)?;
        }
        if let Some(from) = batch.truncate_from {
            position.truncate(from).map_err(invalid)?;
            record::encode_truncate(&mut self.buf, from);
        }
        for e in batch.entries {
            position.append(e.index, e.term).map_err(invalid)?;
            record::encode_entry(&mut self.buf, e).map_err(invalid)?;
        }

        if let Some(lazy) = self.lazy.as_mut() {
            lazy.extend_from_slice(&self.buf);
            if lazy.len() >= LAZY_FLUSH {
                self.buf = std::mem::take(lazy);
                self.append_buffer()?;
            }
        } else {
            self.append_buffer()?;
            // Seeded bug `hardstate-nosync` (bakwc/PySyncObj#84, hashicorp/raft#507):
            // "a hard-state record is tiny, the next append syncs it anyway".
            let skip = self.hardstate_nosync && batch.entries.is_empty();
            if self.policy == FsyncPolicy::Always && !skip {
                self.sync_data()?;
            }
        }
        if let Some(hs) = batch.hard_state {
            self.hard_state = hs.clone();
        }
        self.position = position;
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Replaces the whole WAL by a new file that holds only `snapshot` (the
    /// log now starts after it), `hard_state` and `entries` (contiguous from
    /// the snapshot's index + 1, or from 1 without a snapshot): compaction.
    ///
    /// The new file is written beside the old one, fsynced, renamed over it
    /// and the directory fsynced, so a crash at any point leaves either the
    /// old WAL or the new one. Synced whatever the [`FsyncPolicy`].
    pub fn rewrite(
        &mut self,
        snapshot: Option<&SnapshotMeta>,
        hard_state: &HardState,
        entries: &[Entry],
    ) -> Result<(), StorageError> {
        self.check_usable()?;
        // The rewritten file supersedes whatever the seeded bug held back.
        if let Some(lazy) = self.lazy.as_mut() {
            lazy.clear();
        }
        let invalid = |reason: String| StorageError::InvalidBatch {
            path: self.path.clone(),
            reason,
        };
        check_hard_state(&self.hard_state, hard_state).map_err(invalid)?;
        let mut position = LogPosition::default();
        let mut buf = record::file_header().to_vec();
        let current = self.position.first_index().prev();
        if snapshot.is_none() && current > LogIndex(0) {
            return Err(invalid(format!(
                "a rewrite without a snapshot would forget the one at index {current}"
            )));
        }
        if let Some(s) = snapshot {
            if s.index < current {
                return Err(invalid(format!(
                    "the snapshot at index {} is older than the current one at {current}",
                    s.index
                )));
            }
            position.reset_to_snapshot(s.index, s.term);
            record::encode_snapshot(&mut buf, s).map_err(invalid)?;
        }
        record::encode_hard_state(&mut buf, hard_state).map_err(invalid)?;
        for e in entries {
            position.append(e.index, e.term).map_err(invalid)?;
            record::encode_entry(&mut buf, e).map_err(invalid)?;
        }

        let tmp = write_temp(&self.dir, &buf, &mut self.fsyncs)?;
        rename_over(&tmp, &self.path)?;
        // The old file is gone from the directory and `self.file` still
        // points at it: until the new one is durable and open, this Wal is
        // unusable.
        self.poisoned = true;
        sync_dir(&self.dir, &mut self.fsyncs)?;
        self.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| StorageError::io(&self.path, "reopen", e))?;
        self.poisoned = false;
        self.end = buf.len() as u64;
        self.hard_state = hard_state.clone();
        self.position = position;
        Ok(())
    }

    /// The index of the last entry (or of the snapshot when the log is empty).
    pub fn last_index(&self) -> LogIndex {
        self.position.last_index()
    }

    /// The term of the last entry (or of the snapshot when the log is empty).
    pub fn last_term(&self) -> Term {
        self.position.last_term()
    }

    /// The index of the first entry the WAL can hold: snapshot index + 1.
    pub fn first_index(&self) -> LogIndex {
        self.position.first_index()
    }

    /// The term of the entry at `index` (or of the snapshot's last entry),
    /// if the WAL has it.
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        self.position.term(index)
    }

    /// The last hard state persisted.
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The size of the file in bytes, for deciding when to compact.
    pub fn file_len(&self) -> u64 {
        self.end
    }

    /// The file (`DIR/raft.wal`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it waits for the disk.
    pub fn policy(&self) -> FsyncPolicy {
        self.policy
    }

    /// How many fsyncs (of the file or the directory) this Wal has issued
    /// since it was opened, the open included. For tests and metrics.
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs
    }

    fn check_usable(&self) -> Result<(), StorageError> {
        if self.poisoned {
            return Err(StorageError::Poisoned {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Writes the buffer at the end of the file; poisons on failure, since a
    /// part of it may have been written.
    /// Turns on the seeded bug `lazy-persist`: writes are acknowledged
    /// while still in a user-space buffer.
    #[cfg(feature = "bugs")]
    pub fn set_lazy_persist(&mut self) {
        self.lazy = Some(Vec::new());
    }

    /// Turns on the seeded bug `hardstate-nosync`: a batch of term and vote
    /// alone is written but not fsynced.
    #[cfg(feature = "bugs")]
    pub fn set_hardstate_nosync(&mut self) {
        self.hardstate_nosync = true;
    }

    fn append_buffer(&mut self) -> Result<(), StorageError> {
        if let Err(e) = self.file.write_all_at(&self.buf, self.end) {
            self.poisoned = true;
            return Err(StorageError::io(&self.path, "write to", e));
        }
        self.end += self.buf.len() as u64;
        Ok(())
    }

    fn sync_data(&mut self) -> Result<(), StorageError> {
        self.fsyncs += 1;
        if let Err(e) = self.file.sync_data() {
            self.poisoned = true;
            return Err(StorageError::io(&self.path, "fdatasync", e));
        }
        Ok(())
    }
}

/// Atomically makes `path` a file holding `contents` (used to create a WAL).
fn install(dir: &Path, path: &Path, contents: &[u8], fsyncs: &mut u64) -> Result<(), StorageError> {
    let tmp = write_temp(dir, contents, fsyncs)?;
    rename_over(&tmp, path)?;
    sync_dir(dir, fsyncs)
}

/// Writes `contents` to a temporary file in `dir` and fsyncs it.
fn write_temp(dir: &Path, contents: &[u8], fsyncs: &mut u64) -> Result<PathBuf, StorageError> {
    let tmp = dir.join(TMP_FILE_NAME);
    let written = (|| {
        let mut f = File::create(&tmp).map_err(|e| StorageError::io(&tmp, "create", e))?;
        f.write_all(contents)
            .map_err(|e| StorageError::io(&tmp, "write to", e))?;
        *fsyncs += 1;
        f.sync_all().map_err(|e| StorageError::io(&tmp, "fsync", e))
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The commit point of a rewrite: rename(2) replaces `path` atomically, so
/// a crash leaves the old file or the new one, never a mix.
fn rename_over(tmp: &Path, path: &Path) -> Result<(), StorageError> {
    fs::rename(tmp, path).map_err(|e| {
        let _ = fs::remove_file(tmp);
        StorageError::io(path, "rename the new file over", e)
    })
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path, fsyncs: &mut u64) -> Result<(), StorageError> {
    *fsyncs += 1;
    super::fsync_dir(dir).map_err(|e| StorageError::io(dir, "fsync directory", e))
}
