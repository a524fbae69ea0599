//! The Raft state machine: one value per node, driven by `tick`, `step`,
//! `propose` and `read_index`, drained with `ready`.
//!
//! Map of this file: configuration and construction; the public inputs; term
//! handling common to every message (§5.1); one handler per message kind;
//! the leader's replication and commit rules (§5.3, §5.4); ReadIndex (§6.4 of
//! the thesis); the role transitions (`become_*`).

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;

use super::log::RaftLog;
use super::progress::{Progress, ProgressState};
use super::quorum::{self, VoteResult};
use super::ready::{ReadState, Ready, Role, RoleChange, SnapshotInstall};
use super::rng::Rng;
use super::{Body, Entry, EntryKind, HardState, LogIndex, Message, NodeId, SnapshotMeta, Term};

#[derive(Clone, Debug)]
pub struct Config {
    pub id: NodeId,
    /// The other members of the cluster.
    pub peers: Vec<NodeId>,
    /// T: a follower that hears no leader for a random number of ticks in
    /// [T, 2T) starts an election.
    pub election_ticks: u32,
    pub heartbeat_ticks: u32,
    /// Ask "would you vote for me?" before disrupting the cluster with a new
    /// term (§9.6 of the thesis), so a node cut off for a while rejoins quietly.
    pub pre_vote: bool,
    /// A leader that has not heard from a majority for T ticks steps down, and
    /// a follower that heard from a leader within T ticks ignores vote requests.
    pub check_quorum: bool,
    /// Upper bound on the entry bytes of one AppendEntries.
    pub max_append_bytes: usize,
    /// AppendEntries in flight per follower once its log matches.
    pub max_inflight: usize,
    pub seed: u64,
    /// Deliberate bugs for the harness's self-test; always off unless the
    /// node is built with the `bugs` feature and asked for them.
    pub bugs: SeededBugs,
}

/// The core's share of the seeded bugs (the node's `--bug NAME`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SeededBugs {
    /// Grant votes without the "candidate's log is up to date" check.
    pub vote_any_log: bool,
    /// Count replicas of earlier terms' entries toward commitment.
    pub commit_old_term: bool,
}

impl SeededBugs {
    fn vote_any_log(&self) -> bool {
        cfg!(feature = "bugs") && self.vote_any_log
    }

    fn commit_old_term(&self) -> bool {
        cfg!(feature = "bugs") && self.commit_old_term
    }
}

impl Config {
    pub fn new(id: NodeId, peers: Vec<NodeId>) -> Config {
        Config {
            id,
            peers,
            election_ticks: 30,
            heartbeat_ticks: 5,
            pre_vote: true,
            check_quorum: true,
            max_append_bytes: 1 << 20,
            max_inflight: 64,
            seed: 0,
            bugs: SeededBugs::default(),
        }
    }
}

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
    pub leader: Option<NodeId>,
}

/// A snapshot of the core's externally visible state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub voted_for: Option<NodeId>,
    pub commit_index: LogIndex,
    pub applied_index: LogIndex,
    pub first_index: LogIndex,
    pub last_index: LogIndex,
    pub snapshot_index: LogIndex,
    pub members: Vec<NodeId>,
}

/// A group of reads that one heartbeat round confirms.
#[derive(Debug)]
struct ReadRound {
    seq: u64,
    index: LogIndex,
    ctxs: Vec<u64>,
}

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
    pending_reads: Vec<u64>,
    read_rounds: VecDeque<ReadRound>,
    read_seq: u64,
    ready_reads: Vec<ReadState>,
    failed_reads: Vec<u64>,
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
        let mut raft = Raft {
            rng,
            term,
            voted_for: hard_state.voted_for,
            hard_state_dirty: false,
            log: RaftLog::new(snapshot, entries),
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
            pending_reads: Vec::new(),
            read_rounds: VecDeque::new(),
            read_seq: 0,
            ready_reads: Vec::new(),
            failed_reads: Vec::new(),
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
                if self.election_elapsed >= self.randomized_timeout {
                    self.campaign();
                }
            }
        }
    }

    /// A message from a peer.
    pub fn step(&mut self, m: Message) {
        if m.to != self.cfg.id || !self.cfg.peers.contains(&m.from) {
            return;
        }
        if m.term > self.term {
            match &m.body {
                // A pre-vote never changes anyone's term.
                Body::VoteRequest { pre_vote: true, .. } => {}
                Body::VoteResponse {
                    pre_vote: true,
                    granted: true,
                } => {}
                // §9.6 / check-quorum: a node that hears from a live leader
                // ignores a disruptive candidate rather than adopting its term.
                Body::VoteRequest {
                    pre_vote: false, ..
                } if self.in_lease() => return,
                Body::AppendRequest { .. } | Body::InstallSnapshot { .. } => {
                    self.become_follower(m.term, Some(m.from.clone()));
                }
                _ => self.become_follower(m.term, None),
            }
        } else if m.term < self.term {
            self.step_stale(m);
            return;
        }
        match m.body {
            Body::VoteRequest {
                last_log_index,
                last_log_term,
                pre_vote,
            } => self.handle_vote_request(m.from, m.term, last_log_index, last_log_term, pre_vote),
            Body::VoteResponse { granted, pre_vote } => {
                self.handle_vote_response(m.from, granted, pre_vote)
            }
            Body::AppendRequest {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_ctx,
            } => self.handle_append(
                m.from,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_ctx,
            ),
            Body::AppendResponse {
                success,
                index,
                conflict_term,
                conflict_index,
                read_ctx,
                ..
            } => self.handle_append_response(
                m.from,
                success,
                index,
                conflict_term,
                conflict_index,
                read_ctx,
            ),
            Body::InstallSnapshot { meta } => self.handle_snapshot(m.from, meta),
            Body::SnapshotResponse { index, accepted } => {
                self.handle_snapshot_response(m.from, index, accepted)
            }
        }
    }

    /// Appends a client command if this node is the leader. The returned
    /// position identifies it: if a different entry is later applied at that
    /// index, the command was dropped.
    pub fn propose(&mut self, data: Bytes) -> Result<(LogIndex, Term), NotLeader> {
        if self.state != State::Leader {
            return Err(NotLeader {
                leader: self.leader.clone(),
            });
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

    /// Asks for a linearizable read point. When a majority has confirmed this
    /// node is still the leader, `ctx` comes back in [`Ready::reads`].
    pub fn read_index(&mut self, ctx: u64) -> Result<(), NotLeader> {
        if self.state != State::Leader {
            return Err(NotLeader {
                leader: self.leader.clone(),
            });
        }
        self.pending_reads.push(ctx);
        Ok(())
    }

    /// Whether a ReadIndex round is waiting for its heartbeats' answers:
    /// reads asked for now wait for it to end (see `start_read_round`).
    pub fn read_round_in_flight(&self) -> bool {
        !self.read_rounds.is_empty()
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
    /// `meta.index` (≤ applied): forget the log entries it covers.
    pub fn compact(&mut self, meta: SnapshotMeta) {
        self.log.compact(meta);
    }

    pub fn has_ready(&self) -> bool {
        !self.msgs.is_empty()
            || self.needs_broadcast
            || !self.role_changes.is_empty()
            || self.hard_state_dirty
            || self.log.has_unstable()
            || self.log.has_committed_unapplied()
            || self.snapshot_install.is_some()
            || (!self.pending_reads.is_empty()
                && self.state == State::Leader
                && self.read_rounds.is_empty()
                && self.committed_in_current_term())
            || !self.ready_reads.is_empty()
            || !self.failed_reads.is_empty()
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
        Ready {
            role_changes: std::mem::take(&mut self.role_changes),
            messages,
            snapshot: self.snapshot_install.take(),
            hard_state,
            truncate_from,
            entries,
            persisted_messages,
            committed: self.log.take_committed(),
            reads: std::mem::take(&mut self.ready_reads),
            failed_reads: std::mem::take(&mut self.failed_reads),
        }
    }

    pub fn status(&self) -> Status {
        let mut members = vec![self.cfg.id.clone()];
        members.extend(self.cfg.peers.iter().cloned());
        members.sort();
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
        }
    }

    pub fn id(&self) -> &NodeId {
        &self.cfg.id
    }

    pub fn term(&self) -> Term {
        self.term
    }

    pub fn role(&self) -> Role {
        match self.state {
            State::Follower | State::PreCandidate => Role::Follower,
            State::Candidate => Role::Candidate,
            State::Leader => Role::Leader,
        }
    }

    pub fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }

    pub fn log(&self) -> &RaftLog {
        &self.log
    }

    #[cfg(test)]
    pub fn debug_progress(&self) -> Vec<(NodeId, Progress)> {
        self.progress
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn election_timeout(&self) -> u32 {
        self.randomized_timeout
    }

    // ---- term handling ---------------------------------------------------

    /// A message from an older term. Answer requests so a deposed leader or a
    /// stale candidate learns the current term and steps down (§5.1).
    fn step_stale(&mut self, m: Message) {
        match m.body {
            Body::AppendRequest { read_ctx, .. } => {
                let body = Body::AppendResponse {
                    success: false,
                    index: LogIndex(0),
                    conflict_term: Term(0),
                    conflict_index: LogIndex(0),
                    read_ctx,
                    last_log_index: self.log.last_index(),
                };
                self.send(m.from, body);
            }
            Body::VoteRequest { pre_vote, .. } => {
                self.send(
                    m.from,
                    Body::VoteResponse {
                        granted: false,
                        pre_vote,
                    },
                );
            }
            Body::InstallSnapshot { .. } => {
                let body = Body::SnapshotResponse {
                    index: self.log.last_index(),
                    accepted: false,
                };
                self.send(m.from, body);
            }
            _ => {}
        }
    }

    /// Heard from a leader recently enough that an election now would only disrupt it.
    fn in_lease(&self) -> bool {
        self.cfg.check_quorum
            && self.leader.is_some()
            && self.election_elapsed < self.cfg.election_ticks
    }

    // ---- handlers --------------------------------------------------------

    fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        last_log_index: LogIndex,
        last_log_term: Term,
        pre_vote: bool,
    ) {
        let up_to_date =
            self.cfg.bugs.vote_any_log() || self.log.is_up_to_date(last_log_index, last_log_term);
        let granted = if pre_vote {
            term > self.term && up_to_date && !self.in_lease()
        } else {
            // §5.2, §5.4.1: one vote per term, only for a log at least as up-to-date.
            let free = self.voted_for.as_ref().is_none_or(|v| *v == from) && self.leader.is_none();
            free && up_to_date
        };
        if granted && !pre_vote {
            self.voted_for = Some(from.clone());
            self.hard_state_dirty = true;
            // Granting a vote resets the election timer (Figure 2).
            self.election_elapsed = 0;
        }
        // A granted pre-vote carries the candidate's prospective term so it is
        // not mistaken for a stale reply; everything else carries ours.
        let reply_term = if granted && pre_vote { term } else { self.term };
        self.msgs.push(Message {
            from: self.cfg.id.clone(),
            to: from,
            term: reply_term,
            body: Body::VoteResponse { granted, pre_vote },
        });
    }

    fn handle_vote_response(&mut self, from: NodeId, granted: bool, pre_vote: bool) {
        let campaigning = match self.state {
            State::PreCandidate => pre_vote,
            State::Candidate => !pre_vote,
            _ => false,
        };
        if !campaigning {
            return;
        }
        self.votes.insert(from, granted);
        let yes = self.votes.values().filter(|&&g| g).count();
        let no = self.votes.len() - yes;
        match quorum::vote_result(yes, no, self.cfg.peers.len() + 1) {
            VoteResult::Won if pre_vote => self.become_candidate(),
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    fn handle_append(
        &mut self,
        from: NodeId,
        mut prev_index: LogIndex,
        mut prev_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: LogIndex,
        read_ctx: u64,
    ) {
        if self.state != State::Follower || self.leader.as_ref() != Some(&from) {
            // Someone won this term: a candidate gives up, and everyone follows the winner.
            self.become_follower(self.term, Some(from.clone()));
        }
        self.election_elapsed = 0;

        // Entries at or below our commit index match the leader's log (Leader
        // Completeness), and may be compacted here: skip them.
        let committed = self.log.committed;
        if prev_index < committed {
            entries.retain(|e| e.index > committed);
            prev_index = committed;
            prev_term = self.log.term(committed).unwrap_or(prev_term);
        }

        let body = if self.log.matches(prev_index, prev_term) {
            let last_new = self.log.merge(prev_index, &entries);
            // The leader's commit index may be ahead of what this request proved matches.
            self.log.commit_to(leader_commit.min(last_new));
            Body::AppendResponse {
                success: true,
                index: last_new,
                conflict_term: Term(0),
                conflict_index: LogIndex(0),
                read_ctx,
                last_log_index: self.log.last_index(),
            }
        } else {
            let (conflict_term, conflict_index) = match self.log.term(prev_index) {
                Some(t) => (t, self.log.first_index_of_term(prev_index)),
                None => (Term(0), self.log.last_index().next().min(prev_index)),
            };
            Body::AppendResponse {
                success: false,
                index: prev_index,
                conflict_term,
                conflict_index,
                read_ctx,
                last_log_index: self.log.last_index(),
            }
        };
        self.send(from, body);
    }

    fn handle_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        index: LogIndex,
        conflict_term: Term,
        conflict_index: LogIndex,
        read_ctx: u64,
    ) {
        if self.state != State::Leader {
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        if read_ctx > pr.read_acked {
            pr.read_acked = read_ctx;
            self.release_reads();
        }
        let pr = self.progress.get_mut(&from).expect("progress exists");
        if success {
            let advanced = pr.on_success(index);
            if pr.state == ProgressState::Probe {
                pr.become_replicate();
            }
            if advanced {
                self.maybe_commit();
            }
            self.send_appends(&from);
        } else {
            // Back up a whole term at a time using the follower's hint.
            let hint = if conflict_term.0 > 0 {
                match self.log.last_index_of_term(conflict_term) {
                    Some(last) if last < index => last.next(),
                    _ => conflict_index,
                }
            } else {
                conflict_index
            };
            let pr = self.progress.get_mut(&from).expect("progress exists");
            if pr.on_reject(index, hint) {
                self.send_appends(&from);
            }
        }
    }

    fn handle_snapshot(&mut self, from: NodeId, meta: SnapshotMeta) {
        if self.state != State::Follower || self.leader.as_ref() != Some(&from) {
            self.become_follower(self.term, Some(from.clone()));
        }
        self.election_elapsed = 0;
        // §7. The reply's index is one the leader may count as matching: the
        // snapshot's (it is committed), or our commit index (committed
        // entries are in every later leader's log). Never our last index:
        // entries after the snapshot may be stale ones from an old term.
        let (accepted, index) = if meta.index <= self.log.committed {
            // An old, duplicated or reordered snapshot would roll the state
            // machine back: refuse it, and say how far we are.
            (false, self.log.committed)
        } else if self.log.matches(meta.index, meta.term) {
            // We hold the snapshot's last entry, hence the whole prefix it
            // covers (Log Matching): commit it and keep the entries after it,
            // instead of replacing the state machine.
            self.log.commit_to(meta.index);
            (true, meta.index)
        } else {
            let index = meta.index;
            self.log.restore(meta.clone());
            self.snapshot_install = Some(SnapshotInstall {
                meta,
                from: from.clone(),
            });
            (true, index)
        };
        self.send(from, Body::SnapshotResponse { index, accepted });
    }

    fn handle_snapshot_response(&mut self, from: NodeId, index: LogIndex, accepted: bool) {
        if self.state != State::Leader {
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        let _ = accepted;
        // Either way the follower's log matches ours up to `index`: its
        // committed prefix, or the snapshot it just installed.
        let index = index.min(self.log.last_index());
        pr.on_success(index);
        // A late or duplicated reply must not disturb a pipeline that has
        // moved on; only a pending transfer ends here.
        if matches!(pr.state, ProgressState::Snapshot(_)) {
            pr.become_probe();
            pr.next_index = pr.match_index.next();
        }
        self.maybe_commit();
        self.send_appends(&from);
    }

    // ---- leader ----------------------------------------------------------

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        for pr in self.progress.values_mut() {
            if !pr.inflight.is_empty() || matches!(pr.state, ProgressState::Snapshot(_)) {
                pr.stalled_ticks += 1;
            }
        }
        if self.election_elapsed >= self.cfg.election_ticks {
            self.election_elapsed = 0;
            if self.cfg.check_quorum {
                let active = 1 + self.progress.values().filter(|p| p.recent_active).count();
                if active < quorum::majority(self.cfg.peers.len() + 1) {
                    self.become_follower(self.term, None);
                    return;
                }
                for pr in self.progress.values_mut() {
                    pr.recent_active = false;
                }
            }
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.recover_stalled();
            self.broadcast_heartbeat();
        }
    }

    /// Requests can be lost without a word (a partition, a deadline). A
    /// pipeline that made no progress for a while, or a probe that got no
    /// answer by the next heartbeat, is sent again.
    fn recover_stalled(&mut self) {
        let stall_limit = 2 * self.cfg.heartbeat_ticks.max(1);
        let snapshot_limit = 4 * self.cfg.election_ticks.max(1);
        let peers: Vec<NodeId> = self.progress.keys().cloned().collect();
        for peer in peers {
            let pr = self.progress.get_mut(&peer).expect("progress exists");
            match pr.state {
                ProgressState::Probe => pr.probe_sent = false,
                ProgressState::Replicate if pr.stalled_ticks >= stall_limit => pr.become_probe(),
                ProgressState::Snapshot(_) if pr.stalled_ticks >= snapshot_limit => {
                    pr.become_probe()
                }
                _ => continue,
            }
            self.send_appends(&peer);
        }
    }

    fn broadcast_heartbeat(&mut self) {
        let peers: Vec<NodeId> = self.cfg.peers.clone();
        for peer in peers {
            self.send_heartbeat(peer);
        }
    }

    fn send_heartbeat(&mut self, peer: NodeId) {
        let pr = &self.progress[&peer];
        // Anchor the heartbeat at what the follower is known to hold so it
        // is accepted even while appends are still in flight.
        let (prev_index, prev_term) = match self.log.term(pr.match_index) {
            Some(t) => (pr.match_index, t),
            None => (LogIndex(0), Term(0)),
        };
        let body = Body::AppendRequest {
            prev_log_index: prev_index,
            prev_log_term: prev_term,
            entries: Vec::new(),
            leader_commit: self.log.committed.min(pr.match_index),
            read_ctx: self.read_seq,
        };
        self.send(peer, body);
    }

    fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = self.cfg.peers.clone();
        for peer in peers {
            self.send_appends(&peer);
        }
    }

    /// Sends `peer` what it lacks, as far as its flow control allows.
    fn send_appends(&mut self, peer: &NodeId) {
        loop {
            let pr = &self.progress[peer];
            if pr.is_paused(self.cfg.max_inflight) {
                return;
            }
            let prev_index = pr.next_index.prev();
            let Some(prev_term) = self.log.term(prev_index) else {
                // The follower needs entries we compacted away (§7).
                let meta = self.log.snapshot().clone();
                let pr = self.progress.get_mut(peer).expect("progress exists");
                pr.become_snapshot(meta.index);
                self.send(peer.clone(), Body::InstallSnapshot { meta });
                return;
            };
            let entries = self.log.slice(pr.next_index, self.cfg.max_append_bytes);
            let probing = pr.state == ProgressState::Probe;
            // A matched follower with nothing new needs no message: the next
            // heartbeat carries the commit index.
            if entries.is_empty() && !probing {
                return;
            }
            let last = entries.last().map_or(prev_index, |e| e.index);
            let body = Body::AppendRequest {
                prev_log_index: prev_index,
                prev_log_term: prev_term,
                entries,
                leader_commit: self.log.committed,
                read_ctx: 0,
            };
            self.send(peer.clone(), body);
            let pr = self.progress.get_mut(peer).expect("progress exists");
            pr.sent(last);
            if probing {
                return;
            }
        }
    }

    /// §5.3, §5.4.2: commit the highest index stored on a majority, but only
    /// if it is an entry of the current term (Figure 8); earlier entries are
    /// then committed with it.
    fn maybe_commit(&mut self) -> bool {
        let mut matches: Vec<LogIndex> = self.progress.values().map(|p| p.match_index).collect();
        matches.push(self.log.persisted());
        let index = quorum::committed_index(matches);
        let current_term = self.log.term(index) == Some(self.term);
        if index > self.log.committed && (current_term || self.cfg.bugs.commit_old_term()) {
            self.log.commit_to(index);
            true
        } else {
            false
        }
    }

    fn committed_in_current_term(&self) -> bool {
        self.log.term(self.log.committed) == Some(self.term)
    }

    // ---- ReadIndex -------------------------------------------------------

    /// Reads asked for since the last round share one heartbeat round. A new
    /// leader first waits for its no-op to commit: only then is its commit
    /// index known to cover every earlier acknowledged write.
    ///
    /// One round is in flight at a time: reads that arrive meanwhile wait
    /// for it to end and then share the next. Under load this makes rounds
    /// as large as the round trip allows instead of one per driver turn, each
    /// costing a message to and from every follower. (A round whose
    /// heartbeats were lost is confirmed by the next periodic heartbeat,
    /// which carries the latest round's number.)
    fn start_read_round(&mut self) {
        if self.pending_reads.is_empty()
            || !self.read_rounds.is_empty()
            || !self.committed_in_current_term()
        {
            return;
        }
        self.read_seq += 1;
        self.read_rounds.push_back(ReadRound {
            seq: self.read_seq,
            index: self.log.committed,
            ctxs: std::mem::take(&mut self.pending_reads),
        });
        if self.cfg.peers.is_empty() {
            self.release_reads();
        } else {
            self.send_read_heartbeats();
        }
    }

    /// A round needs the acks of a majority, not of everyone: its heartbeats
    /// go to just enough followers, those that answered the latest rounds.
    /// This spares the other followers (and the leader their answers) most
    /// of the read traffic. A chosen follower that does not answer is
    /// covered by the periodic heartbeat, which goes to all and carries the
    /// latest round's number; whoever answers it is chosen next.
    fn send_read_heartbeats(&mut self) {
        let needed = quorum::majority(self.cfg.peers.len() + 1) - 1;
        let mut peers: Vec<NodeId> = self.cfg.peers.clone();
        // Stable: among equals, configuration order.
        peers.sort_by_key(|p| std::cmp::Reverse(self.progress[p].read_acked));
        for peer in peers.into_iter().take(needed) {
            self.send_heartbeat(peer);
        }
    }

    fn release_reads(&mut self) {
        let voters = self.cfg.peers.len() + 1;
        while let Some(round) = self.read_rounds.front() {
            let acks = 1 + self
                .progress
                .values()
                .filter(|p| p.read_acked >= round.seq)
                .count();
            if acks < quorum::majority(voters) {
                break;
            }
            let round = self.read_rounds.pop_front().expect("front exists");
            self.ready_reads
                .extend(round.ctxs.into_iter().map(|ctx| ReadState {
                    ctx,
                    index: round.index,
                }));
        }
    }

    fn fail_reads(&mut self) {
        self.failed_reads.append(&mut self.pending_reads);
        for round in self.read_rounds.drain(..) {
            self.failed_reads.extend(round.ctxs);
        }
    }

    // ---- transitions -----------------------------------------------------

    fn campaign(&mut self) {
        if self.cfg.pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate();
        }
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.hard_state_dirty = true;
        }
        if self.state == State::Leader {
            self.fail_reads();
        }
        self.state = State::Follower;
        self.leader = leader;
        self.progress.clear();
        self.votes.clear();
        self.reset_election_timer();
        self.report_role();
    }

    fn become_pre_candidate(&mut self) {
        self.state = State::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.cfg.id.clone(), true);
        self.reset_election_timer();
        if self.cfg.peers.is_empty() {
            self.become_candidate();
            return;
        }
        self.request_votes(self.term.0 + 1, true);
    }

    fn become_candidate(&mut self) {
        self.state = State::Candidate;
        self.term = Term(self.term.0 + 1);
        self.voted_for = Some(self.cfg.id.clone());
        self.hard_state_dirty = true;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.cfg.id.clone(), true);
        self.reset_election_timer();
        self.report_role();
        if self.cfg.peers.is_empty() {
            self.become_leader();
            return;
        }
        self.request_votes(self.term.0, false);
    }

    fn request_votes(&mut self, term: u64, pre_vote: bool) {
        let body = Body::VoteRequest {
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            pre_vote,
        };
        for peer in self.cfg.peers.clone() {
            self.msgs.push(Message {
                from: self.cfg.id.clone(),
                to: peer,
                term: Term(term),
                body: body.clone(),
            });
        }
    }

    fn become_leader(&mut self) {
        self.state = State::Leader;
        self.leader = Some(self.cfg.id.clone());
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        let next = self.log.last_index().next();
        self.progress = self
            .cfg
            .peers
            .iter()
            .map(|p| (p.clone(), Progress::new(next)))
            .collect();
        self.report_role();
        // §8: a no-op of the new term lets the leader commit, and so learn
        // which earlier entries are committed.
        self.log.append(Entry {
            index: next,
            term: self.term,
            kind: EntryKind::Noop,
            data: Bytes::new(),
        });
        self.needs_broadcast = true;
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let t = self.cfg.election_ticks.max(1);
        self.randomized_timeout = t + self.rng.below(u64::from(t)) as u32;
    }

    fn report_role(&mut self) {
        let now = (self.role(), self.term);
        if now != self.last_reported {
            self.last_reported = now;
            self.role_changes.push(RoleChange {
                role: now.0,
                term: now.1,
            });
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

#[cfg(test)]
mod read_round_tests {
    use crate::sim::Sim;

    /// Reads that arrive while a round is in flight wait for it to end and
    /// then share the next one: no extra heartbeats meanwhile.
    #[test]
    fn reads_during_a_round_wait_and_share_the_next() {
        let mut sim = Sim::new(3, 4);
        assert!(sim.run_until(500, |s| s.leader().is_some()));
        let leader = sim.leader().unwrap();
        sim.propose(&leader, b"w");
        sim.run(10);
        let before = sim.messages_in_flight();
        sim.raft_mut(&leader).read_index(1).unwrap();
        sim.process(&leader);
        assert_eq!(
            sim.messages_in_flight() - before,
            1,
            "one heartbeat, to a majority"
        );
        for ctx in 2..6 {
            sim.raft_mut(&leader).read_index(ctx).unwrap();
        }
        sim.process(&leader);
        assert!(!sim.raft(&leader).has_ready());
        assert_eq!(
            sim.messages_in_flight() - before,
            1,
            "no second round while the first is in flight"
        );
        assert!(sim.run_until(50, |s| s.nodes[&leader].reads.len() == 5));
        let reads = &sim.nodes[&leader].reads;
        assert_eq!(reads[0].0, 1);
        // The later reads were confirmed by a later round, at a point no
        // earlier than the first one's.
        assert!(reads[1..].iter().all(|r| r.1 >= reads[0].1));
    }

    /// Rounds go to the followers that answer; when the one chosen is gone,
    /// the periodic heartbeat confirms the round and the other takes over.
    #[test]
    fn a_round_whose_follower_is_gone_is_confirmed_by_the_next_heartbeat() {
        let mut sim = Sim::new(5, 9);
        assert!(sim.run_until(500, |s| s.leader().is_some()));
        let leader = sim.leader().unwrap();
        sim.propose(&leader, b"w");
        sim.run(20);
        let before = sim.messages_in_flight();
        sim.raft_mut(&leader).read_index(1).unwrap();
        sim.process(&leader);
        assert_eq!(
            sim.messages_in_flight() - before,
            2,
            "two of four followers"
        );
        assert!(sim.run_until(50, |s| s.nodes[&leader].reads.len() == 1));

        // Crash the followers the next round would go to.
        let mut chosen: Vec<_> = sim.raft(&leader).cfg.peers.clone();
        chosen.sort_by_key(|p| std::cmp::Reverse(sim.raft(&leader).progress[p].read_acked));
        for p in chosen.iter().take(2) {
            sim.crash(p);
        }
        sim.raft_mut(&leader).read_index(2).unwrap();
        let heartbeat = u64::from(sim.raft(&leader).cfg.heartbeat_ticks);
        assert!(
            sim.run_until(3 * heartbeat + 5, |s| s.nodes[&leader].reads.len() == 2),
            "the round was not confirmed by the survivors"
        );
        // And the next round goes to the survivors straight away.
        sim.raft_mut(&leader).read_index(3).unwrap();
        assert!(sim.run_until(5, |s| s.nodes[&leader].reads.len() == 3));
    }
}
