//! The FUSE side: each request is decoded, handed to [`State`] under its
//! lock, and answered.
//!
//! What the kernel is told, and why:
//! - No writeback cache (fuser does not ask for it): every write reaches
//!   this process before the writing call returns, so an acknowledged
//!   write is always in the backing file and in the undo log.
//! - Page cache on, no `keep_cache`: reads and read-only shared mmaps
//!   (bbolt) work as on any file system, and every open drops the file's
//!   cached pages. A power-off also drops every cached page, attribute and
//!   changed name explicitly, so a process started afterwards reads only
//!   what survived.
//! - Shared writable mmaps work: the kernel writes dirty pages back as
//!   ordinary writes (flagged `FUSE_WRITE_CACHE`) before any fsync or msync
//!   completes, and a power-off first has the kernel write back what is
//!   still dirty, so those pages are then thrown away as unsynced.
//! - Locks (flock, fcntl) are not forwarded (fuser does not ask for
//!   `POSIX_LOCKS`/`FLOCK_LOCKS`), so the kernel keeps them locally: they
//!   work between the processes on this machine, which is all the nodes
//!   need.
//! - Extended attributes are refused (`ENOSYS`, which the kernel turns into
//!   `EOPNOTSUPP` for every caller from then on).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::fs::{DirEntryExt, FileExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
    WriteFlags,
};

use crate::journal::Ino;
use crate::names::New;
use crate::state::{R, ROOT, State, errno};
use crate::sys::{self, Stat};

/// How long the kernel may trust a name or attributes without asking. All
/// changes go through this process, so the kernel's caches stay right
/// except across a power-off, which invalidates them explicitly; the TTL
/// only bounds how long a missed invalidation could mislead.
const TTL: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct OpenFile {
    ino: Ino,
    file: File,
}

#[derive(Debug)]
struct DirEntry {
    ino: u64,
    kind: FileType,
    name: OsString,
}

#[derive(Debug, Default)]
pub(crate) struct Handles {
    next: u64,
    files: HashMap<u64, Arc<OpenFile>>,
    dirs: HashMap<u64, Vec<DirEntry>>,
}

/// What the FUSE threads and the [`Mounted`](crate::Mounted) handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub handles: Mutex<Handles>,
    pub fsync_delay_ns: AtomicU64,
    /// Fsyncs now waiting out the delay.
    pub fsyncs_waiting: AtomicU64,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        // A panic in a request handler must not wedge the mount: the state
        // is consistent between calls (each records before it changes).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn handles(&self) -> MutexGuard<'_, Handles> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn file(&self, fh: FileHandle) -> R<Arc<OpenFile>> {
        self.handles().files.get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    fn add_file(&self, ino: Ino, file: File) -> FileHandle {
        let mut h = self.handles();
        h.next += 1;
        let fh = h.next;
        h.files.insert(fh, Arc::new(OpenFile { ino, file }));
        FileHandle(fh)
    }

    /// An fsync of any kind: waits out the injected delay (without the
    /// lock, so other requests go on), then makes durable what `commit`
    /// says, unless the power went meanwhile (then the fsync never
    /// completed).
    fn sync(&self, commit: impl FnOnce(&mut State) -> R<()>) -> R<()> {
        let epoch = self.state().epoch;
        let delay = Duration::from_nanos(self.fsync_delay_ns.load(Ordering::Relaxed));
        if !delay.is_zero() {
            self.fsyncs_waiting.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(delay);
            self.fsyncs_waiting.fetch_sub(1, Ordering::Relaxed);
        }
        let mut state = self.state();
        if state.epoch != epoch {
            return Err(Errno::EIO);
        }
        commit(&mut state)
    }
}

/// The [`Filesystem`] fuser drives.
pub(crate) struct LazyFs(pub Arc<Shared>);

fn file_type(st: &Stat) -> FileType {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

fn time(sec: i64, nsec: i64) -> SystemTime {
    if sec >= 0 {
        UNIX_EPOCH + Duration::new(sec as u64, nsec as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(sec.unsigned_abs()) + Duration::from_nanos(nsec as u64)
    }
}

pub(crate) fn attr(ino: Ino, st: &Stat) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        atime: time(st.st_atime, st.st_atime_nsec),
        mtime: time(st.st_mtime, st.st_mtime_nsec),
        ctime: time(st.st_ctime, st.st_ctime_nsec),
        crtime: UNIX_EPOCH,
        kind: file_type(st),
        perm: (st.st_mode & 0o7777) as u16,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev as u32,
        blksize: st.st_blksize as u32,
        flags: 0,
    }
}

fn timespec(t: TimeOrNow) -> Option<libc::timespec> {
    match t {
        TimeOrNow::Now => None,
        TimeOrNow::SpecificTime(t) => {
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            Some(libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
            })
        }
    }
}

fn reply_entry(reply: ReplyEntry, r: R<(Ino, Stat)>) {
    match r {
        Ok((ino, st)) => reply.entry(&TTL, &attr(ino, &st), Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn reply_empty(reply: ReplyEmpty, r: R<()>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn owner(req: &Request) -> (u32, u32) {
    (req.uid(), req.gid())
}

/// What a setattr asks to change.
struct AttrChange {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: Option<TimeOrNow>,
    mtime: Option<TimeOrNow>,
}

impl LazyFs {
    fn setattr_inner(&self, ino: Ino, c: AttrChange, fh: Option<FileHandle>) -> R<Stat> {
        let open = match fh {
            Some(fh) => Some(self.0.file(fh)?),
            None => None,
        };
        let mut state = self.0.state();
        if c.mode.is_some() || c.uid.is_some() || c.gid.is_some() {
            state.set_owner(ino, c.mode, c.uid, c.gid)?;
        }
        if let Some(size) = c.size {
            state.set_size(ino, open.as_ref().map(|o| &o.file), size)?;
        }
        if c.atime.is_some() || c.mtime.is_some() {
            sys::utimens(state.fd(ino)?, c.atime.map(timespec), c.mtime.map(timespec))
                .map_err(errno)?;
        }
        state.stat(ino)
    }

    fn readdir_snapshot(&self, ino: Ino) -> R<Vec<DirEntry>> {
        let state = self.0.state();
        let fd = state.fd(ino)?;
        let mut entries = vec![
            DirEntry {
                ino,
                kind: FileType::Directory,
                name: ".".into(),
            },
            DirEntry {
                ino,
                kind: FileType::Directory,
                name: "..".into(),
            },
        ];
        for e in std::fs::read_dir(sys::proc_path(fd)).map_err(errno)? {
            let e = e.map_err(errno)?;
            let name = e.file_name();
            if State::hidden(ino, &name) {
                continue;
            }
            let ft = e.file_type().map_err(errno)?;
            let kind = if ft.is_dir() {
                FileType::Directory
            } else if ft.is_symlink() {
                FileType::Symlink
            } else if ft.is_file() {
                FileType::RegularFile
            } else {
                FileType::NamedPipe
            };
            // The backing inode number: readdir's d_ino is informational
            // (the kernel never uses it to find the file).
            entries.push(DirEntry {
                ino: e.ino(),
                kind,
                name,
            });
        }
        Ok(entries)
    }
}

impl Filesystem for LazyFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        reply_entry(reply, self.0.state().lookup(parent.0, name));
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.0.state().forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.0.state().stat(ino.0) {
            Ok(st) => reply.attr(&TTL, &attr(ino.0, &st)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = AttrChange {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
        };
        match self.setattr_inner(ino.0, change, fh) {
            Ok(st) => reply.attr(&TTL, &attr(ino.0, &st)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let state = self.0.state();
        match state
            .fd(ino.0)
            .and_then(|fd| sys::readlink(fd).map_err(errno))
        {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let what = New::Node {
            mode: mode & !umask,
            rdev,
        };
        reply_entry(reply, self.0.state().make(parent.0, name, what, owner(req)));
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let what = New::Dir {
            mode: mode & !umask,
        };
        reply_entry(reply, self.0.state().make(parent.0, name, what, owner(req)));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.0.state().remove(parent.0, name, false));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.0.state().remove(parent.0, name, true));
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let what = New::Symlink { target };
        reply_entry(
            reply,
            self.0.state().make(parent.0, link_name, what, owner(req)),
        );
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let from = (parent.0, name.to_os_string());
        let to = (newparent.0, newname.to_os_string());
        reply_empty(reply, self.0.state().rename(from, to, flags.bits()));
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply_entry(reply, self.0.state().link(ino.0, newparent.0, newname));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let opened = self.0.state().open(ino.0, flags.0);
        match opened {
            Ok(file) => reply.opened(self.0.add_file(ino.0, file), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let open = match self.0.file(fh) {
            Ok(o) => o,
            Err(e) => return reply.error(e),
        };
        let mut buf = vec![0u8; size as usize];
        let mut done = 0;
        while done < buf.len() {
            match open.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return reply.error(errno(e)),
            }
        }
        reply.data(&buf[..done]);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let open = match self.0.file(fh) {
            Ok(o) => o,
            Err(e) => return reply.error(e),
        };
        let from_mmap = write_flags.contains(WriteFlags::FUSE_WRITE_CACHE);
        let written = self
            .0
            .state()
            .write(open.ino, &open.file, offset, data, from_mmap);
        match written {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let open = self.0.handles().files.remove(&fh.0);
        if let Some(open) = open {
            self.0.state().release(open.ino);
        }
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.0.sync(|s| s.sync_file(ino.0, datasync)));
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.readdir_snapshot(ino.0) {
            Ok(entries) => {
                let mut h = self.0.handles();
                h.next += 1;
                let fh = h.next;
                h.dirs.insert(fh, entries);
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let h = self.0.handles();
        let Some(entries) = h.dirs.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        for (i, e) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(e.ino), i as u64 + 1, e.kind, &e.name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.0.handles().dirs.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.0.sync(|s| s.sync_dir(ino.0, datasync)));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let st = {
            let state = self.0.state();
            state
                .fd(ROOT)
                .and_then(|fd| sys::fstatvfs(fd).map_err(errno))
        };
        match st {
            Ok(s) => reply.statfs(
                s.f_blocks,
                s.f_bfree,
                s.f_bavail,
                s.f_files,
                s.f_ffree,
                s.f_bsize as u32,
                s.f_namemax as u32,
                s.f_frsize as u32,
            ),
            Err(e) => reply.error(e),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        // The kernel checks permissions itself (default_permissions).
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let created = {
            let mut state = self.0.state();
            state.create(parent.0, name, mode & !umask, flags, owner(req))
        };
        match created {
            Ok((ino, st, file)) => {
                let fh = self.0.add_file(ino, file);
                reply.created(
                    &TTL,
                    &attr(ino, &st),
                    Generation(0),
                    fh,
                    FopenFlags::empty(),
                );
            }
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let open = match self.0.file(fh) {
            Ok(o) => o,
            Err(e) => return reply.error(e),
        };
        let done = self
            .0
            .state()
            .fallocate(open.ino, &open.file, offset, length, mode);
        reply_empty(reply, done);
    }
}
