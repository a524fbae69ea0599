//! The string model: a value that is absent or a string; `write` (put)
//! sets it, `append` concatenates (an absent value counts as ""), `cas`
//! compares and sets, `read` returns it. One model for string registers,
//! Porcupine's kv (get, put, append) and the Kv API as it is.
//!
//! Strings are interned: states and the values ops carry are ids into one
//! table, so comparing a state with a read is comparing two integers, and
//! an append's result is computed once per (state, suffix).
//!
//! A key whose only updates are appends behaves like the append model: a
//! state that is no prefix of any string read can only be appended to, and
//! the search may treat it as a dead end for optional ops
//! ([`Model::is_dead`]).

use std::cell::RefCell;
use std::collections::HashMap;

use super::model::{Model, StateId};
use crate::history::{Text, Value};

/// A string-model operation with what it observed. Strings are ids from
/// [`StrModel::text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StrOp {
    /// A read that returned this value (the id of absent, or of a string).
    Read(StateId),
    /// A put (f `write`) of this string.
    Put(StateId),
    /// An append of this string (to "" when the key is absent).
    Append(StateId),
    /// A cas that took effect.
    Cas {
        /// The value before (an id of absent or of a string).
        expected: StateId,
        /// The string after.
        new: StateId,
    },
    /// A cas that failed with `mismatch`; `actual` as the register's.
    Mismatch {
        /// The value the cas wanted and did not find.
        expected: StateId,
        /// What the node saw instead; `None`: it did not say.
        actual: Option<StateId>,
    },
}

/// The string model for one key; a state is the id of its value.
#[derive(Debug)]
pub struct StrModel {
    /// Every value seen: `None` is absent.
    values: Vec<Option<Text>>,
    ids: HashMap<Option<Text>, StateId>,
    concat: HashMap<(StateId, StateId), StateId>,
    initial: StateId,
    /// Strings some read returned, for [`Model::is_dead`]; `None` once an
    /// op other than an append or a read is seen (a put can leave any
    /// state, so no state is dead).
    reads: Option<Vec<StateId>>,
    /// [`Model::is_dead`]'s answers, which take a scan of the reads.
    dead: RefCell<HashMap<StateId, bool>>,
    /// Bytes of the strings held.
    text_bytes: usize,
}

impl StrModel {
    /// A model whose key starts as `initial` (`None`: absent).
    pub fn new(initial: Option<&str>) -> StrModel {
        let mut m = StrModel {
            values: Vec::new(),
            ids: HashMap::new(),
            concat: HashMap::new(),
            initial: 0,
            reads: Some(Vec::new()),
            dead: RefCell::new(HashMap::new()),
            text_bytes: 0,
        };
        m.initial = m.value(initial.map(Text::new));
        m
    }

    /// The id of a value (`None`: absent).
    pub fn value(&mut self, v: Option<Text>) -> StateId {
        if let Some(&id) = self.ids.get(&v) {
            return id;
        }
        let id = StateId::try_from(self.values.len()).expect("fewer than 2^32 strings");
        self.text_bytes += v.as_ref().map_or(0, |t| t.len());
        self.values.push(v.clone());
        self.ids.insert(v, id);
        id
    }

    /// The id of a string.
    pub fn text(&mut self, s: &Text) -> StateId {
        self.value(Some(s.clone()))
    }

    /// The read of `v`. Call for every op before the search starts (with
    /// [`StrModel::update`] for the others), so that [`Model::is_dead`]
    /// knows every string read.
    pub fn read(&mut self, v: Option<&Text>) -> StrOp {
        let id = self.value(v.cloned());
        if let Some(reads) = &mut self.reads {
            reads.push(id);
        }
        StrOp::Read(id)
    }

    /// Records that the key has an update other than an append.
    pub fn update(&mut self) {
        self.reads = None;
        self.dead.borrow_mut().clear();
    }

    /// The value with id `id` (`None`: absent).
    pub fn get(&self, id: StateId) -> Option<&Text> {
        self.values[id as usize].as_ref()
    }
}

impl Model for StrModel {
    type Op = StrOp;

    fn init(&mut self) -> StateId {
        self.initial
    }

    fn step(&mut self, state: StateId, op: &StrOp) -> Option<StateId> {
        match *op {
            StrOp::Read(v) => (v == state).then_some(state),
            StrOp::Put(v) => Some(v),
            StrOp::Append(suffix) => {
                if let Some(&next) = self.concat.get(&(state, suffix)) {
                    return Some(next);
                }
                let mut s = self.get(state).map_or(String::new(), |t| t.to_string());
                s.push_str(self.get(suffix).map_or("", |t| t.as_str()));
                let next = self.value(Some(Text::from(s)));
                self.concat.insert((state, suffix), next);
                Some(next)
            }
            StrOp::Cas { expected, new } => (expected == state).then_some(new),
            StrOp::Mismatch { expected, actual } => {
                (expected != state && actual.is_none_or(|a| a == state)).then_some(state)
            }
        }
    }

    fn is_blind(&self, op: &StrOp) -> bool {
        matches!(op, StrOp::Put(_))
    }

    /// Appends only: no read returned this string or a longer one starting
    /// with it, so only appends can follow.
    fn is_dead(&self, state: StateId) -> bool {
        let Some(reads) = &self.reads else {
            return false;
        };
        if let Some(&dead) = self.dead.borrow().get(&state) {
            return dead;
        }
        let s = self.get(state).map_or("", |t| t.as_str());
        let absent = self.get(state).is_none();
        let dead = !reads.iter().any(|&r| match self.get(r) {
            Some(read) => read.starts_with(s),
            // Only the absent state reads as absent.
            None => absent,
        });
        self.dead.borrow_mut().insert(state, dead);
        dead
    }

    fn always_succeeds(&self, op: &StrOp) -> bool {
        self.reads.is_some() && matches!(op, StrOp::Append(_))
    }

    fn describe_state(&self, state: StateId) -> Value {
        self.get(state)
            .map_or(Value::Nil, |t| Value::Str(t.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_appends_and_cas() {
        let mut m = StrModel::new(None);
        let (a, b, ab) = (
            m.text(&"a".into()),
            m.text(&"b".into()),
            m.text(&"ab".into()),
        );
        let s0 = m.init();
        assert_eq!(m.describe_state(s0), Value::Nil);
        let s1 = m.step(s0, &StrOp::Append(a)).unwrap();
        assert_eq!(s1, a, "appending to absent starts from \"\"");
        let s2 = m.step(s1, &StrOp::Append(b)).unwrap();
        assert_eq!(s2, ab);
        assert_eq!(m.step(s2, &StrOp::Read(ab)), Some(ab));
        assert_eq!(m.step(s2, &StrOp::Read(a)), None);
        assert_eq!(m.step(s2, &StrOp::Put(b)), Some(b));
        assert_eq!(
            m.step(
                s2,
                &StrOp::Cas {
                    expected: ab,
                    new: a
                }
            ),
            Some(a)
        );
        assert_eq!(
            m.step(
                s2,
                &StrOp::Cas {
                    expected: a,
                    new: b
                }
            ),
            None
        );
        let absent = m.value(None);
        assert_eq!(
            m.step(
                s2,
                &StrOp::Mismatch {
                    expected: a,
                    actual: Some(ab)
                }
            ),
            Some(s2)
        );
        assert_eq!(
            m.step(
                s2,
                &StrOp::Mismatch {
                    expected: a,
                    actual: Some(absent)
                }
            ),
            None
        );
        let e = StrModel::new(Some("")).init();
        assert_eq!(
            StrModel::new(Some("")).describe_state(e),
            Value::Str("".into())
        );
    }

    #[test]
    fn with_appends_only_a_state_no_read_extends_is_dead() {
        let mut m = StrModel::new(None);
        let ab: Text = "ab".into();
        m.read(Some(&ab));
        let (a, c) = (m.text(&"a".into()), m.text(&"c".into()));
        let s0 = m.init();
        assert!(!m.is_dead(s0));
        assert!(!m.is_dead(a));
        assert!(m.is_dead(c));
        assert!(m.always_succeeds(&StrOp::Append(c)));
        m.update();
        assert!(!m.is_dead(c));
        assert!(!m.always_succeeds(&StrOp::Append(c)));
    }
}
