//! Each node's disk: plain (its data directory as it is), or a lazyfs
//! mount over the data directory itself, whose power can be cut.
//!
//! A lazyfs disk forgets, at a power-off, every change that was not made
//! durable (lazyfs's `STRICT_MODEL_HELP` and `DURABLE_MODEL_HELP` say what
//! is); the node started next finds only what survived. The mount covers
//! the directory it serves, so once it is gone (unmounted at the end of the
//! run, or with the harness's private mount namespace when the harness
//! dies) the directory shows what the node left there.
//!
//! The harness serves these mounts from its own threads: it must never
//! mmap a file under them (unmapping a dirty mapping would wait for the
//! very threads it blocks). It only starts, kills and power-cycles the
//! processes that use them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lazyfs::{LossReport, Metadata, Mounted, PowerLoss};

use super::ClusterError;

/// What disk every node of a cluster gets.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum DiskKind {
    /// The data directory on the machine's own file system: a node's
    /// writes survive its kill -9 (the kernel keeps them), and nothing
    /// can cut the power.
    #[default]
    Plain,
    /// A lazyfs mount over the data directory.
    Lazy {
        /// Which metadata changes need an fsync to survive a power-off.
        metadata: Metadata,
        /// How long every fsync waits (a slower disk); zero: none.
        fsync_delay: Duration,
    },
}

impl DiskKind {
    /// `plain` or `lazy`, as `--disk` and `run.json` say it.
    pub fn name(&self) -> &'static str {
        match self {
            DiskKind::Plain => "plain",
            DiskKind::Lazy { .. } => "lazy",
        }
    }
}

/// One node's disk. Dropping it unmounts a lazyfs mount (the node must be
/// dead by then, or it gets I/O errors).
#[derive(Debug)]
pub struct Disk {
    dir: PathBuf,
    mount: Option<Mounted>,
}

impl Disk {
    /// Creates the data directory `dir` if needed and, for a lazy disk,
    /// mounts lazyfs over it (what is in it now counts as durable).
    pub fn attach(dir: &Path, kind: &DiskKind) -> Result<Disk, ClusterError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ClusterError::Io(format!("{}: {e}", dir.display())))?;
        let mount = match kind {
            DiskKind::Plain => None,
            DiskKind::Lazy {
                metadata,
                fsync_delay,
            } => {
                let options = lazyfs::Options {
                    metadata: *metadata,
                    fsync_delay: *fsync_delay,
                    ..lazyfs::Options::default()
                };
                Some(
                    lazyfs::mount(dir, dir, options)
                        .map_err(|e| ClusterError::Disk(e.to_string()))?,
                )
            }
        };
        Ok(Disk {
            dir: dir.to_path_buf(),
            mount,
        })
    }

    /// Whether the power of this disk can be cut.
    pub fn is_lazy(&self) -> bool {
        self.mount.is_some()
    }

    /// Cuts the power: throws away what the node had not made durable. An
    /// fsync still in flight fails and makes nothing durable; other
    /// requests still in flight may land after, so a process that was not
    /// yet reaped calls for a second power-off once it is.
    pub fn power_off(&self, loss: PowerLoss) -> Result<LossReport, ClusterError> {
        let Some(mount) = &self.mount else {
            return Err(ClusterError::Disk(format!(
                "{} is a plain directory: its power cannot be cut",
                self.dir.display()
            )));
        };
        mount
            .power_off(loss)
            .map_err(|e| ClusterError::Disk(e.to_string()))
    }

    /// Makes every fsync of a lazy disk wait `delay` (a slower disk) from
    /// now on; a plain disk cannot be slowed.
    pub fn set_fsync_delay(&self, delay: Duration) -> Result<(), ClusterError> {
        match &self.mount {
            Some(m) => {
                m.set_fsync_delay(delay);
                Ok(())
            }
            None => Err(ClusterError::Disk(format!(
                "{} is a plain directory: it cannot be slowed",
                self.dir.display()
            ))),
        }
    }

    /// The counters of a lazy disk (fsyncs, bytes written, ...).
    pub fn stats(&self) -> Option<lazyfs::Stats> {
        self.mount.as_ref().map(Mounted::stats)
    }

    /// Unmounts a lazy disk, keeping everything written (a clean
    /// shutdown); the directory then shows what the node left. A plain
    /// disk has nothing to do.
    pub fn detach(&mut self) -> Result<(), ClusterError> {
        match self.mount.take() {
            Some(m) => m.unmount().map_err(|e| ClusterError::Disk(e.to_string())),
            None => Ok(()),
        }
    }
}

/// Deletes everything in `dir` (a lost disk, as the `wipe` and `member`
/// nemeses make it), then fsyncs `dir`, so the deletions are durable even
/// on a lazy disk whose power is cut next. A missing `dir` is empty.
pub fn empty_dir(dir: &Path) -> Result<(), ClusterError> {
    let io = |what: &Path, e: std::io::Error| ClusterError::Io(format!("{}: {e}", what.display()));
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| io(dir, e))?.path();
        let gone = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        gone.map_err(|e| io(&path, e))?;
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

/// Adds what a second power-off lost to the first's report.
pub fn add_loss(into: &mut LossReport, more: LossReport) {
    into.bytes_lost += more.bytes_lost;
    into.data_changes_lost += more.data_changes_lost;
    into.files_changed += more.files_changed;
    into.files_lost += more.files_lost;
    into.names_restored += more.names_restored;
    into.details.extend(more.details);
    into.errors.extend(more.errors);
}

/// The lazyfs mounts this process can still see under `store`, left by a
/// harness that died without a private mount namespace, are detached (the
/// dead ones only). Returns what was detached.
pub fn sweep_dead_mounts(store: &Path) -> Result<Vec<PathBuf>, ClusterError> {
    // mountinfo names mount points by absolute path.
    let Ok(store) = store.canonicalize() else {
        return Ok(Vec::new());
    };
    lazyfs::detach_stale_mounts(&store).map_err(|e| ClusterError::Disk(e.to_string()))
}
