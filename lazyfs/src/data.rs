//! File content and attributes: open, write, truncate, fallocate, chmod and
//! chown, and what fsync and fdatasync make durable.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use fuser::Errno;

use crate::journal::Ino;
use crate::state::{Kind, Owner, R, State, errno};
use crate::sys;

impl State {
    /// Opens the backing file for I/O. It is opened read-write whatever
    /// the caller asked (the kernel checked the caller's permission), so a
    /// write can read what it overwrites.
    pub fn open(&mut self, ino: Ino, flags: i32) -> R<File> {
        let inode = self.inode(ino)?;
        if inode.kind != Kind::File {
            return Err(Errno::EINVAL);
        }
        let file = match sys::reopen(inode.fd.as_fd(), libc::O_RDWR) {
            Ok(f) => f,
            Err(_) => sys::reopen(inode.fd.as_fd(), flags & libc::O_ACCMODE).map_err(errno)?,
        };
        self.inode_mut(ino)?.opens += 1;
        Ok(file)
    }

    pub fn release(&mut self, ino: Ino) {
        if let Ok(inode) = self.inode_mut(ino) {
            inode.opens = inode.opens.saturating_sub(1);
        }
        self.maybe_drop(ino);
    }

    /// `from_mmap`: the kernel writing back pages dirtied through a shared
    /// mapping (counted; otherwise a write like any other).
    pub fn write(
        &mut self,
        ino: Ino,
        file: &File,
        offset: u64,
        data: &[u8],
        from_mmap: bool,
    ) -> R<u32> {
        let size = file.metadata().map_err(errno)?.len();
        let spill = self.shadow.as_fd();
        let inode = self.inodes.get_mut(&ino).ok_or(Errno::ESTALE)?;
        inode
            .data
            .before_write(file, spill, offset, data.len() as u64, size)
            .map_err(errno)?;
        file.write_all_at(data, offset).map_err(errno)?;
        let c = &mut self.counters;
        c.writes += 1;
        c.bytes_written += data.len() as u64;
        if from_mmap {
            c.mmap_writes += 1;
        }
        Ok(data.len() as u32)
    }

    /// truncate and ftruncate (and open with O_TRUNC).
    pub fn set_size(&mut self, ino: Ino, file: Option<&File>, size: u64) -> R<()> {
        let opened;
        let file = match file {
            Some(f) => f,
            None => {
                opened = sys::reopen(self.fd(ino)?, libc::O_RDWR).map_err(errno)?;
                &opened
            }
        };
        let old = file.metadata().map_err(errno)?.len();
        let at_once = !self.strict();
        let spill = self.shadow.as_fd();
        let inode = self.inodes.get_mut(&ino).ok_or(Errno::ESTALE)?;
        inode
            .data
            .before_resize(file, spill, old, size, at_once)
            .map_err(errno)?;
        file.set_len(size).map_err(errno)
    }

    /// chmod and chown: under the strict model they wait for an fsync.
    pub fn set_owner(
        &mut self,
        ino: Ino,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> R<()> {
        let st = self.stat(ino)?;
        let strict = self.strict();
        let inode = self.inode_mut(ino)?;
        if strict && inode.durable_owner.is_none() {
            inode.durable_owner = Some(Owner {
                mode: st.st_mode & 0o7777,
                uid: st.st_uid,
                gid: st.st_gid,
            });
        }
        let fd = inode.fd.as_fd();
        if let Some(mode) = mode
            && inode.kind != Kind::Symlink
        {
            sys::chmod(fd, mode & 0o7777).map_err(errno)?;
        }
        if uid.is_some() || gid.is_some() {
            sys::chown(fd, uid, gid).map_err(errno)?;
        }
        Ok(())
    }

    /// fallocate: plain preallocation (mode 0, `KEEP_SIZE`), punching holes
    /// and zeroing ranges. Other modes shift data and are refused.
    pub fn fallocate(&mut self, ino: Ino, file: &File, offset: u64, len: u64, mode: i32) -> R<()> {
        const KEEP: i32 = libc::FALLOC_FL_KEEP_SIZE;
        const PUNCH: i32 = libc::FALLOC_FL_PUNCH_HOLE;
        const ZERO: i32 = libc::FALLOC_FL_ZERO_RANGE;
        if mode & !(KEEP | PUNCH | ZERO) != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let size = file.metadata().map_err(errno)?.len();
        let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
        let new_size = if mode & KEEP != 0 {
            size
        } else {
            size.max(end)
        };
        let spill = self.shadow.as_fd();
        let log = &mut self.inodes.get_mut(&ino).ok_or(Errno::ESTALE)?.data;
        if mode & (PUNCH | ZERO) != 0 {
            log.before_zero(file, spill, offset, len, size, new_size)
                .map_err(errno)?;
        } else {
            log.before_resize(file, spill, size, new_size, false)
                .map_err(errno)?;
        }
        sys::fallocate(file, mode, offset, len).map_err(errno)
    }

    /// fsync (`datasync` false) or fdatasync of a file: its data and size
    /// become durable; fsync also its mode and owner.
    pub fn sync_file(&mut self, ino: Ino, datasync: bool) -> R<()> {
        let inode = self.inode_mut(ino)?;
        inode.data.clear();
        if !datasync {
            inode.durable_owner = None;
        }
        if datasync {
            self.counters.fdatasyncs += 1;
        } else {
            self.counters.fsyncs += 1;
        }
        self.maybe_drop(ino);
        Ok(())
    }

    /// fsync of a directory: the name changes in it become durable (and,
    /// unless `datasync`, its mode and owner).
    pub fn sync_dir(&mut self, ino: Ino, datasync: bool) -> R<()> {
        self.inode(ino)?;
        if self.strict() {
            self.commit_dir(ino);
        }
        if !datasync {
            self.inode_mut(ino)?.durable_owner = None;
        }
        self.counters.dir_fsyncs += 1;
        self.maybe_drop(ino);
        Ok(())
    }
}
