//! Digests of the state machine, for comparing replicas from outside: two
//! replicas that applied the same log up to one index hold the same values
//! and the same client sessions, so their digests at that index agree. The
//! node writes them into its event log (`state` events) and answers them on
//! `Admin.LocalDump`; the harness's replica-state checker compares them.

use super::KvState;

/// Keys up to which a `state` event also lists each key's own digest, so a
/// difference can be named by key (beyond it, only the totals).
pub const PER_KEY_LIMIT: usize = 128;

/// The state at one applied index, hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDigest {
    /// Every key and value, in key order.
    pub values: u64,
    /// Every client session (last seq, its answer, its last use).
    pub sessions: u64,
    /// Keys holding a value.
    pub keys: usize,
    /// Each key's digest (of its value), in key order, when there are at
    /// most [`PER_KEY_LIMIT`] keys.
    pub per_key: Option<Vec<(String, u64)>>,
}

/// 64-bit FNV-1a: small, stable across builds and platforms, and enough to
/// tell replicas apart (it is evidence, not a defence against anyone).
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3)
    })
}

impl KvState {
    /// The digest of this state. Costs a pass over the state: the driver
    /// asks for it every few dozen applied entries, not at every one.
    pub fn digest(&self) -> StateDigest {
        let mut keys: Vec<(&String, &bytes::Bytes)> = self.values.iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let key_hash = |k: &str, v: &[u8]| {
            fnv1a(
                (k.len() as u32)
                    .to_le_bytes()
                    .into_iter()
                    .chain(k.bytes())
                    .chain(v.iter().copied()),
            )
        };
        let per: Vec<(String, u64)> = keys
            .iter()
            .map(|(k, v)| ((*k).clone(), key_hash(k, v)))
            .collect();
        let values = fnv1a(per.iter().flat_map(|(_, h)| h.to_le_bytes()));
        let mut clients: Vec<(&u64, &super::state::Session)> = self.sessions.iter().collect();
        clients.sort_unstable_by_key(|(c, _)| **c);
        let sessions = fnv1a(clients.iter().flat_map(|(c, s)| {
            let value = s.answer.value.as_deref().unwrap_or(&[]);
            let outcome = s.answer.outcome.clone() as u8;
            c.to_le_bytes()
                .into_iter()
                .chain(s.last_seq.to_le_bytes())
                .chain(s.last_index.0.to_le_bytes())
                .chain(s.answer.index.0.to_le_bytes())
                .chain([outcome, u8::from(s.answer.value.is_some())])
                .chain(value.iter().copied())
                .collect::<Vec<u8>>()
        }));
        StateDigest {
            values,
            sessions,
            keys: per.len(),
            per_key: (per.len() <= PER_KEY_LIMIT).then_some(per),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Op;
    use crate::kv::test_support::{b, cmd};
    use raft::LogIndex;

    #[test]
    fn equal_histories_give_equal_digests_and_any_change_shows() {
        let build = |n: u64| {
            let mut s = KvState::default();
            for i in 1..=n {
                s.apply(
                    LogIndex(i),
                    &cmd(i % 3, i, &format!("k{}", i % 4), Op::Put { value: b("v") }),
                );
            }
            s
        };
        let (a, c) = (build(10), build(10));
        assert_eq!(a.digest(), c.digest());
        assert_eq!(a.digest().keys, 4);
        // One more write changes the sessions (and here not the values).
        let d = build(11);
        assert_eq!(d.digest().values, a.digest().values);
        assert_ne!(d.digest().sessions, a.digest().sessions);
        // A value differs: its key's digest names it.
        let mut e = build(10);
        e.apply(LogIndex(11), &cmd(9, 1, "k1", Op::Put { value: b("w") }));
        assert_ne!(e.digest().values, a.digest().values);
        let (mine, theirs) = (e.digest().per_key.unwrap(), a.digest().per_key.unwrap());
        let differing: Vec<&str> = mine
            .iter()
            .zip(&theirs)
            .filter(|(x, y)| x != y)
            .map(|(x, _)| x.0.as_str())
            .collect();
        assert_eq!(differing, ["k1"]);
    }

    #[test]
    fn the_image_round_trip_keeps_the_digest() {
        let mut s = KvState::default();
        s.apply(LogIndex(1), &cmd(1, 1, "a", Op::Append { suffix: b("x") }));
        s.apply(LogIndex(2), &cmd(2, 1, "b", Op::Put { value: b("y") }));
        let back = KvState::from_image(&s.to_image()).unwrap();
        assert_eq!(back.digest(), s.digest());
    }
}
