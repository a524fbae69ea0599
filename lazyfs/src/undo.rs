//! [`DataLog`]: what a file's content and size were before each change that
//! is not yet durable, so a power-off can put them back.
//!
//! The backing file always holds the live content (reads are plain reads).
//! Each change records the bytes it overwrote, and only those: an append
//! needs nothing but the old size, and bytes that were zeros (a region
//! preallocated with `fallocate`) are remembered as a length. Making the file
//! durable (`fsync`/`fdatasync`) forgets the log, so memory follows what is
//! written between two syncs, never the file's size.
//!
//! Old content of a megabyte or more goes to an unnamed temporary file in
//! the shadow directory instead of memory (truncating a large file keeps
//! it out of the heap).
//!
//! Undoing the changes newest first restores the file as it was at the last
//! sync; undoing only the changes after a cut keeps a prefix of them (a torn
//! power-off). Changes marked `at_once` (truncates under the durable metadata
//! model) are applied again after the undo, in their order.

use std::fs::File;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;

use crate::sys;
use splitmix::Rng;

/// The granularity a torn write is cut at: a disk sector.
pub(crate) const SECTOR: u64 = 512;

/// Old content at least this long is kept in a file, not in memory.
const SPILL_AT: u64 = 1 << 20;

static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// The old content of a changed range.
#[derive(Debug)]
enum Saved {
    /// The range lay beyond the old end of the file.
    Nothing,
    /// It held only zeros.
    Zeros,
    Bytes(Vec<u8>),
    /// In an unnamed temporary file, from its start.
    Spilled(File),
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Kind {
    Write,
    /// A size change (truncate, fallocate) or a zeroed range.
    Other {
        at_once: bool,
    },
}

/// One change: the range `[offset, offset + len)` may have changed and the
/// size went from `old_size` to `new_size`. `saved` holds the old bytes of
/// `[offset, min(offset + len, old_size))`.
#[derive(Debug)]
struct Change {
    kind: Kind,
    offset: u64,
    len: u64,
    old_size: u64,
    new_size: u64,
    saved: Saved,
}

/// What an undo threw away.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Undone {
    pub changes: u64,
    pub bytes: u64,
}

/// How much of the log survives a power-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Nothing: the file is back at its last sync.
    All,
    /// The first `changes` changes, then `bytes` bytes of the next one (a
    /// write), whole sectors of the file only.
    Prefix { changes: usize, bytes: u64 },
}

/// The changes to one file since it was last made durable.
#[derive(Debug, Default)]
pub(crate) struct DataLog {
    changes: Vec<Change>,
    memory: u64,
}

impl DataLog {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Bytes of old content held in memory.
    pub fn memory(&self) -> u64 {
        self.memory
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Call before writing `len` bytes at `offset` into `file` (open for
    /// reading) whose size is `size`. `spill` is the directory for old
    /// content too large for memory.
    pub fn before_write(
        &mut self,
        file: &File,
        spill: BorrowedFd<'_>,
        offset: u64,
        len: u64,
        size: u64,
    ) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        if let Some(last) = self.changes.last_mut()
            && last.kind == Kind::Write
            && matches!(last.saved, Saved::Nothing)
            && last.offset + last.len == offset
            && last.new_size == offset
            && size == offset
        {
            // An append right after an append: one change, so a log of
            // small appends stays small. A torn cut can still fall inside.
            last.len += len;
            last.new_size = offset + len;
            return Ok(());
        }
        let new_size = size.max(offset + len);
        self.push(file, spill, Kind::Write, offset, len, size, new_size)
    }

    /// Call before the size of `file` goes from `old_size` to `new_size`.
    pub fn before_resize(
        &mut self,
        file: &File,
        spill: BorrowedFd<'_>,
        old_size: u64,
        new_size: u64,
        at_once: bool,
    ) -> io::Result<()> {
        if old_size == new_size {
            return Ok(());
        }
        let (offset, len) = if new_size < old_size {
            (new_size, old_size - new_size)
        } else {
            (old_size, new_size - old_size)
        };
        self.push(
            file,
            spill,
            Kind::Other { at_once },
            offset,
            len,
            old_size,
            new_size,
        )
    }

    /// Call before `[offset, offset + len)` of `file` is zeroed (punched or
    /// zero-ranged), the size going from `old_size` to `new_size`.
    pub fn before_zero(
        &mut self,
        file: &File,
        spill: BorrowedFd<'_>,
        offset: u64,
        len: u64,
        old_size: u64,
        new_size: u64,
    ) -> io::Result<()> {
        self.push(
            file,
            spill,
            Kind::Other { at_once: false },
            offset,
            len,
            old_size,
            new_size,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        file: &File,
        spill: BorrowedFd<'_>,
        kind: Kind,
        offset: u64,
        len: u64,
        old_size: u64,
        new_size: u64,
    ) -> io::Result<()> {
        let end = (offset + len).min(old_size);
        let saved = if offset >= end {
            Saved::Nothing
        } else if end - offset >= SPILL_AT {
            let tmp = sys::openat(
                spill,
                std::ffi::OsStr::new("."),
                libc::O_TMPFILE | libc::O_RDWR,
                0o600,
            )?;
            let tmp = File::from(tmp);
            sys::copy_range(file, offset, &tmp, 0, end - offset)?;
            Saved::Spilled(tmp)
        } else {
            let mut buf = vec![0u8; (end - offset) as usize];
            read_full(file, &mut buf, offset)?;
            if buf.iter().all(|&b| b == 0) {
                Saved::Zeros
            } else {
                self.memory += buf.len() as u64;
                Saved::Bytes(buf)
            }
        };
        self.changes.push(Change {
            kind,
            offset,
            len,
            old_size,
            new_size,
            saved,
        });
        Ok(())
    }

    /// The file is durable as it is: forget the log.
    pub fn clear(&mut self) {
        self.changes = Vec::new();
        self.memory = 0;
    }

    /// A random cut: keeps a uniformly chosen number of whole changes and,
    /// when the next one is a write, a random number of its sectors.
    pub fn random_cut(&self, rng: &mut Rng) -> Cut {
        let n = self.changes.len();
        let changes = rng.below(n as u64 + 1) as usize;
        let bytes = match self.changes.get(changes) {
            Some(c) if c.kind == Kind::Write => {
                let cut = c.offset + rng.below(c.len);
                (cut / SECTOR * SECTOR).saturating_sub(c.offset)
            }
            _ => 0,
        };
        Cut::Prefix { changes, bytes }
    }

    /// Puts `file` (open for writing) back as `cut` says and empties the log.
    pub fn undo(&mut self, file: &File, cut: Cut) -> io::Result<Undone> {
        let (keep, partial) = match cut {
            Cut::All => (0, 0),
            Cut::Prefix { changes, bytes } => (changes.min(self.changes.len()), bytes),
        };
        let mut undone = Undone::default();
        for (i, c) in self.changes.iter().enumerate().skip(keep).rev() {
            let kept = if i == keep && c.kind == Kind::Write {
                partial.min(c.len)
            } else {
                0
            };
            undo_one(file, c, kept)?;
            undone.changes += 1;
            if c.kind == Kind::Write {
                undone.bytes += c.len - kept;
            }
        }
        for c in &self.changes[keep..] {
            if c.kind == (Kind::Other { at_once: true }) {
                file.set_len(c.new_size)?;
            }
        }
        self.clear();
        Ok(undone)
    }

    /// Forgets the log without touching the file (it is being deleted).
    pub fn discard(&mut self) -> Undone {
        let undone = Undone {
            changes: self.changes.len() as u64,
            bytes: self
                .changes
                .iter()
                .filter(|c| c.kind == Kind::Write)
                .map(|c| c.len)
                .sum(),
        };
        self.clear();
        undone
    }
}

/// Undoes `c`, keeping its first `kept` bytes (only ever non-zero for a write).
fn undo_one(file: &File, c: &Change, kept: u64) -> io::Result<()> {
    if c.new_size < c.old_size {
        file.set_len(c.old_size)?;
    }
    let from = c.offset + kept;
    let saved_end = (c.offset + c.len).min(c.old_size);
    if from < saved_end {
        let skip = (from - c.offset) as usize;
        match &c.saved {
            Saved::Nothing => {}
            Saved::Zeros => write_zeros(file, from, saved_end - from)?,
            Saved::Bytes(b) => file.write_all_at(&b[skip..], from)?,
            Saved::Spilled(tmp) => sys::copy_range(tmp, skip as u64, file, from, saved_end - from)?,
        }
    }
    let size = c.old_size.max(if kept > 0 { from } else { 0 });
    if size < c.new_size {
        file.set_len(size)?;
    }
    Ok(())
}

fn write_zeros(file: &File, mut offset: u64, mut len: u64) -> io::Result<()> {
    // Zeroing a range keeps it allocated, as the preallocated region was.
    if sys::fallocate(file, libc::FALLOC_FL_ZERO_RANGE, offset, len).is_ok() {
        return Ok(());
    }
    while len > 0 {
        let n = len.min(ZEROS.len() as u64);
        file.write_all_at(&ZEROS[..n as usize], offset)?;
        offset += n;
        len -= n;
    }
    Ok(())
}

/// Reads `buf.len()` bytes at `offset`; a hole past the end reads as zeros.
fn read_full(file: &File, buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset) {
            Ok(0) => break,
            Ok(n) => {
                done += n;
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf[done..].fill(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    struct Subject {
        file: File,
        log: DataLog,
        dir: File,
        _tmp: tempfile::TempDir,
    }

    impl Subject {
        fn new(initial: &[u8]) -> Subject {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f");
            std::fs::write(&path, initial).unwrap();
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            Subject {
                file,
                log: DataLog::default(),
                dir: File::open(dir.path()).unwrap(),
                _tmp: dir,
            }
        }
        fn size(&self) -> u64 {
            self.file.metadata().unwrap().len()
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            let size = self.size();
            self.log
                .before_write(
                    &self.file,
                    self.dir.as_fd(),
                    offset,
                    data.len() as u64,
                    size,
                )
                .unwrap();
            self.file.write_all_at(data, offset).unwrap();
        }
        fn truncate(&mut self, to: u64, at_once: bool) {
            let size = self.size();
            self.log
                .before_resize(&self.file, self.dir.as_fd(), size, to, at_once)
                .unwrap();
            self.file.set_len(to).unwrap();
        }
        fn content(&self) -> Vec<u8> {
            let mut buf = vec![0; self.size() as usize];
            self.file.read_exact_at(&mut buf, 0).unwrap();
            buf
        }
    }

    #[test]
    fn undo_all_restores_overwrites_appends_and_truncates() {
        let mut s = Subject::new(b"hello world");
        s.write(0, b"HELLO");
        s.write(11, b"!!!");
        s.truncate(4, false);
        s.write(20, b"far");
        s.truncate(30, false);
        let undone = s.log.undo(&s.file, Cut::All).unwrap();
        assert_eq!(s.content(), b"hello world");
        assert_eq!(undone.bytes, 5 + 3 + 3);
        assert_eq!(undone.changes, 5);
        assert!(s.log.is_empty());
    }

    #[test]
    fn appends_merge_and_keep_no_bytes_in_memory() {
        let mut s = Subject::new(b"");
        for i in 0..100u8 {
            s.write(u64::from(i) * 10, &[i; 10]);
        }
        assert_eq!(s.log.len(), 1);
        assert_eq!(s.log.memory(), 0);
        s.log.undo(&s.file, Cut::All).unwrap();
        assert_eq!(s.size(), 0);
    }

    #[test]
    fn zeros_are_remembered_as_a_length() {
        let mut s = Subject::new(&[0u8; 8192]);
        s.write(100, &[7u8; 4000]);
        assert_eq!(s.log.memory(), 0);
        s.write(50, &[9u8; 100]);
        assert_eq!(s.log.memory(), 100, "the second write overwrote sevens");
        s.log.undo(&s.file, Cut::All).unwrap();
        assert_eq!(s.content(), vec![0u8; 8192]);
    }

    #[test]
    fn a_prefix_cut_keeps_whole_changes_then_sectors_of_the_next() {
        let mut s = Subject::new(b"");
        s.write(0, &[1u8; 1000]);
        s.write(0, &[2u8; 100]); // an overwrite: a change of its own
        s.write(1000, &[3u8; 2000]);
        assert_eq!(s.log.len(), 3);
        let undone = s
            .log
            .undo(
                &s.file,
                Cut::Prefix {
                    changes: 2,
                    bytes: 24, // up to the sector boundary at 1024
                },
            )
            .unwrap();
        let mut want = vec![2u8; 100];
        want.extend([1u8; 900]);
        want.extend([3u8; 24]);
        assert_eq!(s.content(), want);
        assert_eq!(undone.bytes, 2000 - 24);
    }

    #[test]
    fn at_once_truncates_survive_the_undo() {
        let mut s = Subject::new(b"0123456789");
        s.write(0, b"abc");
        s.truncate(5, true);
        s.write(5, b"xyz");
        s.log.undo(&s.file, Cut::All).unwrap();
        assert_eq!(s.content(), b"01234");
    }

    #[test]
    fn large_old_content_goes_to_a_file_not_memory() {
        let big: Vec<u8> = (0..3 << 20).map(|i| (i % 253) as u8).collect();
        let mut s = Subject::new(&big);
        s.truncate(100, false);
        assert_eq!(s.log.memory(), 0, "3 MiB cut off, kept in a file");
        s.write(50, &vec![1u8; 2 << 20]);
        assert_eq!(s.log.memory(), 50, "50 bytes overwritten, kept in memory");
        s.log.undo(&s.file, Cut::All).unwrap();
        assert_eq!(s.content(), big);
    }

    #[test]
    fn random_cuts_land_on_sector_boundaries_inside_a_write() {
        let mut s = Subject::new(b"");
        s.write(0, &[1u8; 10_000]);
        let mut rng = Rng::new(7);
        for _ in 0..100 {
            match s.log.random_cut(&mut rng) {
                Cut::Prefix { changes: 0, bytes } => {
                    assert_eq!(bytes % SECTOR, 0);
                    assert!(bytes < 10_000);
                }
                Cut::Prefix { changes: 1, bytes } => assert_eq!(bytes, 0),
                other => panic!("{other:?}"),
            }
        }
    }
}
