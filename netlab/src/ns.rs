//! Network namespaces held by file descriptor, never by name.
//!
//! A namespace lives as long as something refers to it: a process (or
//! thread) inside it, an open file descriptor of it, or a bind mount. We
//! never bind-mount (that is what `ip netns add` does, and it outlives us),
//! so every namespace made here is held only by [`NetNs`] values and by the
//! processes started in it, and the kernel frees it once the last of those
//! is gone, whichever way the harness ended, `kill -9` included.
//!
//! - [`enter_private_netns`]: moves the whole process into a fresh
//!   namespace; for the very top of `main`.
//! - [`NetNs`]: a namespace by fd: [`NetNs::create`] makes one from a
//!   short-lived thread; [`NetNs::run`] runs a closure on a thread inside it;
//!   [`NetNs::prepare`] makes a `Command` start inside it.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;

use nix::sched::{CloneFlags, setns, unshare};

use crate::error::NetlabError;

/// A network namespace, kept alive by this handle (and its clones) and by
/// whatever runs inside it.
#[derive(Clone, Debug)]
pub struct NetNs {
    fd: Arc<OwnedFd>,
}

impl NetNs {
    /// The namespace of the calling thread (not of the process: a thread may
    /// have moved on its own).
    pub fn current() -> io::Result<NetNs> {
        let file = File::open("/proc/thread-self/ns/net")?;
        Ok(NetNs {
            fd: Arc::new(OwnedFd::from(file)),
        })
    }

    /// A new, empty namespace with its loopback up. It is made by a
    /// short-lived thread that unshares and opens its own namespace, so the
    /// caller's threads never leave theirs and nothing names it on disk.
    pub fn create() -> Result<NetNs, NetlabError> {
        let made = std::thread::Builder::new()
            .name("netlab-unshare".into())
            .spawn(|| -> Result<NetNs, NetlabError> {
                unshare(CloneFlags::CLONE_NEWNET).map_err(|e| NetlabError::Unshare(e.into()))?;
                bring_up_loopback().map_err(|e| NetlabError::Io {
                    what: "bringing up lo in a new namespace".into(),
                    source: e,
                })?;
                NetNs::current().map_err(|e| NetlabError::Io {
                    what: "opening a new namespace".into(),
                    source: e,
                })
            })
            .map_err(|e| NetlabError::Io {
                what: "starting a thread".into(),
                source: e,
            })?;
        made.join().unwrap_or_else(|_| {
            Err(NetlabError::Io {
                what: "creating a namespace".into(),
                source: io::Error::other("the thread panicked"),
            })
        })
    }

    /// The namespace's inode number: what `/proc/PID/ns/net` links to
    /// (`net:[INODE]`). Tells namespaces apart; used to prove none is left.
    pub fn inode(&self) -> u64 {
        // SAFETY: fstat into a zeroed stat, on an fd we hold open.
        unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(self.fd.as_raw_fd(), &mut st) != 0 {
                return 0;
            }
            st.st_ino
        }
    }

    /// Moves the calling thread into this namespace. Not public: a thread
    /// of the caller's that wandered off would surprise it; [`NetNs::run`]
    /// and the emulator use threads of their own.
    pub(crate) fn enter(&self) -> io::Result<()> {
        setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
    }

    /// Runs `f` on a new thread inside this namespace and returns its
    /// result. Sockets `f` creates belong to this namespace for good, so it
    /// is how to open a listener or connect from "inside" a node; threads `f`
    /// spawns start there too.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetlabError> {
        std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name("netlab-in-ns".into())
                .spawn_scoped(scope, || -> io::Result<T> {
                    self.enter()?;
                    Ok(f())
                })
                .map_err(|e| NetlabError::Io {
                    what: "starting a thread".into(),
                    source: e,
                })?;
            match handle.join() {
                Ok(result) => result.map_err(|e| NetlabError::Io {
                    what: "entering a namespace (setns)".into(),
                    source: e,
                }),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Makes `cmd` start inside this namespace: the child joins it between
    /// fork and exec. The command keeps the namespace alive until it is
    /// dropped, so the fd it joins by cannot be closed (and reused) first.
    pub fn prepare<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        let fd = self.fd.clone();
        // SAFETY: setns is a plain system call, async-signal-safe; nothing
        // allocates or locks between fork and exec here.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            })
        }
    }

    /// A path through which other processes (e.g. `ip ... netns PATH`) can
    /// open this namespace while we hold it.
    pub(crate) fn proc_path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.fd.as_raw_fd())
    }
}

/// Moves the whole process into a new, empty network namespace (loopback
/// up) of its own, so that every interface, rule and namespace it creates
/// from then on vanishes with it, however it dies.
///
/// Call it at the very top of `main`, before any thread starts (a tokio
/// runtime, a logger with a worker): a network namespace belongs to a
/// thread, and threads started earlier would stay behind in the old one.
/// Refuses to run if the process already has more than one thread.
/// Afterwards the process reaches nothing outside: only what it builds.
pub fn enter_private_netns() -> Result<(), NetlabError> {
    let threads = thread_count().map_err(|e| NetlabError::Io {
        what: "reading /proc/self/status".into(),
        source: e,
    })?;
    if threads != 1 {
        return Err(NetlabError::NotSingleThreaded(threads));
    }
    unshare_this_thread()
}

/// Moves only the calling thread into a new namespace with loopback up.
/// For test runners whose harness owns other threads; see
/// [`crate::testing`].
pub(crate) fn unshare_this_thread() -> Result<(), NetlabError> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| NetlabError::Unshare(e.into()))?;
    bring_up_loopback().map_err(|e| NetlabError::Io {
        what: "bringing up lo".into(),
        source: e,
    })
}

fn thread_count() -> io::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Threads: line"))
}

/// `ip link set lo up` without a process: SIOCSIFFLAGS on a socket of the
/// calling thread's namespace.
fn bring_up_loopback() -> io::Result<()> {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq that outlives them.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(io::Error::last_os_error());
        }
        let sock = <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(sock);
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            return Err(io::Error::last_os_error());
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
