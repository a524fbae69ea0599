//! The on-disk format of `raft.wal`, and nothing else: no files, no state.
//!
//! ```text
//! file    = header record*
//! header  = magic "RAFT-WAL" (8) | version u32 (4) | crc32(magic, version) (4)
//! record  = len u32 (4) | len_check u32 (4) | crc32(payload) (4) | payload (len)
//! payload = kind u8 | body
//! ```
//!
//! All integers are little-endian. `len_check` is a checksum of the length
//! field alone, so a damaged length is recognised as damage instead of being
//! followed to a wrong place (or past the end of the file, which would look
//! like a torn write and silently drop every record after it).
//!
//! | kind | record     | body                                                      |
//! | ---- | ---------- | --------------------------------------------------------- |
//! | 1    | hard state | term u64, has_vote u8, [vote: len u16, utf-8 bytes]       |
//! | 2    | entry      | index u64, term u64, entry kind u8 (1 normal, 2 noop, 3 configuration), data |
//! | 3    | truncate   | from index u64: drop entries at `from` and after           |
//! | 4    | snapshot   | index u64, term u64, configuration len u32 + bytes ([`Membership::encode`]) |
//!
//! Version 1 (before membership changes) had no configuration entries and
//! listed a snapshot's members as `count u32, count × (len u16, utf-8)`,
//! all voters. It is still read; [`super::Wal::open`] rewrites such a file
//! as version 2 before appending to it.
//!
//! The data of a configuration entry is checked when read: a record whose
//! configuration does not decode is corruption.

use bytes::Bytes;

use raft::{Entry, EntryKind, HardState, LogIndex, Membership, NodeId, SnapshotMeta, Term};

use crate::reader::{ReadError, Reader};

const MAGIC: [u8; 8] = *b"RAFT-WAL";
/// Bumped on any incompatible change of the format below.
pub(crate) const VERSION: u32 = 2;
/// The version before configurations: still read.
pub(crate) const VERSION_1: u32 = 1;
pub(crate) const FILE_HEADER_LEN: usize = 16;

/// Bytes of framing before each payload.
pub(crate) const RECORD_HEADER_LEN: usize = 12;
/// Larger payloads are refused when written and reported as a bad length when
/// read. A client command is far smaller; the bound only catches nonsense.
pub(crate) const MAX_PAYLOAD: usize = 256 << 20;
/// Mixed into the length check so that neither an all-zero nor an all-0xFF
/// header passes it (crc32 of four 0xFF bytes is 0xFFFFFFFF).
const LEN_CHECK_SALT: u32 = 0x5741_4C31;

const KIND_HARD_STATE: u8 = 1;
const KIND_ENTRY: u8 = 2;
const KIND_TRUNCATE: u8 = 3;
const KIND_SNAPSHOT: u8 = 4;

const ENTRY_NORMAL: u8 = 1;
const ENTRY_NOOP: u8 = 2;
const ENTRY_CONFIG: u8 = 3;

/// The header every WAL file starts with.
pub(crate) fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32fast::hash(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Why a file header is not acceptable.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Not a WAL at all, or of an unknown version: refuse, do not touch.
    NotAWal(String),
    /// The right magic but a bad checksum: a damaged WAL.
    Corrupt(String),
}

/// Checks the header; returns the file's format version (1 or 2).
pub(crate) fn check_file_header(bytes: &[u8]) -> Result<u32, HeaderError> {
    if bytes.len() < FILE_HEADER_LEN {
        return Err(HeaderError::NotAWal(format!(
            "the file is {} bytes long, shorter than the {FILE_HEADER_LEN}-byte header",
            bytes.len()
        )));
    }
    if bytes[..8] != MAGIC {
        return Err(HeaderError::NotAWal("bad magic number".into()));
    }
    // Checksum before version, so a damaged version field reads as damage.
    let crc = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
    if crc != crc32fast::hash(&bytes[..12]) {
        return Err(HeaderError::Corrupt("file header checksum mismatch".into()));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    if version != VERSION && version != VERSION_1 {
        return Err(HeaderError::NotAWal(format!(
            "format version {version}, this build reads versions {VERSION_1} and {VERSION}"
        )));
    }
    Ok(version)
}

fn len_check(len: u32) -> u32 {
    crc32fast::hash(&len.to_le_bytes()) ^ LEN_CHECK_SALT
}

/// What the bytes at some offset of the file turn out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A complete record whose checksums match; `size` counts the framing.
    Record { payload: &'a [u8], size: usize },
    /// From here to the end of the file is what a crash in the middle of an
    /// append leaves behind: a prefix of a record, or zeros. Safe to cut,
    /// because the append it belongs to never returned.
    Torn(&'static str),
    /// Damage a crash mid-write cannot explain.
    Corrupt(String),
}

/// Classifies the bytes from a record boundary to the end of the file
/// (`rest` is not empty).
///
/// A torn tail is exactly what could be a prefix of a valid record, or all
/// zeros (blocks whose size was extended but whose data never reached the
/// disk). Anything that is provably not such a prefix is corruption.
pub(crate) fn next_frame(rest: &[u8]) -> Frame<'_> {
    // Cheap on good files: a valid record has a nonzero byte in its length.
    if rest.iter().all(|&b| b == 0) {
        return Frame::Torn("zero-filled tail");
    }
    if rest.len() < 8 {
        return Frame::Torn("record header cut short");
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().unwrap());
    let check = u32::from_le_bytes(rest[4..8].try_into().unwrap());
    if check != len_check(len) {
        return Frame::Corrupt("record length check mismatch (damaged length field)".into());
    }
    let len = len as usize;
    if len == 0 || len > MAX_PAYLOAD {
        return Frame::Corrupt(format!("impossible record length {len}"));
    }
    if rest.len() < RECORD_HEADER_LEN {
        return Frame::Torn("record header cut short");
    }
    let size = RECORD_HEADER_LEN + len;
    if rest.len() < size {
        return Frame::Torn("record payload extends past end of file");
    }
    let crc = u32::from_le_bytes(rest[8..12].try_into().unwrap());
    let payload = &rest[RECORD_HEADER_LEN..size];
    if crc != crc32fast::hash(payload) {
        return Frame::Corrupt("payload checksum mismatch".into());
    }
    Frame::Record { payload, size }
}

/// One decoded payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    HardState(HardState),
    Entry(Entry),
    Truncate(LogIndex),
    Snapshot(SnapshotMeta),
}

pub(crate) fn encode_hard_state(buf: &mut Vec<u8>, hs: &HardState) -> Result<(), String> {
    let start = begin(buf, KIND_HARD_STATE);
    buf.extend_from_slice(&hs.term.0.to_le_bytes());
    match &hs.voted_for {
        None => buf.push(0),
        Some(id) => {
            buf.push(1);
            if let Err(e) = put_node_id(buf, id) {
                buf.truncate(start);
                return Err(e);
            }
        }
    }
    finish(buf, start)
}

pub(crate) fn encode_entry(buf: &mut Vec<u8>, e: &Entry) -> Result<(), String> {
    let start = begin(buf, KIND_ENTRY);
    buf.extend_from_slice(&e.index.0.to_le_bytes());
    buf.extend_from_slice(&e.term.0.to_le_bytes());
    buf.push(match e.kind {
        EntryKind::Normal => ENTRY_NORMAL,
        EntryKind::Noop => ENTRY_NOOP,
        EntryKind::Config => ENTRY_CONFIG,
    });
    buf.extend_from_slice(&e.data);
    finish(buf, start)
}

pub(crate) fn encode_truncate(buf: &mut Vec<u8>, from: LogIndex) {
    let start = begin(buf, KIND_TRUNCATE);
    buf.extend_from_slice(&from.0.to_le_bytes());
    finish(buf, start).expect("a truncate record is 9 bytes");
}

pub(crate) fn encode_snapshot(buf: &mut Vec<u8>, s: &SnapshotMeta) -> Result<(), String> {
    let start = begin(buf, KIND_SNAPSHOT);
    buf.extend_from_slice(&s.index.0.to_le_bytes());
    buf.extend_from_slice(&s.term.0.to_le_bytes());
    let config = s.membership.encode();
    buf.extend_from_slice(&(config.len() as u32).to_le_bytes());
    buf.extend_from_slice(&config);
    finish(buf, start)
}

/// Reserves the framing and writes the kind; returns where the record starts.
fn begin(buf: &mut Vec<u8>, kind: u8) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; RECORD_HEADER_LEN]);
    buf.push(kind);
    start
}

/// Fills in the framing of the record that starts at `start`.
fn finish(buf: &mut Vec<u8>, start: usize) -> Result<(), String> {
    let payload_start = start + RECORD_HEADER_LEN;
    let len = buf.len() - payload_start;
    if len > MAX_PAYLOAD {
        buf.truncate(start);
        return Err(format!(
            "a record of {len} bytes is larger than the limit of {MAX_PAYLOAD}"
        ));
    }
    let len = len as u32;
    let crc = crc32fast::hash(&buf[payload_start..]);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&len_check(len).to_le_bytes());
    buf[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Frames an arbitrary payload: a well-framed record with any contents,
/// for tests of what replay does with impossible records.
#[cfg(test)]
pub(crate) fn encode_raw(buf: &mut Vec<u8>, payload: &[u8]) {
    let start = buf.len();
    buf.extend_from_slice(&[0; RECORD_HEADER_LEN]);
    buf.extend_from_slice(payload);
    finish(buf, start).unwrap();
}

fn put_node_id(buf: &mut Vec<u8>, id: &NodeId) -> Result<(), String> {
    let len = u16::try_from(id.0.len()).map_err(|_| format!("node id of {} bytes", id.0.len()))?;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(id.0.as_bytes());
    Ok(())
}

/// Decodes a payload whose checksum matched, written in format `version`.
/// An error here means the writer and reader disagree about the format, or
/// a bug wrote nonsense: corruption.
pub(crate) fn decode(payload: &[u8], version: u32) -> Result<Record, String> {
    decode_fields(payload, version).map_err(|e| format!("payload: {e}"))
}

fn decode_fields(payload: &[u8], version: u32) -> Result<Record, ReadError> {
    let mut r = Reader::new(payload);
    let record = match r.u8()? {
        KIND_HARD_STATE => {
            let term = Term(r.u64()?);
            let voted_for = match r.u8()? {
                0 => None,
                1 => Some(NodeId::new(r.str_u16()?)),
                other => return Err(r.error(format!("bad vote flag {other}"))),
            };
            Record::HardState(HardState { term, voted_for })
        }
        KIND_ENTRY => {
            let index = LogIndex(r.u64()?);
            let term = Term(r.u64()?);
            let kind = match r.u8()? {
                ENTRY_NORMAL => EntryKind::Normal,
                ENTRY_NOOP => EntryKind::Noop,
                ENTRY_CONFIG if version != VERSION_1 => EntryKind::Config,
                other => return Err(r.error(format!("unknown entry kind {other}"))),
            };
            let data = Bytes::copy_from_slice(r.rest());
            if kind == EntryKind::Config {
                Membership::decode(&data)
                    .map_err(|e| r.error(format!("configuration at index {index}: {e}")))?;
            }
            Record::Entry(Entry {
                index,
                term,
                kind,
                data,
            })
        }
        KIND_TRUNCATE => Record::Truncate(LogIndex(r.u64()?)),
        KIND_SNAPSHOT => {
            let index = LogIndex(r.u64()?);
            let term = Term(r.u64()?);
            let membership = if version == VERSION_1 {
                Membership::voters(r.str_u16_list()?.into_iter().map(NodeId::new))
            } else {
                let bytes = r.bytes_u32()?;
                Membership::decode(bytes).map_err(|e| r.error(format!("configuration: {e}")))?
            };
            Record::Snapshot(SnapshotMeta {
                index,
                term,
                membership,
            })
        }
        other => return Err(r.error(format!("unknown record kind {other}"))),
    };
    if r.remaining() > 0 {
        return Err(r.error(format!(
            "{} unexpected bytes after the record",
            r.remaining()
        )));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(encode: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(&mut buf);
        buf
    }

    fn round_trip(buf: &[u8]) -> Record {
        match next_frame(buf) {
            Frame::Record { payload, size } => {
                assert_eq!(size, buf.len());
                decode(payload, VERSION).unwrap()
            }
            other => panic!("expected a record, got {other:?}"),
        }
    }

    #[test]
    fn every_record_kind_round_trips() {
        let hs = HardState {
            term: Term(7),
            voted_for: Some(NodeId::new("n2")),
        };
        let buf = framed(|b| encode_hard_state(b, &hs).unwrap());
        assert_eq!(round_trip(&buf), Record::HardState(hs));

        let hs = HardState {
            term: Term(8),
            voted_for: None,
        };
        let buf = framed(|b| encode_hard_state(b, &hs).unwrap());
        assert_eq!(round_trip(&buf), Record::HardState(hs));

        let config = Membership::voters([NodeId::new("n1"), NodeId::new("n2")]).encode();
        for (kind, data) in [
            (EntryKind::Normal, &b"put k v"[..]),
            (EntryKind::Noop, b""),
            (EntryKind::Config, &config[..]),
        ] {
            let e = Entry {
                index: LogIndex(3),
                term: Term(2),
                kind,
                data: Bytes::copy_from_slice(data),
            };
            let buf = framed(|b| encode_entry(b, &e).unwrap());
            assert_eq!(round_trip(&buf), Record::Entry(e));
        }

        let buf = framed(|b| encode_truncate(b, LogIndex(9)));
        assert_eq!(round_trip(&buf), Record::Truncate(LogIndex(9)));

        let s = SnapshotMeta {
            index: LogIndex(100),
            term: Term(4),
            membership: Membership::voters(["n1", "n2", "n3"].map(NodeId::new)),
        };
        let buf = framed(|b| encode_snapshot(b, &s).unwrap());
        assert_eq!(round_trip(&buf), Record::Snapshot(s));
    }

    #[test]
    fn version_1_snapshot_records_and_bad_configurations() {
        // A version-1 snapshot record: its members are all voters.
        let mut payload = vec![KIND_SNAPSHOT];
        payload.extend_from_slice(&7u64.to_le_bytes());
        payload.extend_from_slice(&2u64.to_le_bytes());
        payload.extend_from_slice(&2u32.to_le_bytes());
        for id in ["n1", "n2"] {
            put_node_id(&mut payload, &NodeId::new(id)).unwrap();
        }
        let expected = SnapshotMeta {
            index: LogIndex(7),
            term: Term(2),
            membership: Membership::voters(["n1", "n2"].map(NodeId::new)),
        };
        assert_eq!(decode(&payload, VERSION_1), Ok(Record::Snapshot(expected)));
        // Version 1 had no configuration entries.
        let e = Entry {
            index: LogIndex(3),
            term: Term(2),
            kind: EntryKind::Config,
            data: Bytes::from(Membership::default().encode()),
        };
        let buf = framed(|b| encode_entry(b, &e).unwrap());
        assert!(decode(&buf[RECORD_HEADER_LEN..], VERSION_1).is_err());
        // A configuration entry that does not decode is corruption.
        let bad = Entry {
            data: Bytes::from_static(b"\x01garbage"),
            ..e
        };
        let buf = framed(|b| encode_entry(b, &bad).unwrap());
        let err = decode(&buf[RECORD_HEADER_LEN..], VERSION).unwrap_err();
        assert!(err.contains("configuration at index 3"), "{err}");
    }

    #[test]
    fn file_header_is_checked() {
        let h = file_header();
        assert_eq!(check_file_header(&h), Ok(VERSION));
        assert!(matches!(
            check_file_header(&h[..10]),
            Err(HeaderError::NotAWal(_))
        ));
        let mut bad = h;
        bad[0] ^= 1;
        assert!(matches!(
            check_file_header(&bad),
            Err(HeaderError::NotAWal(_))
        ));
        let mut bad = h;
        bad[8] ^= 1;
        assert!(matches!(
            check_file_header(&bad),
            Err(HeaderError::Corrupt(_))
        ));
    }

    #[test]
    fn all_zero_and_all_ones_headers_fail_the_length_check() {
        assert!(matches!(next_frame(&[0xFF; 64]), Frame::Corrupt(_)));
        // Zeros are a torn tail (preallocated or never-written blocks).
        assert_eq!(next_frame(&[0; 64]), Frame::Torn("zero-filled tail"));
        // Zeros followed by data are not a tail: the length check fails.
        let mut buf = vec![0; 20];
        buf.push(1);
        assert!(matches!(next_frame(&buf), Frame::Corrupt(_)));
    }

    #[test]
    fn payloads_with_trailing_or_missing_bytes_do_not_decode() {
        let buf = framed(|b| encode_truncate(b, LogIndex(9)));
        let payload = &buf[RECORD_HEADER_LEN..];
        assert!(decode(&payload[..payload.len() - 1], VERSION).is_err());
        let mut long = payload.to_vec();
        long.push(0);
        assert!(decode(&long, VERSION).is_err());
        assert!(decode(&[99], VERSION).is_err());
    }
}
