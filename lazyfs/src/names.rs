//! Name changes on the backing tree: create, mkdir, mknod, symlink, link,
//! unlink, rmdir, rename; committing them on a directory fsync, and undoing
//! them at a power-off.
//!
//! Under the strict model a removed object is not deleted but moved into
//! the shadow directory, so undoing the removal is a rename back; deleting
//! it waits until the removal is committed. Under the durable model every
//! change is final at once and nothing is journaled.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use fuser::Errno;

use crate::journal::{Change, Entry, Ino};
use crate::state::{Kind, R, State, errno};
use crate::sys::{self, Stat};
use crate::undo::Undone;

/// What a new name is made for.
pub(crate) enum New<'a> {
    Dir { mode: u32 },
    Node { mode: u32, rdev: u32 },
    Symlink { target: &'a Path },
}

impl State {
    fn refuse_hidden(parent: Ino, name: &OsStr) -> R<()> {
        if State::hidden(parent, name) {
            Err(Errno::EACCES)
        } else {
            Ok(())
        }
    }

    /// Notes a new name for `ino` (journaled under the strict model).
    fn added(&mut self, parent: Ino, name: &OsStr, ino: Ino) {
        if self.strict() {
            self.record(
                Change::Added {
                    at: (parent, name.to_os_string()),
                    ino,
                },
                None,
            );
        }
    }

    /// Creates and opens a regular file; returns its inode (one kernel
    /// reference taken) and the open backing file.
    pub fn create(
        &mut self,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        flags: i32,
        owner: (u32, u32),
    ) -> R<(Ino, Stat, File)> {
        State::refuse_hidden(parent, name)?;
        let dir = self.fd(parent)?;
        let fd = match sys::openat(
            dir,
            name,
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            mode & 0o7777,
        ) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && flags & libc::O_EXCL == 0 => {
                // The kernel thought the name free; open what is there.
                let (ino, st) = self.lookup(parent, name)?;
                let file = self.open(ino, libc::O_RDWR)?;
                return Ok((ino, st, file));
            }
            Err(e) => return Err(errno(e)),
        };
        let file = File::from(fd);
        set_owner(&file, owner);
        let (ino, st) = self.lookup(parent, name)?;
        self.inode_mut(ino)?.opens += 1;
        self.added(parent, name, ino);
        Ok((ino, st, file))
    }

    /// mkdir, mknod (regular files, fifos, sockets) and symlink.
    pub fn make(
        &mut self,
        parent: Ino,
        name: &OsStr,
        what: New<'_>,
        owner: (u32, u32),
    ) -> R<(Ino, Stat)> {
        State::refuse_hidden(parent, name)?;
        let dir = self.fd(parent)?;
        match what {
            New::Dir { mode } => sys::mkdirat(dir, name, mode & 0o7777),
            New::Node { mode, rdev } => match mode & libc::S_IFMT {
                libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK => {
                    sys::mknodat(dir, name, mode, libc::dev_t::from(rdev))
                }
                _ => return Err(Errno::EPERM),
            },
            New::Symlink { target } => sys::symlinkat(target, dir, name),
        }
        .map_err(errno)?;
        let (ino, st) = self.lookup(parent, name)?;
        if let Ok(fd) = self.fd(ino) {
            let _ = sys::chown(fd, Some(owner.0), Some(owner.1));
        }
        self.added(parent, name, ino);
        Ok((ino, self.stat(ino).unwrap_or(st)))
    }

    pub fn link(&mut self, ino: Ino, parent: Ino, name: &OsStr) -> R<(Ino, Stat)> {
        State::refuse_hidden(parent, name)?;
        sys::link_fd(self.fd(ino)?, self.fd(parent)?, name).map_err(errno)?;
        let (linked, st) = self.lookup(parent, name)?;
        self.added(parent, name, linked);
        Ok((linked, st))
    }

    /// unlink and rmdir.
    pub fn remove(&mut self, parent: Ino, name: &OsStr, is_dir: bool) -> R<()> {
        State::refuse_hidden(parent, name)?;
        let (ino, st) = self.intern(parent, name)?;
        match (is_dir, Kind::of(&st) == Kind::Dir) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            _ => {}
        }
        if is_dir && !dir_is_empty(self, ino)? {
            return Err(Errno::ENOTEMPTY);
        }
        if !self.strict() {
            sys::unlinkat(self.fd(parent)?, name, is_dir).map_err(errno)?;
            self.after_unlink(ino);
            return Ok(());
        }
        let shadow = self.shadow_name();
        sys::renameat(self.fd(parent)?, name, self.shadow.as_fd(), &shadow, 0).map_err(errno)?;
        let at = (parent, name.to_os_string());
        self.record(Change::Removed { at, ino, shadow }, is_dir.then_some(ino));
        Ok(())
    }

    pub fn rename(&mut self, from: Entry, to: Entry, flags: u32) -> R<()> {
        State::refuse_hidden(from.0, &from.1)?;
        State::refuse_hidden(to.0, &to.1)?;
        if flags & !(libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE) != 0 {
            return Err(Errno::EINVAL);
        }
        let (ino, st) = self.intern(from.0, &from.1)?;
        let target = match self.intern(to.0, &to.1) {
            Ok(t) => Some(t),
            Err(e) if e == Errno::ENOENT => None,
            Err(e) => return Err(e),
        };
        let replaced = match target {
            Some((t_ino, _)) if flags & libc::RENAME_EXCHANGE != 0 => {
                self.rename_at(&from, &to, flags)?;
                self.set_name(t_ino, &from);
                self.set_name(ino, &to);
                if self.strict() {
                    self.record(Change::Exchanged { a: from, b: to }, None);
                }
                return Ok(());
            }
            None => {
                self.rename_at(&from, &to, flags)?;
                None
            }
            Some(_) if flags & libc::RENAME_NOREPLACE != 0 => return Err(Errno::EEXIST),
            // Two names of one file: rename does nothing (POSIX).
            Some((t_ino, _)) if t_ino == ino => return Ok(()),
            Some((t_ino, _)) if !self.strict() => {
                self.rename_at(&from, &to, 0)?;
                self.set_name(ino, &to);
                self.after_unlink(t_ino);
                return Ok(());
            }
            Some((t_ino, t_st)) => {
                let shadow = self.keep_replaced(&st, &to, t_ino, &t_st)?;
                if let Err(e) = self.rename_at(&from, &to, 0) {
                    self.put_back_replaced(&to, &shadow, Kind::of(&t_st) == Kind::Dir);
                    return Err(e);
                }
                Some((t_ino, shadow))
            }
        };
        self.set_name(ino, &to);
        if self.strict() {
            self.record(
                Change::Renamed {
                    from,
                    to,
                    ino,
                    replaced,
                },
                None,
            );
        }
        Ok(())
    }

    fn rename_at(&self, from: &Entry, to: &Entry, flags: u32) -> R<()> {
        sys::renameat(self.fd(from.0)?, &from.1, self.fd(to.0)?, &to.1, flags).map_err(errno)
    }

    /// Before a rename replaces `to` (holding `t_ino`): keeps the replaced
    /// object in the shadow directory. A file gets a hard link there (the
    /// rename itself then checks everything as usual); an empty directory
    /// is moved there, after the checks rename would make.
    fn keep_replaced(
        &mut self,
        src: &Stat,
        to: &Entry,
        t_ino: Ino,
        t_st: &Stat,
    ) -> R<std::ffi::OsString> {
        let shadow = self.shadow_name();
        let src_is_dir = Kind::of(src) == Kind::Dir;
        if Kind::of(t_st) == Kind::Dir {
            if !src_is_dir {
                return Err(Errno::EISDIR);
            }
            if !dir_is_empty(self, t_ino)? {
                return Err(Errno::ENOTEMPTY);
            }
            sys::renameat(self.fd(to.0)?, &to.1, self.shadow.as_fd(), &shadow, 0).map_err(errno)?;
        } else {
            if src_is_dir {
                return Err(Errno::ENOTDIR);
            }
            sys::link_fd(self.fd(t_ino)?, self.shadow.as_fd(), &shadow).map_err(errno)?;
        }
        Ok(shadow)
    }

    fn put_back_replaced(&self, to: &Entry, shadow: &OsStr, is_dir: bool) {
        let undo = match self.fd(to.0) {
            Ok(dir) if is_dir => sys::renameat(self.shadow.as_fd(), shadow, dir, &to.1, 0),
            Ok(_) => sys::unlinkat(self.shadow.as_fd(), shadow, false),
            Err(e) => Err(to_io(e)),
        };
        if let Err(e) = undo {
            tracing::error!(?to, "could not put back the target of a failed rename: {e}");
        }
    }

    fn set_name(&mut self, ino: Ino, at: &Entry) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.name = Some(at.clone());
        }
    }

    /// A directory fsync: the pending name changes it makes durable become
    /// final (what they removed is deleted).
    pub fn commit_dir(&mut self, dir: Ino) {
        for change in self.journal.commit_dir(dir) {
            self.finish(&change);
        }
    }

    /// A clean unmount: everything is kept as it is.
    pub fn commit_all(&mut self) {
        for change in self.journal.commit_all() {
            self.finish(&change);
        }
    }

    fn finish(&mut self, change: &Change) {
        let gone = match change {
            Change::Removed { ino, shadow, .. } => Some((*ino, shadow)),
            Change::Renamed {
                replaced: Some((ino, shadow)),
                ..
            } => Some((*ino, shadow)),
            _ => None,
        };
        if let Some((ino, shadow)) = gone {
            let is_dir = self.inodes.get(&ino).is_some_and(|i| i.kind == Kind::Dir);
            if let Err(e) = remove_tree(self.shadow.as_fd(), shadow, is_dir) {
                tracing::error!("could not delete {shadow:?} from the shadow directory: {e}");
            }
            self.unpin(change);
            self.after_unlink(ino);
        } else {
            self.unpin(change);
        }
    }

    /// Undoes one pending change (power-off); the caller unpins it.
    pub fn undo_change(&mut self, change: &Change) -> io::Result<Undid> {
        let undid = match change {
            Change::Added { at, ino } => {
                let is_dir = self.inodes.get(ino).is_some_and(|i| i.kind == Kind::Dir);
                let lost = remove_tree(self.fd(at.0).map_err(to_io)?, &at.1, is_dir)?;
                let data = self.after_unlink(*ino);
                Undid {
                    entries: vec![at.clone()],
                    lost,
                    restored: 0,
                    data,
                }
            }
            Change::Removed { at, ino, shadow } => {
                let dir = self.fd(at.0).map_err(to_io)?;
                sys::renameat(
                    self.shadow.as_fd(),
                    shadow,
                    dir,
                    &at.1,
                    libc::RENAME_NOREPLACE,
                )?;
                self.set_name(*ino, at);
                Undid {
                    entries: vec![at.clone()],
                    lost: 0,
                    restored: 1,
                    data: Undone::default(),
                }
            }
            Change::Renamed {
                from,
                to,
                ino,
                replaced,
            } => {
                self.rename_at(to, from, libc::RENAME_NOREPLACE)
                    .map_err(to_io)?;
                self.set_name(*ino, from);
                if let Some((r_ino, shadow)) = replaced {
                    let dir = self.fd(to.0).map_err(to_io)?;
                    sys::renameat(
                        self.shadow.as_fd(),
                        shadow,
                        dir,
                        &to.1,
                        libc::RENAME_NOREPLACE,
                    )?;
                    self.set_name(*r_ino, to);
                }
                Undid {
                    entries: vec![from.clone(), to.clone()],
                    lost: 0,
                    restored: 1,
                    data: Undone::default(),
                }
            }
            Change::Exchanged { a, b } => {
                self.rename_at(a, b, libc::RENAME_EXCHANGE).map_err(to_io)?;
                Undid {
                    entries: vec![a.clone(), b.clone()],
                    lost: 0,
                    restored: 1,
                    data: Undone::default(),
                }
            }
        };
        Ok(undid)
    }
}

/// What undoing one name change did.
pub(crate) struct Undid {
    /// Entries whose kernel cache must be dropped.
    pub entries: Vec<Entry>,
    /// Names that went (with everything under a directory).
    pub lost: u64,
    /// Names put back.
    pub restored: u64,
    /// Unsynced data of a file that went with its last name.
    pub data: Undone,
}

fn to_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.code())
}

/// New files belong to the caller, not to this process. (A daemon that is
/// not root cannot give them away: they stay its own.)
fn set_owner(file: &File, (uid, gid): (u32, u32)) {
    let _ = sys::chown(file.as_fd(), Some(uid), Some(gid));
}

fn dir_is_empty(state: &State, ino: Ino) -> R<bool> {
    let path = sys::proc_path(state.fd(ino)?);
    let mut entries = std::fs::read_dir(path).map_err(errno)?;
    Ok(entries.next().is_none())
}

/// Removes `name` from `dir`, with everything under it if it is a
/// directory; returns how many names went.
fn remove_tree(dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool) -> io::Result<u64> {
    if !is_dir {
        sys::unlinkat(dir, name, false)?;
        return Ok(1);
    }
    let sub = sys::open_path(dir, name)?;
    let mut removed = 0;
    for entry in std::fs::read_dir(sys::proc_path(sub.as_fd()))? {
        let entry = entry?;
        let is_dir = entry.file_type()?.is_dir();
        removed += remove_tree(sub.as_fd(), &entry.file_name(), is_dir)?;
    }
    sys::unlinkat(dir, name, true)?;
    Ok(removed + 1)
}
