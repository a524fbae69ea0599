//! [`State`]: the inode table and the pending changes of one mount.
//!
//! Inode numbers are the mount's own (never reused while mounted), each
//! tied to the backing object through an `O_PATH` descriptor, so a file
//! keeps its number across renames and while it waits, unlinked, in the
//! shadow directory. Backing (device, inode) pairs map to them so hard
//! links share one inode.
//!
//! The backing directory holds the live tree: everything written is there
//! at once (reads are plain reads). What is not durable is remembered as
//! how to undo it: each file's [`DataLog`], the [`Journal`] of name changes
//! (their removed objects kept in the shadow directory `.lazyfs` at the
//! backing root, hidden from the mount), and the mode and owner a file had
//! at its last fsync.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use fuser::Errno;

use crate::journal::{Change, Entry, Ino, Journal};
use crate::model::{Metadata, Stats};
use crate::sys::{self, Stat};
use crate::undo::{DataLog, Undone};

pub(crate) const ROOT: Ino = 1;

/// The shadow directory's name at the backing root.
pub(crate) const SHADOW: &str = ".lazyfs";

pub(crate) type R<T> = Result<T, Errno>;

pub(crate) fn errno(e: io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Kind {
    pub fn of(st: &Stat) -> Kind {
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        }
    }
}

/// Mode and owner, as they were at the last fsync.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug)]
pub(crate) struct Inode {
    pub kind: Kind,
    pub fd: OwnedFd,
    /// The backing (device, inode), while the object has a name.
    pub key: Option<(u64, u64)>,
    /// References the kernel holds (lookups not yet forgotten).
    pub lookups: u64,
    pub opens: u32,
    /// References from pending name changes.
    pub pins: u32,
    pub data: DataLog,
    pub durable_owner: Option<Owner>,
    /// Where it was last seen, for reports.
    pub name: Option<Entry>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub writes: u64,
    pub bytes_written: u64,
    pub mmap_writes: u64,
    pub fsyncs: u64,
    pub fdatasyncs: u64,
    pub dir_fsyncs: u64,
    pub power_offs: u64,
}

#[derive(Debug)]
pub(crate) struct State {
    pub metadata: Metadata,
    pub inodes: HashMap<Ino, Inode>,
    by_key: HashMap<(u64, u64), Ino>,
    next_ino: Ino,
    pub journal: Journal,
    /// The shadow directory.
    pub shadow: OwnedFd,
    next_shadow: u64,
    /// Bumped by every power-off: an fsync that waited across one commits
    /// nothing.
    pub epoch: u64,
    pub counters: Counters,
}

fn key(st: &Stat) -> (u64, u64) {
    (st.st_dev, st.st_ino)
}

impl State {
    /// Takes over `backing`: its content is the durable state; a shadow
    /// directory left by an earlier mount that did not end cleanly is
    /// thrown away (what it held had been unlinked).
    pub fn take_over(backing: &Path, metadata: Metadata) -> io::Result<State> {
        let shadow_path = backing.join(SHADOW);
        match std::fs::remove_dir_all(&shadow_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::create_dir(&shadow_path)?;
        let cwd = std::fs::File::open("/")?;
        let root_fd = sys::open_path(cwd.as_fd(), backing.as_os_str())?;
        let root_st = sys::fstat(root_fd.as_fd())?;
        if Kind::of(&root_st) != Kind::Dir {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the backing path is not a directory",
            ));
        }
        let shadow = sys::open_path(root_fd.as_fd(), OsStr::new(SHADOW))?;
        let mut inodes = HashMap::new();
        inodes.insert(
            ROOT,
            Inode {
                kind: Kind::Dir,
                fd: root_fd,
                key: Some(key(&root_st)),
                lookups: 1,
                opens: 0,
                pins: 0,
                data: DataLog::default(),
                durable_owner: None,
                name: None,
            },
        );
        Ok(State {
            metadata,
            inodes,
            by_key: HashMap::from([(key(&root_st), ROOT)]),
            next_ino: ROOT + 1,
            journal: Journal::default(),
            shadow,
            next_shadow: 0,
            epoch: 0,
            counters: Counters::default(),
        })
    }

    pub fn strict(&self) -> bool {
        self.metadata == Metadata::Strict
    }

    pub fn inode(&self, ino: Ino) -> R<&Inode> {
        self.inodes.get(&ino).ok_or(Errno::ESTALE)
    }

    pub fn inode_mut(&mut self, ino: Ino) -> R<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or(Errno::ESTALE)
    }

    pub fn fd(&self, ino: Ino) -> R<BorrowedFd<'_>> {
        Ok(self.inode(ino)?.fd.as_fd())
    }

    pub fn stat(&self, ino: Ino) -> R<Stat> {
        sys::fstat(self.fd(ino)?).map_err(errno)
    }

    /// True for the shadow directory's entry, which the mount never shows.
    pub fn hidden(parent: Ino, name: &OsStr) -> bool {
        parent == ROOT && name == SHADOW
    }

    /// The inode named `name` in `parent`, known from now on (no kernel
    /// reference taken).
    pub fn intern(&mut self, parent: Ino, name: &OsStr) -> R<(Ino, Stat)> {
        if State::hidden(parent, name) {
            return Err(Errno::ENOENT);
        }
        let st = sys::fstatat(self.fd(parent)?, name).map_err(errno)?;
        if let Some(ino) = self.known(&st) {
            return Ok((ino, st));
        }
        let fd = sys::open_path(self.fd(parent)?, name).map_err(errno)?;
        let st = sys::fstat(fd.as_fd()).map_err(errno)?;
        if let Some(ino) = self.known(&st) {
            return Ok((ino, st));
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.by_key.insert(key(&st), ino);
        self.inodes.insert(
            ino,
            Inode {
                kind: Kind::of(&st),
                fd,
                key: Some(key(&st)),
                lookups: 0,
                opens: 0,
                pins: 0,
                data: DataLog::default(),
                durable_owner: None,
                name: Some((parent, name.to_os_string())),
            },
        );
        Ok((ino, st))
    }

    /// The inode the backing object `st` describes, if known. (A mapped
    /// number cannot have been reused for another file: the inode's
    /// `O_PATH` descriptor keeps the object, deleted or not, and so its
    /// number, until the inode is dropped along with its mapping.)
    fn known(&self, st: &Stat) -> Option<Ino> {
        self.by_key.get(&key(st)).copied()
    }

    /// Unmaps the backing object of `ino` (it has no name left).
    pub fn forget_key(&mut self, ino: Ino) {
        if let Some(inode) = self.inodes.get_mut(&ino)
            && let Some(k) = inode.key.take()
            && self.by_key.get(&k) == Some(&ino)
        {
            self.by_key.remove(&k);
        }
    }

    /// A lookup on behalf of the kernel: one more reference.
    pub fn lookup(&mut self, parent: Ino, name: &OsStr) -> R<(Ino, Stat)> {
        let (ino, st) = self.intern(parent, name)?;
        let inode = self.inode_mut(ino)?;
        inode.lookups += 1;
        inode.name = Some((parent, name.to_os_string()));
        Ok((ino, st))
    }

    pub fn forget(&mut self, ino: Ino, n: u64) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.lookups = inode.lookups.saturating_sub(n);
            self.maybe_drop(ino);
        }
    }

    /// Drops an inode nobody refers to any more and that has nothing to undo.
    pub fn maybe_drop(&mut self, ino: Ino) {
        let Some(inode) = self.inodes.get(&ino) else {
            return;
        };
        if ino == ROOT
            || inode.lookups > 0
            || inode.opens > 0
            || inode.pins > 0
            || !inode.data.is_empty()
            || inode.durable_owner.is_some()
        {
            return;
        }
        if let Some(k) = inode.key
            && self.by_key.get(&k) == Some(&ino)
        {
            self.by_key.remove(&k);
        }
        self.inodes.remove(&ino);
    }

    /// After a name of `ino` went away for good: once the object has no
    /// name left, its backing inode number may be reused, so forget the
    /// mapping, and its pending data can never be seen again.
    /// Returns the unsynced data thrown away with it.
    pub fn after_unlink(&mut self, ino: Ino) -> Undone {
        let Some(inode) = self.inodes.get_mut(&ino) else {
            return Undone::default();
        };
        let mut undone = Undone::default();
        if sys::fstat(inode.fd.as_fd()).is_ok_and(|st| st.st_nlink == 0) {
            undone = inode.data.discard();
            inode.durable_owner = None;
            self.forget_key(ino);
        }
        self.maybe_drop(ino);
        undone
    }

    /// A fresh name in the shadow directory.
    pub fn shadow_name(&mut self) -> OsString {
        self.next_shadow += 1;
        OsString::from(self.next_shadow.to_string())
    }

    /// Records a pending name change, keeping the inodes it refers to.
    pub fn record(&mut self, change: Change, emptied_dir: Option<Ino>) {
        for ino in change.inodes() {
            if let Some(inode) = self.inodes.get_mut(&ino) {
                inode.pins += 1;
            }
        }
        self.journal.record(change, emptied_dir);
    }

    /// Releases the inodes a change that was committed or undone kept.
    pub fn unpin(&mut self, change: &Change) {
        for ino in change.inodes() {
            if let Some(inode) = self.inodes.get_mut(&ino) {
                inode.pins = inode.pins.saturating_sub(1);
            }
            self.maybe_drop(ino);
        }
    }

    /// The path of an entry as last seen, for reports.
    pub fn entry_path(&self, entry: &Entry) -> String {
        let mut parts = vec![entry.1.to_string_lossy().into_owned()];
        let mut at = entry.0;
        for _ in 0..256 {
            if at == ROOT {
                break;
            }
            match self.inodes.get(&at).and_then(|i| i.name.as_ref()) {
                Some((parent, name)) => {
                    parts.push(name.to_string_lossy().into_owned());
                    at = *parent;
                }
                None => {
                    parts.push("?".into());
                    break;
                }
            }
        }
        parts.reverse();
        parts.join("/")
    }

    pub fn ino_path(&self, ino: Ino) -> String {
        match self.inodes.get(&ino).and_then(|i| i.name.as_ref()) {
            Some(entry) => self.entry_path(entry),
            None => format!("inode {ino}"),
        }
    }

    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let pending = self.inodes.values().filter(|i| !i.data.is_empty());
        Stats {
            pending_files: pending.clone().count(),
            pending_data_changes: pending.clone().map(|i| i.data.len()).sum(),
            pending_names: self.journal.len(),
            undo_memory: pending.map(|i| i.data.memory()).sum(),
            inodes: self.inodes.len(),
            writes: c.writes,
            bytes_written: c.bytes_written,
            mmap_writes: c.mmap_writes,
            fsyncs: c.fsyncs,
            fdatasyncs: c.fdatasyncs,
            dir_fsyncs: c.dir_fsyncs,
            fsyncs_waiting: 0,
            power_offs: c.power_offs,
        }
    }
}
