//! The state machine image: every value and every client session, as bytes.
//!
//! A snapshot must carry the sessions, not only the values: a client that
//! retries a request after the log entry that applied it was compacted away
//! must still get its first answer, not a second application (docs/contract.md:
//! "a retried (client_id, seq) is applied at most once").
//!
//! ```text
//! image    = version u32 | values | sessions
//! values   = count u64 | count × (key_len u32 | key utf-8 | value_len u32 | value)
//! sessions = count u64 | count × (client u64 | last_seq u64 | last_index u64
//!                                 | fingerprint u64
//!                                 | outcome u8 | answer_index u64
//!                                 | has_value u8 | [value_len u32 | value])
//! ```
//!
//! Version 1 had no `fingerprint` (the hash of the session's latest
//! command): its sessions are read with 0, "not known", and take any
//! retry of their latest `(client_id, seq)` for a true one, as that
//! version did.
//!
//! Little-endian. Keys and clients are written in ascending order, so equal
//! states give equal images on every replica. The image has no checksum of
//! its own: it travels and rests inside a snapshot file (`storage::snapshot`),
//! whose checksum covers it.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use raft::LogIndex;

use super::state::{Answer, KvState, Outcome, Session};
use crate::reader::{ReadError, Reader};

/// Bumped on any incompatible change of the layout above.
pub const IMAGE_VERSION: u32 = 2;
/// The oldest version this build still reads.
const OLDEST_VERSION: u32 = 1;

const OUTCOME_OK: u8 = 0;
const OUTCOME_MISMATCH: u8 = 1;
const OUTCOME_STALE: u8 = 2;
const OUTCOME_CONFLICT: u8 = 3;

/// An image this build cannot read: another version, or damage the file
/// checksum did not catch (a bug in the writer).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    /// Written by a build with another image format.
    #[error(
        "state machine image version {0}, this build reads versions {OLDEST_VERSION} to {IMAGE_VERSION}"
    )]
    Version(u32),
    /// Bytes that are not an image.
    #[error("malformed state machine image: {0}")]
    Malformed(#[from] ReadError),
}

impl KvState {
    /// The image of this state; [`KvState::from_image`] gives it back.
    pub fn to_image(&self) -> Vec<u8> {
        let value_bytes: usize = self.values.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
        let mut out = Vec::with_capacity(24 + value_bytes + self.sessions.len() * 48);
        out.extend_from_slice(&IMAGE_VERSION.to_le_bytes());

        let mut keys: Vec<&String> = self.values.keys().collect();
        keys.sort_unstable();
        out.extend_from_slice(&(keys.len() as u64).to_le_bytes());
        for k in keys {
            put_bytes(&mut out, k.as_bytes());
            put_bytes(&mut out, &self.values[k]);
        }

        let mut clients: Vec<&u64> = self.sessions.keys().collect();
        clients.sort_unstable();
        out.extend_from_slice(&(clients.len() as u64).to_le_bytes());
        for c in clients {
            let s = &self.sessions[c];
            out.extend_from_slice(&c.to_le_bytes());
            out.extend_from_slice(&s.last_seq.to_le_bytes());
            out.extend_from_slice(&s.last_index.0.to_le_bytes());
            out.extend_from_slice(&s.fingerprint.to_le_bytes());
            out.push(match s.answer.outcome {
                Outcome::Ok => OUTCOME_OK,
                Outcome::Mismatch => OUTCOME_MISMATCH,
                Outcome::Stale => OUTCOME_STALE,
                Outcome::Conflict => OUTCOME_CONFLICT,
            });
            out.extend_from_slice(&s.answer.index.0.to_le_bytes());
            match &s.answer.value {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    put_bytes(&mut out, v);
                }
            }
        }
        out
    }

    /// The state an image describes. Every length is checked against what is
    /// left, so a bad image is an error, never a panic or a huge allocation.
    pub fn from_image(image: &[u8]) -> Result<KvState, ImageError> {
        let mut r = Reader::new(image);
        let version = r.u32()?;
        if !(OLDEST_VERSION..=IMAGE_VERSION).contains(&version) {
            return Err(ImageError::Version(version));
        }
        let has_fingerprints = version >= 2;
        // Each value takes at least 8 bytes and each session at least 34 (42):
        // refuse counts the image cannot hold before allocating for them.
        let n = r.u64()?;
        let n = r.items(n, 8)?;
        let mut values = HashMap::with_capacity(n);
        for _ in 0..n {
            let key = r.bytes_u32()?;
            let key = std::str::from_utf8(key)
                .map_err(|_| ImageError::from(r.error("a key is not UTF-8")))?
                .to_string();
            let value = Bytes::copy_from_slice(r.bytes_u32()?);
            if values.insert(key, value).is_some() {
                return Err(r.error("a key appears twice").into());
            }
        }
        let n = r.u64()?;
        let n = r.items(n, if has_fingerprints { 42 } else { 34 })?;
        let mut sessions = HashMap::with_capacity(n);
        let mut by_use = BTreeMap::new();
        for _ in 0..n {
            let client = r.u64()?;
            let last_seq = r.u64()?;
            let last_index = LogIndex(r.u64()?);
            let fingerprint = if has_fingerprints { r.u64()? } else { 0 };
            let outcome = match r.u8()? {
                OUTCOME_OK => Outcome::Ok,
                OUTCOME_MISMATCH => Outcome::Mismatch,
                OUTCOME_STALE => Outcome::Stale,
                OUTCOME_CONFLICT => Outcome::Conflict,
                other => return Err(r.error(format!("unknown outcome {other}")).into()),
            };
            let index = LogIndex(r.u64()?);
            let value = match r.u8()? {
                0 => None,
                1 => Some(Bytes::copy_from_slice(r.bytes_u32()?)),
                other => return Err(r.error(format!("bad value flag {other}")).into()),
            };
            // Eviction goes by last use; two sessions last used at one index
            // would make replicas evict differently.
            if by_use.insert(last_index, client).is_some() {
                return Err(r.error("two sessions share a last index").into());
            }
            let session = Session {
                last_seq,
                answer: Answer {
                    outcome,
                    value,
                    index,
                },
                last_index,
                fingerprint,
            };
            if sessions.insert(client, session).is_some() {
                return Err(r.error("a client appears twice").into());
            }
        }
        if r.remaining() > 0 {
            return Err(r.error("unexpected bytes after the sessions").into());
        }
        Ok(KvState {
            values,
            sessions,
            by_use,
        })
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let len = u32::try_from(b.len()).expect("keys and values are far below 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(b);
}

/// A cursor over an image; every read checks the length.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Op;
    use crate::kv::test_support::{b, cmd};

    fn busy_state() -> KvState {
        let mut s = KvState::default();
        s.apply(LogIndex(1), &cmd(1, 1, "a", Op::Put { value: b("1") }));
        s.apply(LogIndex(2), &cmd(2, 1, "b", Op::Append { suffix: b("x,") }));
        // A mismatch answer carries a value; it must survive the image.
        s.apply(
            LogIndex(3),
            &cmd(
                3,
                7,
                "a",
                Op::Cas {
                    expected: Some(b("9")),
                    new: b("2"),
                },
            ),
        );
        s.apply(LogIndex(4), &cmd(1, 2, "", Op::Put { value: b("") }));
        s
    }

    #[test]
    fn image_round_trips_values_and_sessions() {
        let s = busy_state();
        let back = KvState::from_image(&s.to_image()).unwrap();
        assert_eq!(back, s);
        assert_eq!(
            KvState::from_image(&KvState::default().to_image()).unwrap(),
            KvState::default()
        );
    }

    #[test]
    fn equal_states_give_equal_images() {
        let s = busy_state();
        let copy = KvState::from_image(&s.to_image()).unwrap();
        assert_eq!(copy.to_image(), s.to_image());
    }

    #[test]
    fn a_retried_request_after_the_image_is_answered_once() {
        let mut s = busy_state();
        let retry = cmd(2, 1, "b", Op::Append { suffix: b("x,") });
        let first = s.apply(LogIndex(2), &retry);
        let mut back = KvState::from_image(&s.to_image()).unwrap();
        assert_eq!(back.apply(LogIndex(9), &retry), first);
        assert_eq!(back.get("b"), Some(&b("x,")), "applied once");
    }

    /// The image of `s` as version 1 wrote it: no fingerprints.
    fn version_1_image(s: &KvState) -> Vec<u8> {
        let mut v1 = s.to_image();
        v1[..4].copy_from_slice(&1u32.to_le_bytes());
        let sessions_at = v1.len()
            - s.sessions
                .values()
                .map(|x| 42 + x.answer.value.as_ref().map_or(0, |v| 4 + v.len()))
                .sum::<usize>();
        let mut at = sessions_at;
        let mut clients: Vec<&u64> = s.sessions.keys().collect();
        clients.sort_unstable();
        for c in clients {
            // client, last_seq, last_index: then the fingerprint to drop.
            v1.drain(at + 24..at + 32);
            let x = &s.sessions[c];
            at += 34 + x.answer.value.as_ref().map_or(0, |v| 4 + v.len());
        }
        v1
    }

    #[test]
    fn sessions_remember_their_command_and_version_1_images_are_still_read() {
        let mut s = busy_state();
        let other = cmd(2, 1, "b", Op::Append { suffix: b("y,") });
        let mut back = KvState::from_image(&s.to_image()).unwrap();
        assert_eq!(back.apply(LogIndex(9), &other).outcome, Outcome::Conflict);

        let old = KvState::from_image(&version_1_image(&s)).unwrap();
        for x in s.sessions.values_mut() {
            x.fingerprint = 0;
        }
        assert_eq!(old, s, "version 1: the same state, commands not known");
    }

    #[test]
    fn damaged_images_are_errors_not_panics() {
        let image = busy_state().to_image();
        for cut in 0..image.len() {
            assert!(KvState::from_image(&image[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = image.clone();
        long.push(0);
        assert!(KvState::from_image(&long).is_err());
        let mut v3 = image.clone();
        v3[0] = 3;
        assert_eq!(KvState::from_image(&v3), Err(ImageError::Version(3)));
        // A huge count is refused before anything is allocated for it.
        let mut huge = IMAGE_VERSION.to_le_bytes().to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(KvState::from_image(&huge).is_err());
    }
}
