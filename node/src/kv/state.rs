//! Values and client sessions. Applying is deterministic: the same log gives
//! every replica the same state and the same answer for each command.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use super::command::{Command, Op};
use raft::LogIndex;

/// Sessions kept before the least recently used is forgotten. Eviction goes
/// by log index, so every replica forgets the same one.
pub const MAX_SESSIONS: usize = 50_000;

/// How a command went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It took effect.
    Ok,
    /// Cas found another value; `Answer::value` holds it.
    Mismatch,
    /// A request older than the session's latest: it was answered before and
    /// the answer is gone. The client cannot learn the outcome.
    Stale,
    /// The session's latest `(client_id, seq)` again, but with another
    /// command: a client bug. Nothing was done; the first command stands.
    Conflict,
}

/// The state machine's answer to a command, kept in its session so a retry
/// gets it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// How it went.
    pub outcome: Outcome,
    /// The value a `Cas` mismatch found.
    pub value: Option<Bytes>,
    /// Where the command first took effect.
    pub index: LogIndex,
}

/// What the state machine remembers of a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The latest seq applied.
    pub last_seq: u64,
    /// Its answer.
    pub answer: Answer,
    /// The log index of the session's latest use, for eviction.
    pub last_index: LogIndex,
    /// [`Command::fingerprint`] of the latest command; 0 if not known (a
    /// session read from an image of version 1), when any retry is taken
    /// for a true one.
    pub fingerprint: u64,
}

/// The replicated state: values, and client sessions for exactly-once writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvState {
    pub(super) values: HashMap<String, Bytes>,
    pub(super) sessions: HashMap<u64, Session>,
    /// Sessions by last use, for eviction.
    pub(super) by_use: BTreeMap<LogIndex, u64>,
}

impl KvState {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Bytes> {
        self.values.get(key)
    }

    /// Every key holding a value, with it, sorted by key.
    pub fn sorted_values(&self) -> Vec<(String, Bytes)> {
        let mut all: Vec<(String, Bytes)> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// How many keys hold a value.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no key holds a value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// How many client sessions are remembered.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Applies the command of the entry at `index`. A retried (client, seq)
    /// gets its first answer again without touching the values; one that
    /// carries another command than the first is refused
    /// ([`Outcome::Conflict`]).
    pub fn apply(&mut self, index: LogIndex, cmd: &Command) -> Answer {
        if let Some(s) = self.sessions.get(&cmd.client_id) {
            if cmd.seq == s.last_seq {
                if s.fingerprint != 0 && s.fingerprint != cmd.fingerprint() {
                    return Answer {
                        outcome: Outcome::Conflict,
                        value: None,
                        index: s.answer.index,
                    };
                }
                return s.answer.clone();
            }
            if cmd.seq < s.last_seq {
                return Answer {
                    outcome: Outcome::Stale,
                    value: None,
                    index,
                };
            }
        }
        let answer = self.execute(index, cmd);
        self.remember(index, cmd, answer.clone());
        answer
    }

    /// Seeded bug `no-dedup`: applies a retried request again.
    #[cfg(feature = "bugs")]
    pub fn apply_again(&mut self, index: LogIndex, cmd: &Command) -> Answer {
        let answer = self.execute(index, cmd);
        self.remember(index, cmd, answer.clone());
        answer
    }

    /// The values alone, without the sessions (for the seeded bug
    /// `snapshot-drops-sessions`).
    pub fn without_sessions(&self) -> KvState {
        KvState {
            values: self.values.clone(),
            ..KvState::default()
        }
    }

    fn execute(&mut self, index: LogIndex, cmd: &Command) -> Answer {
        let ok = |value| Answer {
            outcome: Outcome::Ok,
            value,
            index,
        };
        match &cmd.op {
            Op::Put { value } => {
                self.values.insert(cmd.key.clone(), value.clone());
                ok(None)
            }
            Op::Cas { expected, new } => {
                let current = self.values.get(&cmd.key);
                if current == expected.as_ref() {
                    self.values.insert(cmd.key.clone(), new.clone());
                    ok(None)
                } else {
                    Answer {
                        outcome: Outcome::Mismatch,
                        value: current.cloned(),
                        index,
                    }
                }
            }
            Op::Append { suffix } => {
                let v = self.values.entry(cmd.key.clone()).or_default();
                let mut joined = Vec::with_capacity(v.len() + suffix.len());
                joined.extend_from_slice(v);
                joined.extend_from_slice(suffix);
                *v = Bytes::from(joined);
                ok(None)
            }
        }
    }

    fn remember(&mut self, index: LogIndex, cmd: &Command, answer: Answer) {
        if let Some(old) = self.sessions.get(&cmd.client_id) {
            self.by_use.remove(&old.last_index);
        }
        self.sessions.insert(
            cmd.client_id,
            Session {
                last_seq: cmd.seq,
                answer,
                last_index: index,
                fingerprint: cmd.fingerprint(),
            },
        );
        self.by_use.insert(index, cmd.client_id);
        while self.sessions.len() > MAX_SESSIONS {
            let (_, client) = self.by_use.pop_first().expect("sessions and by_use agree");
            self.sessions.remove(&client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::test_support::{b, cmd};

    #[test]
    fn put_cas_append() {
        let mut s = KvState::default();
        s.apply(LogIndex(1), &cmd(1, 1, "k", Op::Put { value: b("1") }));
        assert_eq!(s.get("k"), Some(&b("1")));
        let a = s.apply(
            LogIndex(2),
            &cmd(
                1,
                2,
                "k",
                Op::Cas {
                    expected: Some(b("2")),
                    new: b("3"),
                },
            ),
        );
        assert_eq!(a.outcome, Outcome::Mismatch);
        assert_eq!(a.value, Some(b("1")));
        let a = s.apply(
            LogIndex(3),
            &cmd(
                1,
                3,
                "k",
                Op::Cas {
                    expected: Some(b("1")),
                    new: b("3"),
                },
            ),
        );
        assert_eq!(a.outcome, Outcome::Ok);
        // Cas on an absent key with "expected absent" creates it.
        let a = s.apply(
            LogIndex(4),
            &cmd(
                1,
                4,
                "n",
                Op::Cas {
                    expected: None,
                    new: b("x"),
                },
            ),
        );
        assert_eq!(a.outcome, Outcome::Ok);
        s.apply(LogIndex(5), &cmd(1, 5, "a", Op::Append { suffix: b("1,") }));
        s.apply(LogIndex(6), &cmd(1, 6, "a", Op::Append { suffix: b("2,") }));
        assert_eq!(s.get("a"), Some(&b("1,2,")));
    }

    #[test]
    fn a_retried_request_is_applied_once_and_gets_the_first_answer() {
        let mut s = KvState::default();
        let c = cmd(7, 1, "a", Op::Append { suffix: b("x") });
        let first = s.apply(LogIndex(1), &c);
        let again = s.apply(LogIndex(2), &c);
        assert_eq!(first, again);
        assert_eq!(s.get("a"), Some(&b("x")));
        // A mismatch is also remembered, even after the value changes.
        let cas = cmd(
            8,
            1,
            "a",
            Op::Cas {
                expected: None,
                new: b("y"),
            },
        );
        let first = s.apply(LogIndex(3), &cas);
        s.apply(LogIndex(4), &cmd(9, 1, "a", Op::Put { value: b("z") }));
        assert_eq!(s.apply(LogIndex(5), &cas), first);
        // An older request than the session's latest cannot be answered.
        s.apply(LogIndex(6), &cmd(7, 5, "b", Op::Put { value: b("1") }));
        assert_eq!(s.apply(LogIndex(7), &c).outcome, Outcome::Stale);
    }

    #[test]
    fn a_retried_session_with_another_command_is_refused_and_changes_nothing() {
        let mut s = KvState::default();
        let first = s.apply(LogIndex(1), &cmd(7, 1, "a", Op::Put { value: b("1") }));
        for other in [
            cmd(7, 1, "a", Op::Put { value: b("2") }),
            cmd(7, 1, "b", Op::Put { value: b("1") }),
            cmd(7, 1, "a", Op::Append { suffix: b("1") }),
        ] {
            let before = s.clone();
            let a = s.apply(LogIndex(2), &other);
            assert_eq!(a.outcome, Outcome::Conflict, "{other:?}");
            assert_eq!(a.index, first.index, "names where the first took effect");
            assert_eq!(s, before, "{other:?} changed the state");
        }
        // The true retry still gets its first answer.
        let again = s.apply(LogIndex(3), &cmd(7, 1, "a", Op::Put { value: b("1") }));
        assert_eq!(again, first);
        // A session whose command is not known (read from an old image)
        // takes any retry for a true one, as before.
        s.sessions.get_mut(&7).unwrap().fingerprint = 0;
        let a = s.apply(LogIndex(4), &cmd(7, 1, "a", Op::Put { value: b("2") }));
        assert_eq!(a, first);
        assert_eq!(s.get("a"), Some(&b("1")));
    }

    #[test]
    fn sessions_are_evicted_least_recently_used_first() {
        let mut s = KvState::default();
        for i in 0..(MAX_SESSIONS as u64 + 10) {
            s.apply(
                LogIndex(i + 1),
                &cmd(i + 1, 1, "k", Op::Put { value: b("v") }),
            );
        }
        assert_eq!(s.session_count(), MAX_SESSIONS);
        assert!(!s.sessions.contains_key(&1));
        assert!(s.sessions.contains_key(&(MAX_SESSIONS as u64 + 10)));
    }
}
