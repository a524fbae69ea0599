//! The vocabulary of the core: terms, indexes, node ids, log entries and the
//! durable "hard state". Shared with storage and transport, which convert to
//! and from their own encodings.

use std::fmt;

use bytes::Bytes;

use super::Membership;

/// A Raft term (§5.1). Term 0 is "before any election".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term(pub u64);

/// A position in the replicated log; the first entry has index 1, and index 0
/// stands for "before the first entry".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogIndex(pub u64);

impl LogIndex {
    /// The index after this one.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }
    /// The index before this one; index 0 stays 0.
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A node's name in the cluster, such as `n1`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub String);

impl NodeId {
    /// A node id from its name.
    pub fn new(s: impl Into<String>) -> NodeId {
        NodeId(s.into())
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a log entry holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A client command for the state machine.
    #[default]
    Normal,
    /// The empty entry a new leader appends so it can commit in its own term (§5.4.2, §8).
    Noop,
    /// A new configuration of the cluster, whole ([`Membership::encode`]);
    /// it takes effect where it is appended (§4.1 of the thesis).
    Config,
}

/// One log entry. `data` is opaque to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its position in the log.
    pub index: LogIndex,
    /// The term of the leader that created it.
    pub term: Term,
    /// A command or a leader's no-op.
    pub kind: EntryKind,
    /// The command, as the state machine encodes it.
    pub data: Bytes,
}

impl Entry {
    /// Bytes this entry adds to a message or a log write, for batching limits.
    pub fn size(&self) -> usize {
        self.data.len() + 24
    }
}

/// What Figure 2 calls persistent state besides the log: it must reach disk
/// before any message that depends on it is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// Whom it voted for in that term.
    pub voted_for: Option<NodeId>,
}

/// Position and membership of a snapshot: everything up to `index` is folded
/// into the state machine image and no longer in the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// The last index the snapshot covers (0: no snapshot).
    pub index: LogIndex,
    /// The term of that entry.
    pub term: Term,
    /// The configuration in force at `index` (the latest configuration
    /// entry at or before it). At index 0, the configuration a cluster was
    /// formed with; empty when not known (a node that joined).
    pub membership: Membership,
}
