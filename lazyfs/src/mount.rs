//! [`mount`] and the [`Mounted`] handle: power-off, fsync delay, counters,
//! unmount.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fuser::{BackgroundSession, Config, INodeNo, MountOption, Notifier, Session, SessionACL};

use crate::error::Error;
use crate::fs::{Handles, LazyFs, Shared};
use crate::model::{LossReport, Options, PowerLoss, Stats};
use crate::state::{SHADOW, State};
use crate::sys;

/// The file system type mounts show: `fuse.lazyfs`.
pub const FS_TYPE: &str = "fuse.lazyfs";

/// A live lazyfs mount. Dropping it unmounts (as [`Mounted::unmount`]).
#[derive(Debug)]
pub struct Mounted {
    shared: Arc<Shared>,
    session: Mutex<Option<BackgroundSession>>,
    notifier: Notifier,
    mountpoint: PathBuf,
    backing: PathBuf,
}

/// Mounts a lazyfs at `mountpoint` (an existing directory) over `backing`
/// (an existing directory, neither inside the other), serving requests on
/// threads of this process.
///
/// `backing` may be `mountpoint` itself: the mount then covers the
/// directory and works on what is underneath (reached through descriptors
/// opened before mounting), so a node's data directory keeps its path and,
/// once unmounted, shows what the node left there.
///
/// What `backing` holds is taken as durable. Its `.lazyfs` entry is the
/// mount's shadow directory (where unlinked files wait until the unlink is
/// durable): one found there is left by a mount that did not end cleanly
/// and is deleted; it is hidden from the mount and removed at unmount. The
/// backing files are never fsynced for real: the machine does not lose
/// power, the mount does.
pub fn mount(mountpoint: &Path, backing: &Path, options: Options) -> Result<Mounted, Error> {
    let canon = |p: &Path, what| {
        let c = p.canonicalize().map_err(|e| Error::io(what, p, e))?;
        if !c.is_dir() {
            return Err(Error::Invalid(format!(
                "{} is not a directory",
                p.display()
            )));
        }
        Ok(c)
    };
    let mountpoint = canon(mountpoint, "find the mount point")?;
    let backing = canon(backing, "find the backing directory")?;
    if mountpoint != backing
        && (mountpoint.starts_with(&backing) || backing.starts_with(&mountpoint))
    {
        return Err(Error::Invalid(format!(
            "the mount point {} and the backing directory {} must not be one inside the other",
            mountpoint.display(),
            backing.display()
        )));
    }
    if options.threads == 0 {
        return Err(Error::Invalid("threads must be at least 1".into()));
    }
    sys::raise_nofile_limit();
    let state = State::take_over(&backing, options.metadata)
        .map_err(|e| Error::io("take over the backing directory", &backing, e))?;
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        handles: Mutex::new(Handles::default()),
        fsync_delay_ns: AtomicU64::new(duration_ns(options.fsync_delay)),
        fsyncs_waiting: AtomicU64::new(0),
    });

    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("lazyfs".into()),
        MountOption::CUSTOM("subtype=lazyfs".into()),
        MountOption::DefaultPermissions,
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    // Root may let every user in (the nodes may run as anyone); others
    // would need user_allow_other in /etc/fuse.conf.
    config.acl = if sys::geteuid() == 0 {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(options.threads);
    config.clone_fd = options.threads > 1;
    let session = match Session::new(LazyFs(shared.clone()), &mountpoint, &config) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(backing.join(SHADOW));
            return Err(Error::io("mount a FUSE filesystem at", &mountpoint, e));
        }
    };
    let notifier = session.notifier();
    let session = session
        .spawn()
        .map_err(|e| Error::io("start serving", &mountpoint, e))?;
    Ok(Mounted {
        shared,
        session: Mutex::new(Some(session)),
        notifier,
        mountpoint,
        backing,
    })
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Mounted {
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// Cuts the power: everything not durable is thrown away (all of it,
    /// or with [`PowerLoss::Torn`] all but a random prefix of each file's
    /// writes), and the mount serves on with what survived, so the next
    /// process sees only that.
    ///
    /// Kill every process using the mount and wait for it to exit first:
    /// a process still running would keep going on a disk that changed
    /// under it, and a request of its still in flight could land after.
    pub fn power_off(&self, loss: PowerLoss) -> Result<LossReport, Error> {
        // Pages dirtied through shared mmaps by the killed processes are
        // still in the kernel: have them written back now, so they are
        // thrown away with the rest instead of arriving later.
        let root = File::open(&self.mountpoint)
            .map_err(|e| Error::io("open the mount point", &self.mountpoint, e))?;
        sys::syncfs(root.as_raw_fd())
            .map_err(|e| Error::io("write back the dirty pages of", &self.mountpoint, e))?;
        drop(root);

        let (mut report, stale) = self.shared.state().power_off(loss);
        // The kernel's caches are dropped with the lock released: dropping
        // a page may need a request served.
        for (parent, name) in &stale.entries {
            if let Err(e) = self.notifier.inval_entry(INodeNo(*parent), name) {
                report
                    .errors
                    .push(format!("could not drop the kernel's entry {name:?}: {e}"));
            }
        }
        for ino in &stale.inodes {
            if let Err(e) = self.notifier.inval_inode(INodeNo(*ino), 0, 0) {
                report.errors.push(format!(
                    "could not drop the kernel's cache of inode {ino}: {e}"
                ));
            }
        }
        Ok(report)
    }

    /// Makes every fsync, fdatasync, directory fsync and O_SYNC/O_DSYNC
    /// write wait `delay` before it completes (a slow disk). Applies to
    /// calls that start from now on.
    pub fn set_fsync_delay(&self, delay: Duration) {
        self.shared
            .fsync_delay_ns
            .store(duration_ns(delay), Ordering::Relaxed);
    }

    pub fn fsync_delay(&self) -> Duration {
        Duration::from_nanos(self.shared.fsync_delay_ns.load(Ordering::Relaxed))
    }

    pub fn stats(&self) -> Stats {
        let mut stats = self.shared.state().stats();
        stats.fsyncs_waiting = self.shared.fsyncs_waiting.load(Ordering::Relaxed);
        stats
    }

    /// Unmounts as a clean shutdown would: what was written is kept (the
    /// backing directory is left with the live tree). Processes still
    /// using the mount get errors (the connection is aborted).
    pub fn unmount(self) -> Result<(), Error> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<(), Error> {
        let Some(session) = self
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return Ok(());
        };
        let connection = std::fs::metadata(&self.mountpoint)
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::dev(&m));
        let joined = match sys::umount(&self.mountpoint, false) {
            Ok(()) => session.join(),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                // Still in use: detach it from the tree and end the
                // connection, so nothing can block on it.
                sys::umount(&self.mountpoint, true)
                    .map_err(|e| Error::io("unmount", &self.mountpoint, e))?;
                if let Some(dev) = connection {
                    abort_connection(dev);
                }
                session.join()
            }
            // No longer mounted (someone unmounted it).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => session.join(),
            // Not root: fuser unmounts through fusermount3.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => session.umount_and_join(),
            Err(e) => return Err(Error::io("unmount", &self.mountpoint, e)),
        };
        joined.map_err(|e| Error::io("stop serving", &self.mountpoint, e))?;
        let mut state = self.shared.state();
        state.commit_all();
        drop(state);
        let shadow = self.backing.join(SHADOW);
        std::fs::remove_dir_all(&shadow)
            .or_else(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| Error::io("remove", shadow, e))
    }
}

/// Ends a FUSE connection through the fusectl file system: requests in
/// flight and to come fail, and the serving threads see the end. Where
/// fusectl is not mounted (it usually is at /sys/fs/fuse/connections), it
/// is mounted for the moment on a temporary directory.
fn abort_connection(dev: u64) {
    // The kernel names a connection by its (anonymous, major 0) device.
    let id = libc::minor(dev).to_string();
    let standard = Path::new("/sys/fs/fuse/connections");
    let result = if standard.join(&id).exists() {
        std::fs::write(standard.join(&id).join("abort"), "1")
    } else {
        abort_through_temporary_fusectl(&id)
    };
    if let Err(e) = result {
        tracing::warn!("could not abort FUSE connection {id}: {e}");
    }
}

fn abort_through_temporary_fusectl(id: &str) -> io::Result<()> {
    let dir = std::env::temp_dir().join(format!("lazyfs-fusectl-{}-{id}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = sys::mount_fusectl(&dir).and_then(|()| {
        let wrote = std::fs::write(dir.join(id).join("abort"), "1");
        let unmounted = sys::umount(&dir, true);
        wrote.and(unmounted)
    });
    let _ = std::fs::remove_dir(&dir);
    result
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!("{e}");
        }
    }
}
