//! Messages between cores: the RPCs of Figure 2 (RequestVote, AppendEntries)
//! and of §7 (InstallSnapshot), each request and reply as its own type. The
//! transport turns them into protobuf and back; the simulator delivers them
//! as they are.

use super::{Entry, LogIndex, NodeId, SnapshotMeta, Term};

/// One message from one core to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The recipient.
    pub to: NodeId,
    /// The sender's term (for a pre-vote request: the term it would campaign in).
    pub term: Term,
    /// What the message says.
    pub body: Body,
}

/// The kinds of message, one per RPC request and reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// RequestVote (§5.2), or its pre-vote rehearsal (§9.6 of the thesis).
    VoteRequest(VoteRequest),
    /// The answer to a [`Body::VoteRequest`].
    VoteResponse(VoteResponse),
    /// AppendEntries (§5.3); with no entries, the heartbeat.
    AppendRequest(AppendRequest),
    /// The answer to a [`Body::AppendRequest`].
    AppendResponse(AppendResponse),
    /// The leader offers its snapshot (§7); the transport carries the image
    /// itself, so the core sees only where it ends.
    InstallSnapshot(SnapshotMeta),
    /// The answer to a [`Body::InstallSnapshot`].
    SnapshotResponse(SnapshotResponse),
    /// "Campaign now": a leader handing its leadership over (§3.10 of the
    /// thesis) to a voter whose log is as long as its own.
    TimeoutNow,
}

/// "Vote for me": the candidate's term is the message's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteRequest {
    /// Where the candidate's log ends, for the up-to-date check (§5.4.1).
    pub last_log_index: LogIndex,
    /// The term of the candidate's last entry.
    pub last_log_term: Term,
    /// "Would you vote for me?", asked before disrupting anyone with a new
    /// term: a granted pre-vote changes nothing on the voter.
    pub pre_vote: bool,
    /// The candidate campaigns because the leader told it to (TimeoutNow):
    /// voters that hear from that leader vote anyway (§3.10 of the thesis).
    pub transfer: bool,
    /// The incarnation under which the candidate's configuration counts
    /// the recipient as a voter (0: not named). A node that joined with an
    /// empty disk votes only when this is its own: a vote asked of the
    /// incarnation that lost its data is refused.
    pub incarnation: u64,
}

/// A vote, or the refusal of one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteResponse {
    /// Whether the vote is given.
    pub granted: bool,
    /// Whether it answers a pre-vote.
    pub pre_vote: bool,
}

/// The leader's entries for a follower, after the entry they must follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendRequest {
    /// The index of the entry just before `entries`.
    pub prev_log_index: LogIndex,
    /// Its term: the follower accepts only if its log has that entry (§5.3).
    pub prev_log_term: Term,
    /// New entries, from `prev_log_index + 1` on; empty for a heartbeat.
    pub entries: Vec<Entry>,
    /// The leader's commit index.
    pub leader_commit: LogIndex,
    /// Non-zero: acknowledging this confirms leadership for that ReadIndex round.
    pub read_ctx: u64,
}

/// A follower's answer to an [`AppendRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendResponse {
    /// Whether the follower's log matched at the request's previous entry.
    pub success: bool,
    /// Success: last index known to match. Rejection: the rejected prev_log_index.
    pub index: LogIndex,
    /// Rejection hint (§5.3, "fast backup"): the follower's term at the
    /// rejected index (0 when its log is shorter)...
    pub conflict_term: Term,
    /// ...and its first index of that term (or its last index + 1).
    pub conflict_index: LogIndex,
    /// The request's `read_ctx`, echoed.
    pub read_ctx: u64,
    /// Where the follower's log ends.
    pub last_log_index: LogIndex,
    /// The follower's incarnation (see [`Config::incarnation`](crate::Config::incarnation)).
    pub incarnation: u64,
    /// The follower lost its data and is not (yet) a member under its new
    /// incarnation: the leader must not count it, however the
    /// configuration lists its id, until it is removed and added again.
    pub rejoining: bool,
}

impl AppendResponse {
    /// A success: the follower's log matches the leader's up to `index`.
    pub fn success(index: LogIndex, read_ctx: u64, last_log_index: LogIndex) -> AppendResponse {
        AppendResponse {
            success: true,
            index,
            conflict_term: Term(0),
            conflict_index: LogIndex(0),
            read_ctx,
            last_log_index,
            incarnation: 0,
            rejoining: false,
        }
    }
}

/// A follower's answer to an InstallSnapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotResponse {
    /// The follower's log matches the leader's up to here: the snapshot's
    /// index if it installed it, else its own commit index.
    pub index: LogIndex,
    /// Whether the snapshot was taken (an old or duplicated one is not).
    pub accepted: bool,
}

impl Message {
    /// Whether this is a leader's AppendEntries, the one kind of message that
    /// may leave before the sender's own log write is durable (§10.2.1 of the
    /// Raft thesis): the leader counts itself only once its write is durable.
    pub fn is_leader_append(&self) -> bool {
        matches!(self.body, Body::AppendRequest(_))
    }
}
