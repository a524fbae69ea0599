//! The driver: one thread that owns the core, the WAL, the state machine and
//! the event log, and acts on each [`Ready`] in the order it prescribes.
//!
//! Events from gRPC handlers and peer links arrive in one mailbox. Everything
//! that arrives while the thread is busy (typically in an fsync) is handled
//! together in the next round, so many proposals share one log write and one
//! fsync (group commit) and many reads share one heartbeat round.
//!
//! Snapshots, taken and installed, are in `snapshots`.

mod membership;
mod snapshots;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raft::{EntryKind, LogIndex, Membership, NodeId, Raft, Ready, Role, Term};

use crate::config::{Bug, NodeConfig};
use crate::events::EventLog;
use crate::kv::{Command, KvState};
use crate::mailbox::WriteReply;
use crate::mailbox::{
    Event, LocalState, NodeStatus, Outbox, ReadQueue, ReadReply, Refusal, Replier, Reply,
};
use crate::storage::{PersistBatch, Snapshot, Storage, StorageError};

/// Why the driver stopped: the node cannot go on safely.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The WAL or the snapshot file failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The event log could not be written.
    #[error("cannot write the event log {path}: {error}")]
    Events {
        /// The event log.
        path: String,
        /// What the system said.
        error: std::io::Error,
    },
    /// The background snapshot writer died.
    #[error("the thread writing the snapshot at index {index} panicked")]
    SnapshotWriter {
        /// The snapshot it was writing.
        index: u64,
    },
}

/// What the driver talks through: peers, clients' answers, clients' reads.
pub struct DriverIo {
    /// Messages to peers.
    pub outbox: Box<dyn Outbox>,
    /// Answers to clients, delivered on the runtime.
    pub replier: Replier,
    /// Where the gRPC handlers put reads.
    pub reads: Arc<ReadQueue>,
}

/// The thread that owns the core and everything it acts on (see the module).
pub struct Driver {
    cfg: NodeConfig,
    raft: Raft,
    storage: Storage,
    events: EventLog,
    kv: KvState,
    outbox: Box<dyn Outbox>,
    replier: Replier,
    read_queue: Arc<ReadQueue>,
    /// Answers from this round, delivered together once it is done (and
    /// once the event log lines they depend on are written).
    replies: Vec<Reply>,
    /// Proposals waiting to be applied, by the position they were given.
    proposals: BTreeMap<LogIndex, (Term, WriteReply)>,
    /// Reads waiting for a majority to confirm leadership.
    reads_unconfirmed: HashMap<u64, (String, ReadReply)>,
    /// Reads confirmed at a read index, waiting for it to be applied.
    reads_confirmed: Vec<(LogIndex, String, ReadReply)>,
    next_read_ctx: u64,
    applied: LogIndex,
    /// Replies held back until the event log lines they depend on are written.
    outgoing_writes: Vec<Reply>,
    /// Snapshots received this round, waiting for the core's decision.
    incoming: Vec<(Snapshot, KvState)>,
    /// A snapshot of our own being written by a background thread.
    saving: Option<snapshots::PendingSnapshot>,
    /// A membership request under way (this node leads).
    plan: Option<membership::Plan>,
    /// How this node came into its cluster, for Status.
    standing: &'static str,
}

impl Driver {
    /// `kv` is the state machine as of the core's snapshot (its image, or
    /// empty without one); the core replays the log after it.
    pub fn new(
        cfg: NodeConfig,
        raft: Raft,
        storage: Storage,
        kv: KvState,
        events: EventLog,
        io: DriverIo,
        standing: &'static str,
    ) -> Driver {
        let DriverIo {
            outbox,
            replier,
            reads: read_queue,
        } = io;
        let applied = raft.log().applied;
        Driver {
            cfg,
            raft,
            storage,
            events,
            kv,
            outbox,
            replier,
            read_queue,
            replies: Vec::new(),
            proposals: BTreeMap::new(),
            reads_unconfirmed: HashMap::new(),
            reads_confirmed: Vec::new(),
            next_read_ctx: 1,
            applied,
            outgoing_writes: Vec::new(),
            incoming: Vec::new(),
            saving: None,
            plan: None,
            standing,
        }
    }

    /// Runs until `Shutdown` or until every sender is gone. An error means
    /// the node cannot go on safely (its disk failed) and must stop.
    pub fn run(mut self, mailbox: Receiver<Event>) -> Result<(), DriverError> {
        let tick = self.cfg.tick();
        let max_catch_up = 4 * self.raft.election_timeout().max(1);
        let mut next_tick = Instant::now() + tick;
        let mut last_sweep = Instant::now();
        let mut reads_waiting = false;
        loop {
            let wait = if reads_waiting {
                Duration::ZERO
            } else {
                next_tick.saturating_duration_since(Instant::now())
            };
            match mailbox.recv_timeout(wait) {
                Ok(Event::Shutdown) => break,
                Ok(ev) => self.handle(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Take everything that queued up meanwhile: one round handles it all.
            let mut shutdown = false;
            for _ in 0..8192 {
                match mailbox.try_recv() {
                    Ok(Event::Shutdown) => {
                        shutdown = true;
                        break;
                    }
                    Ok(ev) => self.handle(ev),
                    Err(_) => break,
                }
            }
            for (key, reply) in self.read_queue.take() {
                self.handle_read(key, reply);
            }
            let now = Instant::now();
            let mut ticks = 0;
            while now >= next_tick {
                // A node paused for a long time (SIGSTOP) wakes up with its
                // timers expired, but does not replay every missed tick.
                if ticks < max_catch_up {
                    self.raft.tick();
                    ticks += 1;
                }
                next_tick += tick;
            }
            while self.raft.has_ready() {
                self.process_ready()?;
            }
            // Received snapshots the core did not take are stale by now.
            self.incoming.clear();
            self.advance_plan();
            self.serve_reads();
            if !self.replies.is_empty() {
                self.replier.deliver(std::mem::take(&mut self.replies));
            }
            self.maybe_take_snapshot()?;
            reads_waiting = self
                .read_queue
                .set_round_in_flight(self.raft.read_round_in_flight());
            if now.duration_since(last_sweep) > Duration::from_secs(1) {
                last_sweep = now;
                // Clients that gave up leave their reply slots behind.
                self.proposals.retain(|_, (_, r)| !r.is_closed());
            }
            if shutdown {
                break;
            }
        }
        self.replier.deliver(std::mem::take(&mut self.replies));
        self.refuse_all(Refusal::ShuttingDown);
        self.abandon_snapshot();
        Ok(())
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Peers(msgs) => {
                for m in msgs {
                    self.raft.step(m);
                }
            }
            Event::Unreachable(peer) => self.raft.report_unreachable(&peer),
            Event::SnapshotSent { peer, delivered } => self.raft.report_snapshot(&peer, delivered),
            Event::SnapshotReceived {
                msg,
                snapshot,
                state,
            } => {
                self.incoming.push((snapshot, *state));
                self.raft.step(msg);
            }
            Event::Propose { command, reply } => self.propose(command, reply),
            Event::ProposeMany(proposals) => {
                for (command, reply) in proposals {
                    self.propose(command, reply);
                }
            }
            // The run loop takes the queued reads.
            Event::ReadsQueued => {}
            Event::Status { reply } => {
                let _ = reply.send(NodeStatus {
                    raft: self.raft.status(),
                    cluster_id: self.cfg.cluster_id.clone(),
                    standing: self.standing,
                });
            }
            Event::Member { op, reply } => self.handle_member(op, reply),
            Event::LocalDump { reply } => {
                let _ = reply.send(LocalState {
                    applied: self.applied,
                    commit: self.raft.log().committed,
                    term: self.raft.term(),
                    digest: self.kv.digest(),
                    values: self.kv.sorted_values(),
                });
            }
            Event::Shutdown => {}
        }
    }

    /// A client's write, already checked and encoded by the transport: the
    /// driver thread only appends it.
    fn propose(&mut self, command: Bytes, reply: WriteReply) {
        match self.raft.propose(command) {
            Ok((index, term)) => {
                self.proposals.insert(index, (term, reply));
            }
            Err(e) => {
                let why = self.not_leader(e.leader);
                self.replies.push(Reply::Write(reply, Err(why)));
            }
        }
    }

    fn handle_read(&mut self, key: String, reply: ReadReply) {
        if cfg!(feature = "bugs")
            && self.cfg.has_bug(Bug::StaleRead)
            && self.raft.role() == Role::Leader
        {
            // Seeded bug: trusts its leadership without a ReadIndex round.
            let _ = reply.send(Ok((self.kv.get(&key).cloned(), self.applied)));
            return;
        }
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        match self.raft.read_index(ctx) {
            Ok(()) => {
                self.reads_unconfirmed.insert(ctx, (key, reply));
            }
            Err(e) => {
                let why = self.not_leader(e.leader);
                self.replies.push(Reply::Read(reply, Err(why)));
            }
        }
    }

    fn not_leader(&self, leader: Option<NodeId>) -> Refusal {
        let addr = leader
            .as_ref()
            .and_then(|l| self.cfg.peer_addr(l, self.raft.membership()))
            .map(str::to_string);
        Refusal::NotLeader { leader, addr }
    }

    /// Acts on one Ready in the order its fields prescribe.
    fn process_ready(&mut self) -> Result<(), DriverError> {
        let Ready {
            role_changes,
            membership,
            messages,
            snapshot,
            hard_state,
            truncate_from,
            entries,
            persisted_messages,
            committed,
            reads,
            failed_reads,
        } = self.raft.ready();

        // 1. Role changes are on record before anyone can learn of them.
        for rc in &role_changes {
            self.events.role(rc.role, rc.term);
            tracing::info!(node = %self.cfg.id, role = rc.role.as_str(), term = rc.term.0, "role");
        }
        self.flush_events()?;
        // A configuration in force from now on (§4.1): reach its members.
        if let Some(m) = membership {
            for member in m.members() {
                if let Some(addr) = self.cfg.peer_addr(&member.id, &m) {
                    self.outbox.reach(&member.id, addr);
                }
            }
            tracing::info!(node = %self.cfg.id, "configuration in force: {m}");
        }

        // 2. The leader's appends go out while its own write is under way.
        for m in messages {
            self.outbox.send(m);
        }

        // 3. Term, vote and entries reach the disk...
        if let Some(install) = snapshot {
            // The new snapshot, the hard state and every entry the core now
            // holds after it (this Ready's included) in one compaction.
            self.install_snapshot(install, hard_state.as_ref())?;
        } else if hard_state.is_some() || truncate_from.is_some() || !entries.is_empty() {
            self.storage.persist(&PersistBatch {
                hard_state: hard_state.as_ref(),
                truncate_from,
                entries: &entries,
            })?;
            if let Some(last) = entries.last() {
                self.raft.on_persisted(last.index, last.term);
            }
        }

        // 4. ...before any vote or acknowledgement that promises they did.
        // Votes go on record now that they are durable (a restart behind
        // one is a lost vote, for the election checker).
        for m in &persisted_messages {
            if let raft::Body::VoteResponse(v) = &m.body
                && v.granted
                && !v.pre_vote
            {
                self.events.vote(m.term, &m.to);
            }
        }
        self.flush_events()?;
        for m in persisted_messages {
            self.outbox.send(m);
        }

        // 5. Apply, then answer the clients whose entries these were.
        for entry in &committed {
            self.events.apply(entry);
            if entry.kind == EntryKind::Config
                && let Ok(m) = Membership::decode(&entry.data)
            {
                self.events.config(entry.index, &m);
            }
            let answer = match entry.kind {
                EntryKind::Noop | EntryKind::Config => None,
                EntryKind::Normal => match Command::decode(&entry.data) {
                    #[cfg(feature = "bugs")]
                    Ok(cmd) if self.cfg.has_bug(Bug::NoDedup) => {
                        Some(self.kv.apply_again(entry.index, &cmd))
                    }
                    Ok(cmd) => Some(self.kv.apply(entry.index, &cmd)),
                    Err(e) => {
                        // The leader validated it; replicas still agree on skipping it.
                        tracing::error!(index = entry.index.0, "undecodable command: {e}");
                        None
                    }
                },
            };
            self.applied = entry.index;
            if entry.index.0 % crate::events::STATE_EVERY == 0 {
                self.events.state(entry.index, &self.kv.digest());
            }
            if let Some((term, reply)) = self.proposals.remove(&entry.index) {
                // Seeded bug `ack-overwritten` (cloud-software-foundation/c5#184,
                // EventStore/EventStore#3472): "a position identifies an entry".
                let any_term = cfg!(feature = "bugs") && self.cfg.has_bug(Bug::AckOverwritten);
                let result = match answer {
                    Some(a) if term == entry.term || any_term => Ok(a),
                    // Another leader's entry took this position: ours is gone for good.
                    _ => Err(self.not_leader(self.raft.leader().cloned())),
                };
                self.outgoing_writes.push(Reply::Write(reply, result));
            }
        }
        self.flush_events()?;
        self.replies.append(&mut self.outgoing_writes);

        for r in reads {
            if let Some((key, reply)) = self.reads_unconfirmed.remove(&r.ctx) {
                self.reads_confirmed.push((r.index, key, reply));
            }
        }
        for ctx in failed_reads {
            if let Some((_, reply)) = self.reads_unconfirmed.remove(&ctx) {
                let why = self.not_leader(self.raft.leader().cloned());
                self.replies.push(Reply::Read(reply, Err(why)));
            }
        }
        Ok(())
    }

    /// Answers confirmed reads whose read index has been applied.
    fn serve_reads(&mut self) {
        if self.reads_confirmed.is_empty() {
            return;
        }
        let applied = self.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = self
            .reads_confirmed
            .drain(..)
            .partition(|(i, _, _)| *i <= applied);
        self.reads_confirmed = waiting;
        for (index, key, reply) in ready {
            let value = self.kv.get(&key).cloned();
            self.replies.push(Reply::Read(reply, Ok((value, index))));
        }
    }

    fn flush_events(&mut self) -> Result<(), DriverError> {
        self.events.flush().map_err(|error| DriverError::Events {
            path: self.events.path().display().to_string(),
            error,
        })
    }

    fn refuse_all(&mut self, why: Refusal) {
        for (_, (_, reply)) in std::mem::take(&mut self.proposals) {
            let _ = reply.send(Err(why.clone()));
        }
        for (_, (_, reply)) in std::mem::take(&mut self.reads_unconfirmed) {
            let _ = reply.send(Err(why.clone()));
        }
        for (_, _, reply) in std::mem::take(&mut self.reads_confirmed) {
            let _ = reply.send(Err(why.clone()));
        }
        // Later reads wake the driver, and find it gone.
        self.read_queue.set_round_in_flight(false);
        for (_, reply) in self.read_queue.take() {
            let _ = reply.send(Err(why.clone()));
        }
    }
}
