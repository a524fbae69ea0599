//! No leftover mounts: a private mount namespace that dies with the
//! process, and a sweep for dead mounts left by a process that had none.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::mount::FS_TYPE;
use crate::sys;

/// Moves this process into a mount namespace of its own, private (mounts
/// made in it are not seen outside, and it disappears, mounts and all, when
/// the last process in it exits: also after kill -9). Child processes
/// inherit it and see its mounts.
///
/// Call it at the top of `main`, before any thread starts: a mount
/// namespace belongs to a thread, so with other threads running they would
/// stay outside. It fails with [`Error::Invalid`] if threads are running
/// and with [`Error::Io`] if the process may not unshare (not root).
pub fn enter_private_mount_namespace() -> Result<(), Error> {
    let threads = thread_count();
    if threads != Some(1) {
        return Err(Error::Invalid(format!(
            "enter_private_mount_namespace must run before any thread starts ({} threads are \
             running)",
            threads.map_or_else(|| "an unknown number of".to_string(), |n| n.to_string())
        )));
    }
    // SAFETY: a plain system call on the calling (only) thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(Error::io(
            "enter a new mount namespace (unshare) for",
            "this process",
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: valid NUL-terminated strings; null source, type and data are
    // allowed for a propagation change.
    let made_private = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if made_private != 0 {
        return Err(Error::io(
            "make the mount namespace private at",
            "/",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// A lazyfs mount as `/proc/self/mountinfo` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mountpoint: PathBuf,
}

/// The lazyfs mounts at or under `under` in this process's namespace.
pub fn lazyfs_mounts(under: &Path) -> Result<Vec<MountEntry>, Error> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
    Ok(parse_mountinfo(&text)
        .into_iter()
        .filter(|(point, fstype)| fstype == FS_TYPE && point.starts_with(under))
        .map(|(mountpoint, _)| MountEntry { mountpoint })
        .collect())
}

/// Detaches the dead lazyfs mounts at or under `under`: those whose
/// serving process is gone (they answer "transport endpoint is not
/// connected"). Live mounts, also other processes', are left alone. Returns
/// the mount points detached.
///
/// For a harness that does not run in a private mount namespace: call it
/// at start on its store directory.
pub fn detach_stale_mounts(under: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut detached = Vec::new();
    // Deepest first, so a dead mount under another dead one goes first.
    let mut mounts = lazyfs_mounts(under)?;
    mounts.sort_by_key(|m| std::cmp::Reverse(m.mountpoint.components().count()));
    for m in mounts {
        let dead = matches!(std::fs::metadata(&m.mountpoint),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN));
        if dead {
            sys::umount(&m.mountpoint, true)
                .map_err(|e| Error::io("detach the dead mount", &m.mountpoint, e))?;
            detached.push(m.mountpoint);
        }
    }
    Ok(detached)
}

/// (mount point, file system type) of each line of a mountinfo file.
fn parse_mountinfo(text: &str) -> Vec<(PathBuf, String)> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let fstype = right.split(' ').next()?;
            Some((PathBuf::from(unescape(point)), fstype.to_string()))
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_escaped_points_and_types() {
        let text = "36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - fuse.lazyfs lazyfs rw\n\
                    37 35 0:5 / /proc rw - proc proc rw\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![
                (PathBuf::from("/mnt/a b"), "fuse.lazyfs".to_string()),
                (PathBuf::from("/proc"), "proc".to_string()),
            ]
        );
    }
}
