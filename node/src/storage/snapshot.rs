//! The snapshot file, `DIR/snapshot`: where the log starts over (§7).
//!
//! ```text
//! file = magic "RAFT-SNP" (8) | version u32 (4)
//!      | index u64 | term u64 | configuration len u32 | configuration
//!      | image_len u64 | image | crc32 of everything before it (4)
//! ```
//!
//! Little-endian. The configuration is the one in force at `index`
//! ([`Membership::encode`]). Version 1 (before membership changes) had
//! `members u32 | members × (len u16 | utf-8)` in its place, all voters;
//! it is still read. The image is the state machine's (`kv::snapshot`); this
//! layer only frames and checksums it. The same bytes travel to a follower
//! in InstallSnapshot chunks, so what a follower installs is checked exactly
//! as what a node reads back from its own disk.
//!
//! [`SnapshotStore::save`] writes `snapshot.tmp`, fsyncs it, renames it over
//! `snapshot` and fsyncs the directory. The rename is the commit point: a
//! crash before it leaves the old file (and a temporary file that
//! [`SnapshotStore::open`] removes), a crash after it the new one. The slow
//! half, [`prepare`] (write and fsync the temporary file), may run on
//! another thread; [`SnapshotStore::commit`] then does the rename.

use std::fs::{self, File};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use raft::{LogIndex, Membership, NodeId, SnapshotMeta, Term};

use super::StorageError;
use crate::reader::{ReadError, Reader};

/// The snapshot's file name inside the data directory.
pub const SNAPSHOT_FILE_NAME: &str = "snapshot";
/// Where a new snapshot is written before it is renamed into place.
const TMP_FILE_NAME: &str = "snapshot.tmp";

const MAGIC: [u8; 8] = *b"RAFT-SNP";
/// Bumped on any incompatible change of the file layout.
pub const FILE_VERSION: u32 = 2;
/// The layout before configurations: still read.
const FILE_VERSION_1: u32 = 1;
/// The smallest file: magic, version, index, term, member count (or
/// configuration length), image length and checksum, with no members and
/// an empty image.
const MIN_LEN: usize = 8 + 4 + 8 + 8 + 4 + 8 + 4;

/// A snapshot as stored and as sent: its position and the state machine
/// image, inside the checksummed file bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Where the log starts over.
    pub meta: SnapshotMeta,
    file: Bytes,
    image: Range<usize>,
}

impl Snapshot {
    /// Frames and checksums `image` as the snapshot at `meta`.
    pub fn new(meta: SnapshotMeta, image: &[u8]) -> Snapshot {
        let mut file = Vec::with_capacity(MIN_LEN + 64 + image.len());
        file.extend_from_slice(&MAGIC);
        file.extend_from_slice(&FILE_VERSION.to_le_bytes());
        file.extend_from_slice(&meta.index.0.to_le_bytes());
        file.extend_from_slice(&meta.term.0.to_le_bytes());
        let config = meta.membership.encode();
        file.extend_from_slice(&(config.len() as u32).to_le_bytes());
        file.extend_from_slice(&config);
        file.extend_from_slice(&(image.len() as u64).to_le_bytes());
        let start = file.len();
        file.extend_from_slice(image);
        let crc = crc32fast::hash(&file);
        file.extend_from_slice(&crc.to_le_bytes());
        Snapshot {
            meta,
            image: start..start + image.len(),
            file: Bytes::from(file),
        }
    }

    /// Checks and reads a whole file (from disk or from a leader). The
    /// image is a view into `file`, not a copy.
    pub fn decode(file: Bytes) -> Result<Snapshot, String> {
        if file.len() < 12 || file[..8] != MAGIC {
            return Err("not a snapshot file (bad magic number)".into());
        }
        if file.len() < MIN_LEN {
            return Err(format!("{} bytes, shorter than any snapshot", file.len()));
        }
        let body = file.len() - 4;
        let crc = u32::from_le_bytes(file[body..].try_into().unwrap());
        if crc != crc32fast::hash(&file[..body]) {
            return Err("checksum mismatch".into());
        }
        let mut r = Reader::new(&file[..body]);
        let (index, term, membership) = read_header(&mut r).map_err(|e| e.to_string())?;
        let image = r.offset()..body;
        Ok(Snapshot {
            meta: SnapshotMeta {
                index,
                term,
                membership,
            },
            file,
            image,
        })
    }

    /// The whole file, as written to disk and streamed to followers.
    pub fn file(&self) -> &Bytes {
        &self.file
    }

    /// The state machine image.
    pub fn image(&self) -> &[u8] {
        &self.file[self.image.clone()]
    }
}

/// The fields before the image; leaves `r` at the image.
fn read_header(r: &mut Reader) -> Result<(LogIndex, Term, Membership), ReadError> {
    r.take(MAGIC.len())?;
    let version = r.u32()?;
    if version != FILE_VERSION && version != FILE_VERSION_1 {
        return Err(r.error(format!(
            "format version {version}, this build reads versions {FILE_VERSION_1} and {FILE_VERSION}"
        )));
    }
    let index = LogIndex(r.u64()?);
    let term = Term(r.u64()?);
    let membership = if version == FILE_VERSION_1 {
        Membership::voters(r.str_u16_list()?.into_iter().map(NodeId::new))
    } else {
        let bytes = r.bytes_u32()?;
        Membership::decode(bytes).map_err(|e| r.error(format!("configuration: {e}")))?
    };
    let len = r.u64()?;
    if len != r.remaining() as u64 {
        return Err(r.error(format!(
            "image length {len} does not match the {} bytes left",
            r.remaining()
        )));
    }
    Ok((index, term, membership))
}

/// The snapshot file of one data directory.
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    path: PathBuf,
    current: Option<SnapshotMeta>,
    fsyncs: u64,
}

impl SnapshotStore {
    /// Removes a temporary file a crash left behind and reads the current
    /// snapshot, if there is one. A damaged snapshot file is an error: it
    /// was fsynced before it was renamed into place, so a crash cannot
    /// explain it, and the log before it is gone.
    pub fn open(dir: &Path) -> Result<(SnapshotStore, Option<Snapshot>), StorageError> {
        let tmp = dir.join(TMP_FILE_NAME);
        if let Err(e) = fs::remove_file(&tmp)
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err(StorageError::io(tmp, "remove", e));
        }
        let path = dir.join(SNAPSHOT_FILE_NAME);
        let snapshot = read(&path)?;
        let store = SnapshotStore {
            dir: dir.to_path_buf(),
            path,
            current: snapshot.as_ref().map(|s| s.meta.clone()),
            fsyncs: 0,
        };
        Ok((store, snapshot))
    }

    /// Makes `snapshot` the current one, durably: [`prepare`], then
    /// [`SnapshotStore::commit`].
    pub fn save(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let prepared = prepare(&self.dir, snapshot)?;
        self.commit(prepared)
    }

    /// Renames a prepared snapshot over the current one and fsyncs the
    /// directory. On error the old snapshot may or may not have been
    /// replaced, so the caller must stop and recover from disk.
    pub fn commit(&mut self, prepared: Prepared) -> Result<(), StorageError> {
        fs::rename(&prepared.tmp, &self.path).map_err(|e| {
            let _ = fs::remove_file(&prepared.tmp);
            StorageError::io(&self.path, "rename the new snapshot over", e)
        })?;
        self.fsyncs += 2;
        super::fsync_dir(&self.dir)
            .map_err(|e| StorageError::io(&self.dir, "fsync directory", e))?;
        self.current = Some(prepared.meta);
        Ok(())
    }

    /// The directory, for [`prepare`] on another thread.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The position of the current snapshot, if any.
    pub fn current(&self) -> Option<&SnapshotMeta> {
        self.current.as_ref()
    }

    /// The snapshot file (`DIR/snapshot`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fsyncs of the file and the directory since opening, for tests.
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs
    }
}

/// A snapshot written to its temporary file and fsynced, not yet current.
#[derive(Debug)]
pub struct Prepared {
    meta: SnapshotMeta,
    tmp: PathBuf,
}

impl Prepared {
    /// The snapshot's position.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }
}

/// The slow half of saving a snapshot in `dir`: writes the temporary file
/// and fsyncs it. Only one may be under way per directory at a time.
pub fn prepare(dir: &Path, snapshot: &Snapshot) -> Result<Prepared, StorageError> {
    let tmp = dir.join(TMP_FILE_NAME);
    let written = (|| {
        let mut f = File::create(&tmp).map_err(|e| StorageError::io(&tmp, "create", e))?;
        f.write_all(snapshot.file())
            .map_err(|e| StorageError::io(&tmp, "write to", e))?;
        f.sync_all().map_err(|e| StorageError::io(&tmp, "fsync", e))
    })();
    match written {
        Ok(()) => Ok(Prepared {
            meta: snapshot.meta.clone(),
            tmp,
        }),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Reads and checks the snapshot file at `path`; `None` if there is none.
/// Peer links use it to stream the current snapshot.
pub fn read(path: &Path) -> Result<Option<Snapshot>, StorageError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(path, "read", e)),
    };
    Snapshot::decode(Bytes::from(bytes))
        .map(Some)
        .map_err(|reason| StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(index: u64, term: u64) -> SnapshotMeta {
        SnapshotMeta {
            index: LogIndex(index),
            term: Term(term),
            membership: Membership::voters(["n1", "n2"].map(NodeId::new)),
        }
    }

    #[test]
    fn a_version_1_file_is_read_with_its_members_as_voters() {
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&FILE_VERSION_1.to_le_bytes());
        file.extend_from_slice(&7u64.to_le_bytes());
        file.extend_from_slice(&2u64.to_le_bytes());
        file.extend_from_slice(&2u32.to_le_bytes());
        for id in ["n1", "n2"] {
            file.extend_from_slice(&2u16.to_le_bytes());
            file.extend_from_slice(id.as_bytes());
        }
        file.extend_from_slice(&3u64.to_le_bytes());
        file.extend_from_slice(b"img");
        let crc = crc32fast::hash(&file);
        file.extend_from_slice(&crc.to_le_bytes());
        let s = Snapshot::decode(Bytes::from(file)).unwrap();
        assert_eq!(s.meta, meta(7, 2));
        assert_eq!(s.image(), b"img");
    }

    #[test]
    fn file_round_trips_and_the_image_is_a_view() {
        let s = Snapshot::new(meta(7, 2), b"the image");
        let back = Snapshot::decode(s.file().clone()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.image(), b"the image");
        assert_eq!(back.meta, meta(7, 2));
        let empty = Snapshot::new(SnapshotMeta::default(), b"");
        assert_eq!(Snapshot::decode(empty.file().clone()).unwrap(), empty);
    }

    #[test]
    fn any_damage_or_cut_is_refused() {
        let file = Snapshot::new(meta(7, 2), b"image bytes").file().clone();
        for cut in 0..file.len() {
            assert!(Snapshot::decode(file.slice(..cut)).is_err(), "cut at {cut}");
        }
        for at in 0..file.len() {
            let mut bad = file.to_vec();
            bad[at] ^= 0x10;
            assert!(Snapshot::decode(Bytes::from(bad)).is_err(), "flip at {at}");
        }
    }

    #[test]
    fn save_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, none) = SnapshotStore::open(dir.path()).unwrap();
        assert_eq!(none, None);
        let a = Snapshot::new(meta(5, 1), b"a");
        let b = Snapshot::new(meta(9, 2), b"b");
        store.save(&a).unwrap();
        store.save(&b).unwrap();
        assert_eq!(store.current(), Some(&meta(9, 2)));
        assert_eq!(store.fsync_count(), 4);
        let (_, got) = SnapshotStore::open(dir.path()).unwrap();
        assert_eq!(got, Some(b));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [SNAPSHOT_FILE_NAME]);
    }

    #[test]
    fn a_damaged_snapshot_file_stops_the_node_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = SnapshotStore::open(dir.path()).unwrap();
        store.save(&Snapshot::new(meta(5, 1), b"abc")).unwrap();
        let path = dir.path().join(SNAPSHOT_FILE_NAME);
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 6] ^= 1;
        fs::write(&path, bytes).unwrap();
        let err = SnapshotStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}
