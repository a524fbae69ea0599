//! What the caller must do after feeding the core: one value, acted on in the
//! order of its fields.

use super::{Entry, HardState, LogIndex, Membership, Message, NodeId, SnapshotMeta, Term};

/// The roles as the outside world sees them. A pre-candidate is still a
/// follower: it has not changed its term and nobody else is affected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader, or waits for one (a pre-candidate included).
    Follower,
    /// Asks for votes in a term of its own.
    Candidate,
    /// Won its term's election.
    Leader,
}

impl Role {
    /// The name the event log and the Admin service use.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// The node took `role` in `term`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleChange {
    /// The new role.
    pub role: Role,
    /// The term it holds it in.
    pub term: Term,
}

/// A linearizable read confirmed by a majority: serve it once the state
/// machine has applied `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The caller's name for the read, as given to [`Raft::read_index`](super::Raft::read_index).
    pub ctx: u64,
    /// Serve it from a state machine that has applied at least this far.
    pub index: LogIndex,
}

/// A snapshot the leader sent that the follower must now install: load the
/// image (already received by the transport) into the state machine and make
/// it durable before anything in `persisted_messages` is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInstall {
    /// Where the snapshot ends.
    pub meta: SnapshotMeta,
    /// The leader that sent it.
    pub from: NodeId,
}

/// Handle the fields in this order:
///
/// 1. record `role_changes` in the event log (before anyone can see them),
///    and reach every member of `membership` from now on;
/// 2. send `messages` right away;
/// 3. install `snapshot`, then write `hard_state`, cut the log at
///    `truncate_from` and append `entries`, all durably;
/// 4. only then send `persisted_messages`, and report the write with
///    [`Raft::on_persisted`](super::Raft::on_persisted);
/// 5. apply `committed` in order; serve `reads` once applied reaches their
///    index; answer `failed_reads` with "not leader".
#[derive(Debug, Default)]
pub struct Ready {
    /// Roles taken since the last `Ready`, in order.
    pub role_changes: Vec<RoleChange>,
    /// The configuration in force, when it changed (appended, cut off with
    /// a conflicting tail, or brought by a snapshot): new members must be
    /// reachable before the messages below go.
    pub membership: Option<Membership>,
    /// Leader AppendEntries: they may leave before the leader's own copy is
    /// durable, because the leader counts itself only after `on_persisted`.
    pub messages: Vec<Message>,
    /// A leader's snapshot to install in place of the state machine.
    pub snapshot: Option<SnapshotInstall>,
    /// Changed term or vote: durable BEFORE any of `persisted_messages` leaves.
    pub hard_state: Option<HardState>,
    /// Drop the log's entries from this index on (they conflict with the leader's).
    pub truncate_from: Option<LogIndex>,
    /// Append these entries to the log.
    pub entries: Vec<Entry>,
    /// Votes, vote requests and AppendEntries replies: they promise that the
    /// state above is durable, so they are sent only AFTER it is.
    pub persisted_messages: Vec<Message>,
    /// Entries now committed, to apply in order.
    pub committed: Vec<Entry>,
    /// Reads a majority confirmed.
    pub reads: Vec<ReadState>,
    /// Reads that can no longer be confirmed (leadership lost): answer "not leader".
    pub failed_reads: Vec<u64>,
}

impl Ready {
    /// Whether step 3 has anything to write.
    pub fn must_persist(&self) -> bool {
        self.snapshot.is_some()
            || self.hard_state.is_some()
            || self.truncate_from.is_some()
            || !self.entries.is_empty()
    }
}
