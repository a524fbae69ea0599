//! The register model: read, write and compare-and-set on one integer
//! value that starts absent (or as given).

use super::model::{Interner, Model, StateId};
use crate::history::Value;

/// A register operation with what it observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    /// A read that returned this value (`None`: absent).
    Read(Option<i64>),
    /// A write of this value (ok, or of unknown outcome).
    Write(i64),
    /// A cas that took effect: the value was `expected` and became `new`.
    Cas {
        /// The value before (`None`: absent).
        expected: Option<i64>,
        /// The value after.
        new: i64,
    },
    /// A cas that failed with `mismatch`: it went through the log and saw a
    /// value other than `expected`, equal to `actual` when the node said.
    Mismatch {
        /// The value the cas wanted and did not find (`None`: absent).
        expected: Option<i64>,
        /// What the node saw instead (`Some(None)`: absent); `None`: it
        /// did not say, and any value but `expected` fits.
        actual: Option<Option<i64>>,
    },
}

/// States are `Option<i64>` (absent or a value), interned.
#[derive(Debug, Default)]
pub struct RegisterModel {
    states: Interner<Option<i64>>,
    initial: Option<i64>,
}

impl RegisterModel {
    /// A register that starts as `initial` (`None`: absent).
    pub fn starting_with(initial: Option<i64>) -> RegisterModel {
        RegisterModel {
            states: Interner::default(),
            initial,
        }
    }
}

impl Model for RegisterModel {
    type Op = RegisterOp;

    fn init(&mut self) -> StateId {
        self.states.intern(self.initial)
    }

    fn step(&mut self, state: StateId, op: &RegisterOp) -> Option<StateId> {
        let value = *self.states.get(state);
        match *op {
            RegisterOp::Read(v) => (v == value).then_some(state),
            RegisterOp::Write(v) => Some(self.states.intern(Some(v))),
            RegisterOp::Cas { expected, new } => {
                (expected == value).then(|| self.states.intern(Some(new)))
            }
            RegisterOp::Mismatch { expected, actual } => {
                (expected != value && actual.is_none_or(|a| a == value)).then_some(state)
            }
        }
    }

    fn is_blind(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Write(_))
    }

    fn describe_state(&self, state: StateId) -> Value {
        self.states.get(state).map_or(Value::Nil, Value::Int)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        let mut m = RegisterModel::default();
        let s0 = m.init();
        assert_eq!(m.step(s0, &RegisterOp::Read(None)), Some(s0));
        assert_eq!(m.step(s0, &RegisterOp::Read(Some(1))), None);
        let s1 = m.step(s0, &RegisterOp::Write(1)).unwrap();
        assert_eq!(m.describe_state(s1), Value::Int(1));
        assert_eq!(m.describe_state(s0), Value::Nil);
        assert_eq!(
            m.step(
                s0,
                &RegisterOp::Cas {
                    expected: None,
                    new: 1
                }
            ),
            Some(s1)
        );
        assert_eq!(
            m.step(
                s1,
                &RegisterOp::Cas {
                    expected: None,
                    new: 1
                }
            ),
            None
        );
        let mismatch = |expected, actual| RegisterOp::Mismatch { expected, actual };
        assert_eq!(m.step(s1, &mismatch(Some(2), None)), Some(s1));
        assert_eq!(m.step(s1, &mismatch(Some(1), None)), None);
        assert_eq!(m.step(s1, &mismatch(Some(2), Some(Some(1)))), Some(s1));
        assert_eq!(m.step(s1, &mismatch(Some(2), Some(None))), None);
        assert_eq!(m.step(s0, &mismatch(Some(2), Some(None))), Some(s0));
    }
}
