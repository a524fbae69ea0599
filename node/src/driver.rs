//! The driver: one thread that owns the core, the WAL, the state machine and
//! the event log, and acts on each [`Ready`] in the order it prescribes.
//!
//! Events from gRPC handlers and peer links arrive in one mailbox. Everything
//! that arrives while the thread is busy (typically in an fsync) is handled
//! together in the next round, so many proposals share one log write and one
//! fsync (group commit) and many reads share one heartbeat round.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::config::NodeConfig;
use crate::events::EventLog;
use crate::kv::{Answer, Command, KvState};
use crate::raft::{EntryKind, LogIndex, Message, NodeId, Raft, Ready, Status, Term};
use crate::storage::{PersistBatch, StorageError, Wal};
use crate::transport::Outbox;

/// Why a client request got no answer from the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A definite failure: this node is not the leader (or lost the entry to
    /// a new leader), the request had no effect.
    NotLeader {
        leader: Option<NodeId>,
        addr: Option<String>,
    },
    /// The node is shutting down: the outcome is unknown.
    ShuttingDown,
}

pub type WriteReply = oneshot::Sender<Result<Answer, Refusal>>;
pub type ReadReply = oneshot::Sender<Result<(Option<Bytes>, LogIndex), Refusal>>;

pub struct NodeStatus {
    pub raft: Status,
    pub cluster_id: String,
}

pub enum Event {
    /// A message from a peer.
    Peer(Message),
    /// A batch to this peer could not be delivered.
    Unreachable(NodeId),
    /// A snapshot transfer to this peer ended.
    SnapshotSent {
        peer: NodeId,
        delivered: bool,
    },
    Propose {
        cmd: Command,
        reply: WriteReply,
    },
    Read {
        key: String,
        reply: ReadReply,
    },
    Status {
        reply: oneshot::Sender<NodeStatus>,
    },
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot write the event log {path}: {error}")]
    Events { path: String, error: std::io::Error },
}

pub struct Driver {
    cfg: NodeConfig,
    raft: Raft,
    wal: Wal,
    events: EventLog,
    kv: KvState,
    outbox: Box<dyn Outbox>,
    /// Proposals waiting to be applied, by the position they were given.
    proposals: BTreeMap<LogIndex, (Term, WriteReply)>,
    /// Reads waiting for a majority to confirm leadership.
    reads_unconfirmed: HashMap<u64, (String, ReadReply)>,
    /// Reads confirmed at a read index, waiting for it to be applied.
    reads_confirmed: Vec<(LogIndex, String, ReadReply)>,
    next_read_ctx: u64,
    applied: LogIndex,
    /// Replies held back until the event log lines they depend on are written.
    outgoing_writes: Vec<(WriteReply, Result<Answer, Refusal>)>,
}

impl Driver {
    pub fn new(
        cfg: NodeConfig,
        raft: Raft,
        wal: Wal,
        events: EventLog,
        outbox: Box<dyn Outbox>,
    ) -> Driver {
        let applied = raft.log().applied;
        Driver {
            cfg,
            raft,
            wal,
            events,
            kv: KvState::default(),
            outbox,
            proposals: BTreeMap::new(),
            reads_unconfirmed: HashMap::new(),
            reads_confirmed: Vec::new(),
            next_read_ctx: 1,
            applied,
            outgoing_writes: Vec::new(),
        }
    }

    /// Runs until `Shutdown` or until every sender is gone. An error means
    /// the node cannot go on safely (its disk failed) and must stop.
    pub fn run(mut self, mailbox: Receiver<Event>) -> Result<(), DriverError> {
        let tick = self.cfg.tick();
        let max_catch_up = 4 * self.raft.election_timeout().max(1);
        let mut next_tick = Instant::now() + tick;
        let mut last_sweep = Instant::now();
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
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
            self.serve_reads();
            if now.duration_since(last_sweep) > Duration::from_secs(1) {
                last_sweep = now;
                // Clients that gave up leave their reply slots behind.
                self.proposals.retain(|_, (_, r)| !r.is_closed());
            }
            if shutdown {
                break;
            }
        }
        self.refuse_all(Refusal::ShuttingDown);
        Ok(())
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Peer(m) => self.raft.step(m),
            Event::Unreachable(peer) => self.raft.report_unreachable(&peer),
            Event::SnapshotSent { peer, delivered } => self.raft.report_snapshot(&peer, delivered),
            Event::Propose { cmd, reply } => match self.raft.propose(cmd.encode()) {
                Ok((index, term)) => {
                    self.proposals.insert(index, (term, reply));
                }
                Err(e) => {
                    let _ = reply.send(Err(self.not_leader(e.leader)));
                }
            },
            Event::Read { key, reply } => {
                let ctx = self.next_read_ctx;
                self.next_read_ctx += 1;
                match self.raft.read_index(ctx) {
                    Ok(()) => {
                        self.reads_unconfirmed.insert(ctx, (key, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(self.not_leader(e.leader)));
                    }
                }
            }
            Event::Status { reply } => {
                let _ = reply.send(NodeStatus {
                    raft: self.raft.status(),
                    cluster_id: self.cfg.cluster_id.clone(),
                });
            }
            Event::Shutdown => {}
        }
    }

    fn not_leader(&self, leader: Option<NodeId>) -> Refusal {
        let addr = leader
            .as_ref()
            .and_then(|l| self.cfg.peer_addr(l))
            .map(str::to_string);
        Refusal::NotLeader { leader, addr }
    }

    /// Acts on one Ready in the order its fields prescribe.
    fn process_ready(&mut self) -> Result<(), DriverError> {
        let Ready {
            role_changes,
            messages,
            snapshot: _,
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

        // 2. The leader's appends go out while its own write is under way.
        for m in messages {
            self.outbox.send(m);
        }

        // 3. Term, vote and entries reach the disk...
        if hard_state.is_some() || truncate_from.is_some() || !entries.is_empty() {
            self.wal.persist(&PersistBatch {
                hard_state: hard_state.as_ref(),
                truncate_from,
                entries: &entries,
            })?;
            if let Some(last) = entries.last() {
                self.raft.on_persisted(last.index, last.term);
            }
        }

        // 4. ...before any vote or acknowledgement that promises they did.
        for m in persisted_messages {
            self.outbox.send(m);
        }

        // 5. Apply, then answer the clients whose entries these were.
        for entry in &committed {
            self.events.apply(entry);
            let answer = match entry.kind {
                EntryKind::Noop => None,
                EntryKind::Normal => match Command::decode(&entry.data) {
                    Ok(cmd) => Some(self.kv.apply(entry.index, &cmd)),
                    Err(e) => {
                        // The leader validated it; replicas still agree on skipping it.
                        tracing::error!(index = entry.index.0, "undecodable command: {e}");
                        None
                    }
                },
            };
            self.applied = entry.index;
            if let Some((term, reply)) = self.proposals.remove(&entry.index) {
                let result = match answer {
                    Some(a) if term == entry.term => Ok(a),
                    // Another leader's entry took this position: ours is gone for good.
                    _ => Err(self.not_leader(self.raft.leader().cloned())),
                };
                self.outgoing_writes.push((reply, result));
            }
        }
        self.flush_events()?;
        for (reply, result) in self.outgoing_writes.drain(..) {
            let _ = reply.send(result);
        }

        for r in reads {
            if let Some((key, reply)) = self.reads_unconfirmed.remove(&r.ctx) {
                self.reads_confirmed.push((r.index, key, reply));
            }
        }
        for ctx in failed_reads {
            if let Some((_, reply)) = self.reads_unconfirmed.remove(&ctx) {
                let _ = reply.send(Err(self.not_leader(self.raft.leader().cloned())));
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
            let _ = reply.send(Ok((self.kv.get(&key).cloned(), index)));
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
    }
}
