//! lazyfs: a FUSE filesystem that forgets what was not made durable, for
//! power-loss faults.
//!
//! The harness mounts one over each node's data directory, backed by a
//! real directory in the run directory. Every operation passes through to
//! the backing tree at once, and reads see everything written (as the page
//! cache does), so nothing about a node's behaviour changes until the power
//! goes. What is not yet durable is remembered as how to undo it; a
//! [`Mounted::power_off`] undoes it, and processes started afterwards find
//! only what survived. What survives is the model's business:
//! [`STRICT_MODEL_HELP`] and [`DURABLE_MODEL_HELP`] say it in full (they
//! are written to be shown by `--help`).
//!
//! ```no_run
//! # fn main() -> Result<(), lazyfs::Error> {
//! use std::path::Path;
//! // At the top of main, before any thread: mounts die with the process.
//! lazyfs::enter_private_mount_namespace()?;
//! lazyfs::check_available()?;
//! let disk = lazyfs::mount(Path::new("run/n1/data"), Path::new("run/n1/disk"), Default::default())?;
//! // ... start the node on run/n1/data, later SIGKILL it and wait for it ...
//! let lost = disk.power_off(lazyfs::PowerLoss::All)?;
//! println!("n1: {lost}");
//! // ... restart the node on what survived ...
//! disk.unmount()?;
//! # Ok(()) }
//! ```
//!
//! Supported: regular files, directories, hard links, symlinks, fifos and
//! sockets; read, write, truncate, `fallocate` (plain, keep-size, punch,
//! zero-range), shared mmaps (read-only and writable: `msync` is an
//! fsync), `O_SYNC`/`O_DSYNC`, rename with `RENAME_NOREPLACE` and
//! `RENAME_EXCHANGE`, statfs, flock and fcntl locks (kept by the kernel,
//! between the processes of this machine). Refused with an error: extended
//! attributes (`EOPNOTSUPP`), device nodes (`EPERM`), `fallocate` modes
//! that shift data (`EOPNOTSUPP`), `RENAME_WHITEOUT` (`EINVAL`), creating
//! `.lazyfs` at the root (`EACCES`: the shadow directory's name).
//!
//! The FUSE server runs on threads of the process that mounts. That
//! process must never mmap files of its own mount: unmapping a dirty
//! mapping waits for the kernel to write it back while holding the
//! process's memory-map lock, which the serving threads need too, a
//! deadlock no signal breaks. Plain reads and writes from it are fine; the
//! processes under test (other processes) may map anything.
//!
//! Power-on needs nothing from lazyfs: after [`Mounted::power_off`] the
//! mount serves on, with what survived, to whatever is started next.

mod available;
mod data;
mod error;
mod fs;
mod journal;
mod model;
mod mount;
mod names;
mod namespace;
mod power;
mod state;
mod sys;
mod undo;

pub use available::check_available;
pub use error::{Error, Reason, Unavailable};
pub use model::{
    DURABLE_MODEL_HELP, LossReport, Metadata, Options, POWER_LOSS_HELP, PowerLoss,
    STRICT_MODEL_HELP, Stats,
};
pub use mount::{FS_TYPE, Mounted, mount};
pub use namespace::{
    MountEntry, detach_stale_mounts, enter_private_mount_namespace, lazyfs_mounts,
};

// The harness shares one mount between its nemesis and its cluster code.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Mounted>();
};
