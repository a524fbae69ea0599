//! The append model: a list of integers that starts empty; `append` adds a
//! token at the end, `read` returns the whole list.
//!
//! Lists are hash-consed: a list is "parent list + last token", so every
//! distinct list has one id and comparing a state with a read is comparing
//! two integers, however long the lists. Lists that some read returned are
//! interned (with all their prefixes) before the search, which lets the
//! model tell the search that a list no read can ever match is a dead end
//! for optional appends ([`Model::is_dead`]).

use std::collections::HashMap;

use super::model::{Model, StateId};
use crate::history::Value;

/// An append-model operation with what it observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppendOp {
    /// An append of this token (ok, or of unknown outcome).
    Append(i64),
    /// A read that returned the list with this id (see [`AppendModel::read`]).
    Read(StateId),
}

/// The empty list.
const EMPTY: StateId = 0;

/// The append model for one key; states are list ids (0: the empty list).
#[derive(Debug)]
pub struct AppendModel {
    /// (parent, last token) of each list; the empty list's entry is unused.
    lists: Vec<(StateId, i64)>,
    ids: HashMap<(StateId, i64), StateId>,
    /// Whether the list is a prefix of some list read.
    readable: Vec<bool>,
    initial: StateId,
}

impl Default for AppendModel {
    fn default() -> Self {
        AppendModel {
            lists: vec![(EMPTY, 0)],
            ids: HashMap::new(),
            readable: vec![true],
            initial: EMPTY,
        }
    }
}

impl AppendModel {
    /// A list that starts as `initial`.
    pub fn starting_with(initial: &[i64]) -> AppendModel {
        let mut m = AppendModel::default();
        let mut id = EMPTY;
        for &token in initial {
            id = m.child(id, token);
        }
        m.initial = id;
        m
    }

    /// The read of `list`. Call for every read before the search starts, so
    /// that [`Model::is_dead`] knows every list a read returned.
    pub fn read(&mut self, list: &[i64]) -> AppendOp {
        let mut id = EMPTY;
        for &token in list {
            id = self.child(id, token);
            self.readable[id as usize] = true;
        }
        AppendOp::Read(id)
    }

    fn child(&mut self, parent: StateId, token: i64) -> StateId {
        if let Some(&id) = self.ids.get(&(parent, token)) {
            return id;
        }
        let id = StateId::try_from(self.lists.len()).expect("fewer than 2^32 lists");
        self.lists.push((parent, token));
        self.readable.push(false);
        self.ids.insert((parent, token), id);
        id
    }

    /// The list with id `state`.
    pub fn list(&self, mut state: StateId) -> Vec<i64> {
        let mut out = Vec::new();
        while state != EMPTY {
            let (parent, token) = self.lists[state as usize];
            out.push(token);
            state = parent;
        }
        out.reverse();
        out
    }
}

impl Model for AppendModel {
    type Op = AppendOp;

    fn init(&mut self) -> StateId {
        self.initial
    }

    fn step(&mut self, state: StateId, op: &AppendOp) -> Option<StateId> {
        match *op {
            AppendOp::Append(token) => Some(self.child(state, token)),
            AppendOp::Read(list) => (list == state).then_some(state),
        }
    }

    /// No read returned this list or any longer list starting with it: only
    /// appends (which succeed in every state) can follow.
    fn is_dead(&self, state: StateId) -> bool {
        !self.readable[state as usize]
    }

    fn always_succeeds(&self, op: &AppendOp) -> bool {
        matches!(op, AppendOp::Append(_))
    }

    fn describe_state(&self, state: StateId) -> Value {
        Value::List(self.list(state))
    }

    fn bytes(&self) -> usize {
        self.lists.len() * 40
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_lists_have_equal_ids() {
        let mut m = AppendModel::default();
        let AppendOp::Read(r) = m.read(&[1, 2]) else {
            panic!()
        };
        let s0 = m.init();
        let s1 = m.step(s0, &AppendOp::Append(1)).unwrap();
        let s2 = m.step(s1, &AppendOp::Append(2)).unwrap();
        assert_eq!(s2, r);
        assert_eq!(m.step(s2, &AppendOp::Read(r)), Some(s2));
        assert_eq!(m.step(s1, &AppendOp::Read(r)), None);
        assert_eq!(m.list(s2), vec![1, 2]);
        assert_eq!(m.describe_state(s2), Value::List(vec![1, 2]));
        assert!(!m.is_dead(s1));
        let other = m.step(s0, &AppendOp::Append(2)).unwrap();
        assert!(m.is_dead(other));
    }
}
