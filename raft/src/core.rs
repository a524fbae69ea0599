//! The Raft state machine: one value per node, driven by `tick`, `step`,
//! `propose` and `read_index`, drained with `ready`.
//!
//! This file holds the value, its inputs and outputs, and the term rule
//! every message goes through first (§5.1). The rules themselves are by
//! topic:
//!
//! - `election`: timeouts, pre-vote and RequestVote (§5.2, §5.4.1; every rule
//!   for granting a vote is in one function there), and the role changes.
//! - `replication`: AppendEntries on both ends, the leader's flow control and
//!   heartbeats, check-quorum, and the commit rule (§5.3, §5.4.2).
//! - `snapshot`: InstallSnapshot on both ends (§7).
//! - `read_only`: linearizable reads by ReadIndex (§6.4 of the thesis).
//! - `membership`: configuration changes one server at a time, learners,
//!   leadership transfer, and who counts toward a majority (chapter 4 and
//!   §3.10 of the thesis).

mod election;
mod membership;
mod read_only;
mod replication;
mod snapshot;

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

pub use self::membership::{ChangeError, ConfChange, MemberProgress};
use self::read_only::ReadOnly;
use super::log::RaftLog;
use super::progress::{Progress, ProgressState};
use super::ready::{Ready, Role, RoleChange, SnapshotInstall};
use super::{
    AppendResponse, Body, Config, Entry, EntryKind, HardState, LogIndex, MemberRole, Membership,
    Message, NodeId, SnapshotMeta, SnapshotResponse, Term, VoteResponse,
};
use splitmix::Rng;

/// Where a node stands. A pre-candidate asks for pre-votes without having
/// changed its term; to the outside world it is still a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// The proposal was refused because this node is not the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotLeader {
    /// The leader this node knows of, if any: where to ask instead.
    pub leader: Option<NodeId>,
}

/// A snapshot of the core's externally visible state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role (a pre-candidate shows as a follower).
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader of that term, if known.
    pub leader: Option<NodeId>,
    /// Whom it voted for in that term.
    pub voted_for: Option<NodeId>,
    /// The highest index known committed.
    pub commit_index: LogIndex,
    /// The highest index handed out to be applied.
    pub applied_index: LogIndex,
    /// The first index still in the log (after the snapshot).
    pub first_index: LogIndex,
    /// The last index in the log.
    pub last_index: LogIndex,
    /// The last index the snapshot covers (0: none).
    pub snapshot_index: LogIndex,
    /// Every member of the configuration in force, voters and learners, sorted.
    pub members: Vec<NodeId>,
    /// The configuration in force (the latest in the log, §4.1).
    pub membership: Membership,
    /// This node's incarnation.
    pub incarnation: u64,
    /// Voters that lost their data and wait to be removed and added again
    /// (a leader knows them from their answers; any node knows it of itself).
    pub awaiting_readd: Vec<NodeId>,
    /// The voter a leader is handing its leadership to.
    pub transferee: Option<NodeId>,
}

/// One node's Raft state machine. Feed it with [`Raft::tick`],
/// [`Raft::step`], [`Raft::propose`] and [`Raft::read_index`]; whenever
/// [`Raft::has_ready`] says so, take [`Raft::ready`] and act on it in the
/// order [`Ready`] prescribes. It does no I/O and reads no clock.
pub struct Raft {
    cfg: Config,
    rng: Rng,
    term: Term,
    voted_for: Option<NodeId>,
    hard_state_dirty: bool,
    log: RaftLog,
    state: State,
    leader: Option<NodeId>,
    /// Ticks since the last valid message from a leader (followers) or since
    /// the last check-quorum round (leaders).
    election_elapsed: u32,
    randomized_timeout: u32,
    heartbeat_elapsed: u32,
    votes: HashMap<NodeId, bool>,
    progress: BTreeMap<NodeId, Progress>,
    /// New entries since the last `ready`: broadcast them once, batched.
    needs_broadcast: bool,
    msgs: Vec<Message>,
    role_changes: Vec<RoleChange>,
    last_reported: (Role, Term),
    snapshot_install: Option<SnapshotInstall>,
    reads: ReadOnly,
    /// The voter this leader is handing over to (§3.10), and for how many
    /// ticks it has been trying; proposals wait meanwhile.
    transferee: Option<NodeId>,
    transfer_elapsed: u32,
    timeout_now_sent: bool,
    /// The leader committed a configuration without itself: it hands over
    /// and steps down (§4.2.2).
    leaving: bool,
    /// The campaign under way was started by a TimeoutNow.
    transfer_campaign: bool,
    /// The log's configuration version last acted on, and the
    /// configuration then in force.
    seen_config_version: u64,
    seen_membership: Membership,
    /// The configuration in force changed since the last `Ready`.
    membership_changed: bool,
}

impl Raft {
    /// A core over state recovered from storage.
    pub fn new(
        cfg: Config,
        hard_state: HardState,
        snapshot: SnapshotMeta,
        entries: Vec<Entry>,
    ) -> Raft {
        let rng = Rng::new(cfg.seed ^ fxhash(cfg.id.as_str()));
        let term = hard_state.term;
        let mut snapshot = snapshot;
        if snapshot.membership.is_empty() {
            snapshot.membership = cfg.initial.clone();
        }
        let log = RaftLog::new(snapshot, entries);
        let seen_config_version = log.config_version();
        let seen_membership = log.membership().clone();
        let mut raft = Raft {
            rng,
            term,
            voted_for: hard_state.voted_for,
            hard_state_dirty: false,
            log,
            state: State::Follower,
            leader: None,
            election_elapsed: 0,
            randomized_timeout: 0,
            heartbeat_elapsed: 0,
            votes: HashMap::new(),
            progress: BTreeMap::new(),
            needs_broadcast: false,
            msgs: Vec::new(),
            role_changes: Vec::new(),
            last_reported: (Role::Follower, term),
            snapshot_install: None,
            reads: ReadOnly::default(),
            transferee: None,
            transfer_elapsed: 0,
            timeout_now_sent: false,
            leaving: false,
            transfer_campaign: false,
            seen_config_version,
            seen_membership,
            membership_changed: false,
            cfg,
        };
        raft.reset_election_timer();
        // Announce the starting role so the event log shows every node's term from the start.
        raft.role_changes.push(RoleChange {
            role: Role::Follower,
            term,
        });
        raft
    }

    // ---- inputs ----------------------------------------------------------

    /// One unit of time has passed.
    pub fn tick(&mut self) {
        match self.state {
            State::Leader => self.tick_leader(),
            _ => {
                self.election_elapsed += 1;
                // Learners and non-members never campaign (`campaign` checks).
                if self.election_elapsed >= self.randomized_timeout {
                    self.campaign();
                }
            }
        }
    }

    /// A message from a peer.
    ///
    /// Messages from nodes outside the configuration are taken too (§4.1:
    /// a new member hears from a leader it does not know yet); only the
    /// voters of the configuration count toward any majority.
    pub fn step(&mut self, m: Message) {
        if m.to != self.cfg.id || m.from == self.cfg.id {
            return;
        }
        // Figure 2, all servers: a newer term makes us a follower in it; a
        // message of an older term is answered with ours, so that its
        // sender learns it is behind, and otherwise ignored (§5.1). A vote
        // request is the exception: its term rules are with the other rules
        // of RequestVote, in `handle_vote_request`.
        let vote_request = matches!(m.body, Body::VoteRequest(_));
        if m.term < self.term && !vote_request {
            self.reply_stale(m);
            return;
        }
        if m.term > self.term && !vote_request {
            self.adopt_term(&m);
        }
        let Message {
            from, term, body, ..
        } = m;
        match body {
            Body::VoteRequest(req) => self.handle_vote_request(from, term, req),
            Body::VoteResponse(resp) => self.handle_vote_response(from, resp),
            Body::AppendRequest(req) => self.handle_append(from, req),
            Body::AppendResponse(resp) => self.handle_append_response(from, resp),
            Body::InstallSnapshot(meta) => self.handle_snapshot(from, meta),
            Body::SnapshotResponse(resp) => self.handle_snapshot_response(from, resp),
            Body::TimeoutNow => self.handle_timeout_now(from),
        }
    }

    /// Appends a client command if this node is the leader. The returned
    /// position identifies it: if a different entry is later applied at that
    /// index, the command was dropped.
    /// While it hands its leadership over, a leader refuses proposals
    /// ("not leader", no leader known yet).
    pub fn propose(&mut self, data: Bytes) -> Result<(LogIndex, Term), NotLeader> {
        if self.state != State::Leader {
            return Err(self.not_leader());
        }
        if self.transferee.is_some() {
            return Err(NotLeader { leader: None });
        }
        let index = self.log.last_index().next();
        self.log.append(Entry {
            index,
            term: self.term,
            kind: EntryKind::Normal,
            data,
        });
        self.needs_broadcast = true;
        Ok((index, self.term))
    }

    /// Storage made the log durable up to `index` (an entry of `term`).
    pub fn on_persisted(&mut self, index: LogIndex, term: Term) {
        self.log.persisted_to(index, term);
        if self.state == State::Leader {
            self.maybe_commit();
        }
    }

    /// The transport could not deliver to `peer`: stop pipelining to it and
    /// probe again, rather than wait for replies that will never come.
    pub fn report_unreachable(&mut self, peer: &NodeId) {
        if let Some(pr) = self.progress.get_mut(peer)
            && pr.state == ProgressState::Replicate
        {
            pr.become_probe();
        }
    }

    /// The transport finished (or failed) streaming a snapshot to `peer`.
    pub fn report_snapshot(&mut self, peer: &NodeId, delivered: bool) {
        if let Some(pr) = self.progress.get_mut(peer)
            && matches!(pr.state, ProgressState::Snapshot(_))
            && !delivered
        {
            pr.become_probe();
        }
    }

    /// The caller has durably saved a snapshot of the state machine up to
    /// `meta.index` (≤ applied): forget the log entries it covers. Its
    /// membership is [`Raft::membership_at`] that index.
    pub fn compact(&mut self, meta: SnapshotMeta) {
        debug_assert!(
            self.log.membership_at(meta.index) == Some(&meta.membership)
                || meta.membership.is_empty(),
            "a snapshot's membership is the configuration at its index"
        );
        self.log.compact(meta);
    }

    // ---- output ------------------------------------------------------------

    /// Whether [`Raft::ready`] has anything to hand out.
    pub fn has_ready(&self) -> bool {
        !self.msgs.is_empty()
            || self.needs_broadcast
            || !self.role_changes.is_empty()
            || self.hard_state_dirty
            || self.log.has_unstable()
            || self.log.has_committed_unapplied()
            || self.snapshot_install.is_some()
            || (self.state == State::Leader && self.read_round_due())
            || self.reads.has_answers()
            || self.membership_changed
    }

    /// Everything the caller must now persist, send and apply; see [`Ready`].
    pub fn ready(&mut self) -> Ready {
        if self.state == State::Leader {
            if self.needs_broadcast {
                self.broadcast_append();
            }
            self.start_read_round();
        }
        self.needs_broadcast = false;

        let hard_state = self.hard_state_dirty.then(|| HardState {
            term: self.term,
            voted_for: self.voted_for.clone(),
        });
        self.hard_state_dirty = false;
        let (truncate_from, entries) = self.log.take_unstable();

        // With a new term or vote to persist, nothing may leave before it is
        // durable; otherwise only the leader's appends may go early.
        let mut messages = Vec::new();
        let mut persisted_messages = Vec::new();
        for m in self.msgs.drain(..) {
            if hard_state.is_none() && m.is_leader_append() {
                messages.push(m);
            } else {
                persisted_messages.push(m);
            }
        }
        let (reads, failed_reads) = self.reads.take_answers();
        let membership =
            std::mem::take(&mut self.membership_changed).then(|| self.log.membership().clone());
        Ready {
            role_changes: std::mem::take(&mut self.role_changes),
            membership,
            messages,
            snapshot: self.snapshot_install.take(),
            hard_state,
            truncate_from,
            entries,
            persisted_messages,
            committed: self.log.take_committed(),
            reads,
            failed_reads,
        }
    }

    // ---- looking in ----------------------------------------------------------

    /// The state a client or operator may ask about.
    pub fn status(&self) -> Status {
        let membership = self.log.membership().clone();
        let members = membership.members().iter().map(|m| m.id.clone()).collect();
        Status {
            id: self.cfg.id.clone(),
            role: self.role(),
            term: self.term,
            leader: self.leader.clone(),
            voted_for: self.voted_for.clone(),
            commit_index: self.log.committed,
            applied_index: self.log.applied,
            first_index: self.log.first_index(),
            last_index: self.log.last_index(),
            snapshot_index: self.log.snapshot().index,
            members,
            membership,
            incarnation: self.cfg.incarnation,
            awaiting_readd: self.awaiting_readd(),
            transferee: self.transferee.clone(),
        }
    }

    /// The configuration in force: the latest in the log (§4.1).
    pub fn membership(&self) -> &Membership {
        self.log.membership()
    }

    /// The configuration at `index` (applied, and at or after the
    /// snapshot), for a snapshot taken there; `None` when this node does
    /// not know it (it joined after that point): do not snapshot there.
    pub fn membership_at(&self, index: LogIndex) -> Option<&Membership> {
        self.log.membership_at(index)
    }

    /// What this node is in the configuration in force, as it sees itself
    /// (see [`Config::joined`]): `None` when it is not a member.
    pub fn own_role(&self) -> Option<MemberRole> {
        let incarnation = self.cfg.joined.then_some(self.cfg.incarnation);
        self.log.membership().role_of(&self.cfg.id, incarnation)
    }

    /// Whether this node is a voter of the configuration in force.
    pub fn is_voter(&self) -> bool {
        self.own_role() == Some(MemberRole::Voter)
    }

    /// This node.
    pub fn id(&self) -> &NodeId {
        &self.cfg.id
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The role as the outside world sees it.
    pub fn role(&self) -> Role {
        match self.state {
            State::Follower | State::PreCandidate => Role::Follower,
            State::Candidate => Role::Candidate,
            State::Leader => Role::Leader,
        }
    }

    /// The leader of the current term, if known.
    pub fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }

    /// The in-memory log.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    /// The leader's view of each follower (empty unless leading).
    #[cfg(test)]
    pub(crate) fn progress(&self) -> &BTreeMap<NodeId, Progress> {
        &self.progress
    }

    /// The election timeout drawn for the current term, in ticks.
    pub fn election_timeout(&self) -> u32 {
        self.randomized_timeout
    }

    // ---- terms (§5.1) --------------------------------------------------------

    /// A message of a newer term: its sender knows of an election we missed.
    fn adopt_term(&mut self, m: &Message) {
        match &m.body {
            // A granted pre-vote carries the term its candidate is about to
            // campaign in: nobody is in that term yet.
            Body::VoteResponse(VoteResponse {
                pre_vote: true,
                granted: true,
            }) => {}
            // Only the leader of a term sends these: follow it.
            Body::AppendRequest(_) | Body::InstallSnapshot(_) => {
                self.become_follower(m.term, Some(m.from.clone()));
            }
            _ => self.become_follower(m.term, None),
        }
    }

    /// A message from an older term. Answer requests so a deposed leader
    /// learns the current term and steps down (§5.1).
    fn reply_stale(&mut self, m: Message) {
        match m.body {
            Body::AppendRequest(req) => {
                let body = Body::AppendResponse(AppendResponse {
                    success: false,
                    index: LogIndex(0),
                    conflict_term: Term(0),
                    conflict_index: LogIndex(0),
                    read_ctx: req.read_ctx,
                    last_log_index: self.log.last_index(),
                    incarnation: self.cfg.incarnation,
                    rejoining: self.rejoining(),
                });
                self.send(m.from, body);
            }
            Body::InstallSnapshot(_) => {
                let body = Body::SnapshotResponse(SnapshotResponse {
                    index: self.log.last_index(),
                    accepted: false,
                });
                self.send(m.from, body);
            }
            _ => {}
        }
    }

    // ---- shared by the topics ----------------------------------------------

    fn not_leader(&self) -> NotLeader {
        NotLeader {
            leader: self.leader.clone(),
        }
    }

    fn send(&mut self, to: NodeId, body: Body) {
        self.msgs.push(Message {
            from: self.cfg.id.clone(),
            to,
            term: self.term,
            body,
        });
    }
}

/// Mixes the node id into the seed so nodes built from one seed still differ.
fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3)
    })
}
