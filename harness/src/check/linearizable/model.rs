//! What a model is, for the linearizability search.
//!
//! A model is a sequential specification: an initial state and a step
//! function that says whether an operation (with the result it returned) is
//! possible in a state, and what state follows. The search knows nothing
//! else about registers or lists.
//!
//! States are interned by the model and named by a [`StateId`]: the search
//! compares and hashes states as integers, and a model may share structure
//! between states (the append model stores a list as "parent list + one
//! token", so equal lists get equal ids without being compared element by
//! element). A model must give equal states equal ids.

use std::collections::HashMap;
use std::hash::Hash;

use crate::history::Value;

/// An interned model state. Equal states have equal ids.
pub type StateId = u32;

/// A sequential specification, instantiated once per key.
pub trait Model {
    /// An operation as the model sees it: its arguments and what it returned.
    /// Equal ops are interchangeable: the search uses that to try only one
    /// order of equal ops whose outcome is unknown.
    type Op: Eq + Hash;

    /// The state before any operation.
    fn init(&mut self) -> StateId;

    /// The state after `op`, or `None` if `op` cannot happen in `state`
    /// (a read that returned something else, a cas whose expected value
    /// differs). Deterministic: one state or none.
    fn step(&mut self, state: StateId, op: &Self::Op) -> Option<StateId>;

    /// Whether `op` succeeds in every state and leaves a state that does not
    /// depend on the one before (a register write). The search never
    /// linearizes a blind op right after an optional one (an op that may or
    /// may not have happened): the blind op would erase its effect, so
    /// leaving the optional op out is always at least as good. That is what
    /// keeps unacknowledged writes from multiplying the search.
    fn is_blind(&self, _op: &Self::Op) -> bool {
        false
    }

    /// Whether every operation that could still succeed from `state` (or a
    /// state reachable from it) is one that succeeds in every state. The
    /// append model: a list that is no prefix of any list read can only be
    /// appended to. The search does not linearize an optional op into such
    /// a state: whatever could follow could follow without it, so leaving it
    /// out is at least as good.
    fn is_dead(&self, _state: StateId) -> bool {
        false
    }

    /// Whether `op` succeeds in every state (an append). A model whose
    /// [`Model::is_dead`] can say true must say true here for every such op:
    /// the search treats an op for which this is false as one that cannot
    /// follow a dead state, so a required op of that kind still waiting
    /// makes a dead state a dead end.
    fn always_succeeds(&self, _op: &Self::Op) -> bool {
        false
    }

    /// The state as a value of the history format: what a read in this
    /// state returns. Reports show it next to what was actually read.
    fn describe_state(&self, state: StateId) -> Value;

    /// Approximate memory held by the model's states, counted against the
    /// search's memory limit (strings grow with every append).
    fn bytes(&self) -> usize {
        0
    }
}

/// Interns values of a small state type, for models whose states are
/// cheap to hash (the register).
#[derive(Debug)]
pub(crate) struct Interner<T> {
    values: Vec<T>,
    ids: HashMap<T, StateId>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            values: Vec::new(),
            ids: HashMap::new(),
        }
    }
}

impl<T: Clone + Eq + Hash> Interner<T> {
    /// The id of `value`: the one it got when first seen, else the next
    /// free one.
    pub(crate) fn intern(&mut self, value: T) -> StateId {
        if let Some(&id) = self.ids.get(&value) {
            return id;
        }
        let id = StateId::try_from(self.values.len()).expect("fewer than 2^32 states");
        self.values.push(value.clone());
        self.ids.insert(value, id);
        id
    }

    /// The value `id` was given to; panics on an id this interner did not
    /// give out.
    pub(crate) fn get(&self, id: StateId) -> &T {
        &self.values[id as usize]
    }
}
