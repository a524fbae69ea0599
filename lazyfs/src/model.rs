//! The public vocabulary: the durability models, the kinds of power loss,
//! and what a power-off reports.

use std::fmt;
use std::time::Duration;

/// What a strict mount keeps across a power-off. Written for `--help`.
pub const STRICT_MODEL_HELP: &str = "\
strict (the default): a power-off keeps exactly what POSIX promises after fsync.
  - File data and size (write, pwrite, truncate, fallocate, stores through a
    shared mmap) survive once that file is fsynced or fdatasynced after the
    change, or msynced; O_SYNC and O_DSYNC writes survive at once.
  - Mode and owner (chmod, chown) survive once the file is fsynced (not
    fdatasynced).
  - Names (create, mkdir, mknod, symlink, link, unlink, rmdir, rename) survive
    once a directory they are in is fsynced. A rename is in both its
    directories and survives whole once either is fsynced: never both names,
    never neither. Fsyncing a directory also keeps the earlier changes to the
    same names (the create of a file it renames, the unlink that freed a name).
  - A file whose name did not survive is gone with its data, fsynced or not; so
    is everything in a directory whose creation did not survive.
  - Not durability points: sync(2), syncfs(2), close(2). Timestamps are not
    modelled (after a power-off they are whatever the backing files have).";

/// What a durable-metadata mount keeps across a power-off.
pub const DURABLE_MODEL_HELP: &str = "\
durable (LazyFS's own model): names and metadata are durable at once: create,
  mkdir, mknod, symlink, link, unlink, rmdir, rename, chmod, chown and truncate
  survive a power-off as soon as they return. Written data (and the size a
  write or fallocate gives a file) survives once that file is fsynced or
  fdatasynced, or msynced; O_SYNC and O_DSYNC writes survive at once.";

/// What each kind of power loss throws away.
pub const POWER_LOSS_HELP: &str = "\
all: every change that was not durable is lost.
torn: for each file, a random prefix of its unsynced writes survives, cut at a
  512-byte sector of the file (a disk that flushed some pages before the
  lights went out); name changes that were not durable are all lost.";

/// Which metadata changes need an fsync to survive a power-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metadata {
    /// Names need an fsync of their directory, mode and owner an fsync of
    /// the file: [`STRICT_MODEL_HELP`].
    #[default]
    Strict,
    /// Names, mode, owner and truncates are durable at once:
    /// [`DURABLE_MODEL_HELP`].
    Durable,
}

impl Metadata {
    /// The [`Metadata`] a flag value names: `strict` or `durable`.
    pub fn parse(s: &str) -> Option<Metadata> {
        match s {
            "strict" => Some(Metadata::Strict),
            "durable" => Some(Metadata::Durable),
            _ => None,
        }
    }
}

impl fmt::Display for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metadata::Strict => "strict",
            Metadata::Durable => "durable",
        })
    }
}

/// How a mount is set up.
#[derive(Debug, Clone)]
pub struct Options {
    pub metadata: Metadata,
    /// Threads serving FUSE requests. Each fsync waiting out the
    /// [`Mounted::set_fsync_delay`](crate::Mounted::set_fsync_delay) holds
    /// one, so this many fsyncs can wait at once while other requests go on.
    pub threads: usize,
    /// The fsync delay the mount starts with.
    pub fsync_delay: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            metadata: Metadata::Strict,
            threads: 8,
            fsync_delay: Duration::ZERO,
        }
    }
}

/// What a power-off throws away: [`POWER_LOSS_HELP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerLoss {
    All,
    /// A random prefix of each file's unsynced writes survives; the same
    /// seed cuts the same writes at the same places.
    Torn {
        seed: u64,
    },
}

impl PowerLoss {
    /// The [`PowerLoss`] a flag value names: `all`, or `torn` (cut with
    /// `seed`).
    pub fn parse(s: &str, seed: u64) -> Option<PowerLoss> {
        match s {
            "all" => Some(PowerLoss::All),
            "torn" => Some(PowerLoss::Torn { seed }),
            _ => None,
        }
    }
}

impl fmt::Display for PowerLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PowerLoss::All => f.write_str("all"),
            PowerLoss::Torn { seed } => write!(f, "torn (seed {seed})"),
        }
    }
}

/// What one power-off threw away.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LossReport {
    /// Bytes of unsynced writes thrown away.
    pub bytes_lost: u64,
    /// Unsynced data changes thrown away (a write, a truncate, a fallocate;
    /// appends right after each other count as one).
    pub data_changes_lost: u64,
    /// Files whose content or size went back.
    pub files_changed: u64,
    /// Names whose creation was thrown away (files, directories, links;
    /// with everything under a lost directory).
    pub files_lost: u64,
    /// Names put back: unlinks and renames undone.
    pub names_restored: u64,
    /// One line per file or name, e.g. `wal/0001.wal: 4096 bytes of writes lost`.
    pub details: Vec<String>,
    /// Anything that could not be put back (should stay empty).
    pub errors: Vec<String>,
}

impl LossReport {
    /// True when nothing was lost.
    pub fn is_empty(&self) -> bool {
        self.data_changes_lost == 0 && self.files_lost == 0 && self.names_restored == 0
    }
}

impl fmt::Display for LossReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} bytes lost in {} data changes to {} files, {} names lost, {} names restored",
            self.bytes_lost,
            self.data_changes_lost,
            self.files_changed,
            self.files_lost,
            self.names_restored
        )
    }
}

/// A snapshot of a mount's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Files with data changes that are not durable.
    pub pending_files: usize,
    /// Their data changes (appends right after each other count as one).
    pub pending_data_changes: usize,
    /// Name changes that are not durable.
    pub pending_names: usize,
    /// Overwritten bytes kept in memory to undo unsynced writes.
    pub undo_memory: u64,
    /// Inodes the mount tracks.
    pub inodes: usize,
    pub writes: u64,
    pub bytes_written: u64,
    /// Writes of pages dirtied through a shared writable mmap.
    pub mmap_writes: u64,
    pub fsyncs: u64,
    pub fdatasyncs: u64,
    pub dir_fsyncs: u64,
    /// Fsyncs waiting out the fsync delay right now.
    pub fsyncs_waiting: u64,
    pub power_offs: u64,
}
