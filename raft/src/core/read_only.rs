//! Linearizable reads without writing to the log: ReadIndex (§6.4 of the
//! thesis). The leader notes its commit index, confirms with a round of
//! heartbeats that a majority still follows it, and hands the read back
//! with that index: the caller serves it once it has applied that far.
//!
//! Reads are batched: all those asked for since the last round share the
//! next one, and one round is in flight at a time.

use std::collections::VecDeque;

use super::{Raft, State};
use crate::quorum;
use crate::ready::ReadState;
use crate::{LogIndex, NodeId};

/// The leader's reads, from asked for to answered.
#[derive(Debug, Default)]
pub(super) struct ReadOnly {
    /// Asked for since the last round started.
    pending: Vec<u64>,
    /// Rounds whose heartbeats are out, oldest first.
    rounds: VecDeque<ReadRound>,
    /// The number of the latest round; heartbeats carry it, and a
    /// follower's answer confirms every round up to the number it echoes.
    seq: u64,
    /// Confirmed, for the next `Ready`.
    confirmed: Vec<ReadState>,
    /// Failed (leadership lost), for the next `Ready`.
    failed: Vec<u64>,
}

/// A group of reads that one heartbeat round confirms.
#[derive(Debug)]
struct ReadRound {
    seq: u64,
    index: LogIndex,
    ctxs: Vec<u64>,
}

impl ReadOnly {
    /// The number the periodic heartbeat carries.
    pub(super) fn latest_round(&self) -> u64 {
        self.seq
    }

    /// Whether the next `Ready` has reads to hand back.
    pub(super) fn has_answers(&self) -> bool {
        !self.confirmed.is_empty() || !self.failed.is_empty()
    }

    /// The confirmed and the failed reads, for a `Ready`.
    pub(super) fn take_answers(&mut self) -> (Vec<ReadState>, Vec<u64>) {
        (
            std::mem::take(&mut self.confirmed),
            std::mem::take(&mut self.failed),
        )
    }
}

impl Raft {
    /// Asks for a linearizable read point. When a majority has confirmed this
    /// node is still the leader, `ctx` comes back in
    /// [`Ready::reads`](crate::Ready::reads).
    pub fn read_index(&mut self, ctx: u64) -> Result<(), super::NotLeader> {
        if self.state != State::Leader {
            return Err(self.not_leader());
        }
        self.reads.pending.push(ctx);
        Ok(())
    }

    /// Whether a ReadIndex round is waiting for its heartbeats' answers:
    /// reads asked for now wait for it to end (see `start_read_round`).
    pub fn read_round_in_flight(&self) -> bool {
        !self.reads.rounds.is_empty()
    }

    /// Whether the leader's next `ready` starts a round.
    pub(super) fn read_round_due(&self) -> bool {
        // Seeded bug `read-before-noop` (tikv/tikv#6340; RedisLabs/redisraft#19,
        // fixed by #22): "the no-op is only for commitment".
        !self.reads.pending.is_empty()
            && self.reads.rounds.is_empty()
            && (self.committed_in_current_term() || self.cfg.bugs.read_before_noop())
    }

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
    pub(super) fn start_read_round(&mut self) {
        if !self.read_round_due() {
            return;
        }
        self.reads.seq += 1;
        let round = ReadRound {
            seq: self.reads.seq,
            index: self.log.committed,
            ctxs: std::mem::take(&mut self.reads.pending),
        };
        self.reads.rounds.push_back(round);
        self.send_read_heartbeats();
        self.release_reads();
    }

    /// A round needs the acks of a majority, not of everyone: its heartbeats
    /// go to just enough followers, those that answered the latest rounds.
    /// This spares the other followers (and the leader their answers) most
    /// of the read traffic. A chosen follower that does not answer is
    /// covered by the periodic heartbeat, which goes to all and carries the
    /// latest round's number; whoever answers it is chosen next.
    fn send_read_heartbeats(&mut self) {
        let me = self.cfg.id.clone();
        let voters = self.log.membership().voters_ids();
        let own = usize::from(self.counts(&me));
        let needed = quorum::majority(voters.len()).saturating_sub(own);
        // Only voters that count can confirm a round.
        let mut peers: Vec<NodeId> = voters
            .into_iter()
            .filter(|v| *v != me && self.counts(v))
            .collect();
        // Stable: among equals, configuration order.
        peers.sort_by_key(|p| std::cmp::Reverse(self.progress[p].read_acked));
        for peer in peers.into_iter().take(needed) {
            self.send_heartbeat(peer);
        }
    }

    /// Hands out the reads of every round a majority of the voters (that
    /// count) has now confirmed.
    pub(super) fn release_reads(&mut self) {
        let me = self.cfg.id.clone();
        while let Some(round) = self.reads.rounds.front() {
            let seq = round.seq;
            if !self.quorum_of(|v| *v == me || self.progress[v].read_acked >= seq) {
                break;
            }
            let round = self.reads.rounds.pop_front().expect("front exists");
            self.reads
                .confirmed
                .extend(round.ctxs.into_iter().map(|ctx| ReadState {
                    ctx,
                    index: round.index,
                }));
        }
    }

    /// Leadership is lost: no read waiting here can be confirmed any more.
    pub(super) fn fail_reads(&mut self) {
        let reads = &mut self.reads;
        reads.failed.append(&mut reads.pending);
        for round in reads.rounds.drain(..) {
            reads.failed.extend(round.ctxs);
        }
    }
}
