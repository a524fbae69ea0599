//! Messages between cores. The transport turns them into protobuf and back;
//! the simulator delivers them as they are.

use super::{Entry, LogIndex, NodeId, SnapshotMeta, Term};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would campaign in).
    pub term: Term,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    VoteRequest {
        last_log_index: LogIndex,
        last_log_term: Term,
        pre_vote: bool,
    },
    VoteResponse {
        granted: bool,
        pre_vote: bool,
    },
    /// Also the heartbeat, with no entries (§5.2).
    AppendRequest {
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
        /// Non-zero: acknowledging this confirms leadership for that ReadIndex round.
        read_ctx: u64,
    },
    AppendResponse {
        success: bool,
        /// Success: last index known to match. Rejection: the rejected prev_log_index.
        index: LogIndex,
        /// Rejection hint (§5.3, "fast backup"): the follower's term at the
        /// rejected index (0 when its log is shorter) and its first index of that term.
        conflict_term: Term,
        conflict_index: LogIndex,
        read_ctx: u64,
        last_log_index: LogIndex,
    },
    /// The leader offers its snapshot; the transport carries the image itself.
    InstallSnapshot {
        meta: SnapshotMeta,
    },
    SnapshotResponse {
        /// The follower's last log index after handling the snapshot.
        index: LogIndex,
        accepted: bool,
    },
}

impl Message {
    /// Whether this is a leader's AppendEntries, the one kind of message that
    /// may leave before the sender's own log write is durable (§10.2.1 of the
    /// Raft thesis): the leader counts itself only once its write is durable.
    pub fn is_leader_append(&self) -> bool {
        matches!(self.body, Body::AppendRequest { .. })
    }
}
