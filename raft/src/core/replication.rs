//! Log replication (§5.3) and commitment (§5.4.2): AppendEntries on the
//! follower's end and the leader's, the leader's flow control per follower
//! (see `progress`), its heartbeats and check-quorum, and the commit rule.

use super::{Raft, State};
use crate::progress::{Progress, ProgressState};
use crate::quorum;
use crate::{AppendRequest, AppendResponse, Body, LogIndex, NodeId, Term};

impl Raft {
    // ---- follower ----------------------------------------------------------

    /// AppendEntries, the follower's side (Figure 2): accept the entries if
    /// the log holds the one they follow, dropping any that conflict.
    pub(super) fn handle_append(&mut self, from: NodeId, req: AppendRequest) {
        let AppendRequest {
            mut prev_log_index,
            mut prev_log_term,
            mut entries,
            leader_commit,
            read_ctx,
        } = req;
        if self.state != State::Follower || self.leader.as_ref() != Some(&from) {
            // Someone won this term: a candidate gives up, and everyone follows the winner.
            self.become_follower(self.term, Some(from.clone()));
        }
        self.election_elapsed = 0;

        // Entries at or below our commit index match the leader's log (Leader
        // Completeness), and may be compacted here: skip them.
        let committed = self.log.committed;
        if prev_log_index < committed {
            entries.retain(|e| e.index > committed);
            prev_log_index = committed;
            prev_log_term = self.log.term(committed).unwrap_or(prev_log_term);
        }

        let resp = if self.log.matches(prev_log_index, prev_log_term) {
            let last_new = self.log.merge(prev_log_index, &entries);
            // The leader's commit index may be ahead of what this request proved matches.
            // Seeded bug `commit-past-match` (atomix/copycat#265, scylladb#9965,
            // etcd-io/etcd#1203): "commit_to clamps at the last index, so it
            // is safe".
            if self.cfg.bugs.commit_past_match() {
                self.log.commit_to(leader_commit);
            } else {
                self.log.commit_to(leader_commit.min(last_new));
            }
            // A configuration among the entries is in force already (§4.1).
            self.after_log_change();
            AppendResponse::success(last_new, read_ctx, self.log.last_index())
        } else {
            let (conflict_term, conflict_index) = match self.log.term(prev_log_index) {
                Some(t) => (t, self.log.first_index_of_term(prev_log_index)),
                None => (Term(0), self.log.last_index().next().min(prev_log_index)),
            };
            AppendResponse {
                success: false,
                index: prev_log_index,
                conflict_term,
                conflict_index,
                read_ctx,
                last_log_index: self.log.last_index(),
                incarnation: 0,
                rejoining: false,
            }
        };
        let resp = AppendResponse {
            incarnation: self.cfg.incarnation,
            rejoining: self.rejoining(),
            ..resp
        };
        self.send(from, Body::AppendResponse(resp));
    }

    // ---- leader --------------------------------------------------------------

    /// A follower's answer: move its progress, maybe commit, send what it lacks.
    pub(super) fn handle_append_response(&mut self, from: NodeId, resp: AppendResponse) {
        let Some(pr) = self.heard_from(&from) else {
            return;
        };
        // Before anything is counted: whether it lost its data.
        pr.incarnation = resp.incarnation;
        pr.rejoining = resp.rejoining;
        if resp.read_ctx > pr.read_acked {
            pr.read_acked = resp.read_ctx;
            self.release_reads();
        }
        let pr = self.progress.get_mut(&from).expect("progress exists");
        if resp.success {
            let advanced = pr.on_success(resp.index);
            if pr.state == ProgressState::Probe {
                pr.become_replicate();
            }
            if advanced {
                self.maybe_commit();
            }
            if self.state != State::Leader {
                return;
            }
            self.send_appends(&from);
            self.maybe_send_timeout_now(&from);
        } else {
            // Back up a whole term at a time using the follower's hint.
            let hint = if resp.conflict_term.0 > 0 {
                match self.log.last_index_of_term(resp.conflict_term) {
                    Some(last) if last < resp.index => last.next(),
                    _ => resp.conflict_index,
                }
            } else {
                resp.conflict_index
            };
            let ignore_lost_tail = self.cfg.bugs.ignore_lost_tail();
            let pr = self.progress.get_mut(&from).expect("progress exists");
            if pr.on_reject(resp.index, hint, ignore_lost_tail) {
                self.send_appends(&from);
            }
        }
    }

    /// The leader's view of a follower that just answered, marked as heard
    /// from (for check-quorum); `None` unless this node leads.
    pub(super) fn heard_from(&mut self, from: &NodeId) -> Option<&mut Progress> {
        if self.state != State::Leader {
            return None;
        }
        let pr = self.progress.get_mut(from)?;
        pr.recent_active = true;
        Some(pr)
    }

    /// The leader's clock: heartbeats, and with check-quorum, stepping down
    /// after an election timeout without hearing from a majority.
    pub(super) fn tick_leader(&mut self) {
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
                // Only voters that count: never learners, nor nodes that
                // lost their data (the leader counts itself if a voter).
                let me = self.cfg.id.clone();
                let active = self.quorum_of(|v| *v == me || self.progress[v].recent_active);
                if !active {
                    self.become_follower(self.term, None);
                    return;
                }
                for pr in self.progress.values_mut() {
                    pr.recent_active = false;
                }
            }
        }
        self.tick_transfer();
        if self.state != State::Leader {
            return;
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
        let no_stall_recovery = self.cfg.bugs.no_stall_recovery();
        let peers: Vec<NodeId> = self.progress.keys().cloned().collect();
        for peer in peers {
            let pr = self.progress.get_mut(&peer).expect("progress exists");
            match pr.state {
                ProgressState::Probe => pr.probe_sent = false,
                // Seeded bug `no-stall-recovery` (etcd-io/etcd#2089, #7037;
                // etcd-io/raft#52; hashicorp/raft#212): "a pipeline waits for
                // its answers".
                ProgressState::Replicate | ProgressState::Snapshot(_) if no_stall_recovery => {
                    continue;
                }
                ProgressState::Replicate if pr.stalled_ticks >= stall_limit => pr.become_probe(),
                ProgressState::Snapshot(_) if pr.stalled_ticks >= snapshot_limit => {
                    pr.become_probe()
                }
                _ => continue,
            }
            self.send_appends(&peer);
        }
    }

    /// Heartbeats go to every member, learners included.
    fn broadcast_heartbeat(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().cloned().collect();
        for peer in peers {
            self.send_heartbeat(peer);
        }
    }

    /// An empty AppendEntries; it carries the latest ReadIndex round's number.
    pub(super) fn send_heartbeat(&mut self, peer: NodeId) {
        let pr = &self.progress[&peer];
        // Anchor the heartbeat at what the follower is known to hold so it
        // is accepted even while appends are still in flight.
        let (prev_log_index, prev_log_term) = match self.log.term(pr.match_index) {
            Some(t) => (pr.match_index, t),
            None => (LogIndex(0), Term(0)),
        };
        let body = Body::AppendRequest(AppendRequest {
            prev_log_index,
            prev_log_term,
            entries: Vec::new(),
            // Seeded bug `commit-past-match` (the etcd-io/raft#138 proposal):
            // "heartbeats should carry the commit index at once".
            leader_commit: if self.cfg.bugs.commit_past_match() {
                self.log.committed
            } else {
                self.log.committed.min(pr.match_index)
            },
            read_ctx: self.reads.latest_round(),
        });
        self.send(peer, body);
    }

    pub(super) fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().cloned().collect();
        for peer in peers {
            self.send_appends(&peer);
        }
    }

    /// Sends `peer` what it lacks, as far as its flow control allows.
    pub(super) fn send_appends(&mut self, peer: &NodeId) {
        loop {
            let pr = &self.progress[peer];
            if pr.is_paused(self.cfg.max_inflight) {
                return;
            }
            let prev_log_index = pr.next_index.prev();
            let Some(prev_log_term) = self.log.term(prev_log_index) else {
                // The follower needs entries we compacted away (§7).
                let meta = self.log.snapshot().clone();
                let pr = self.progress.get_mut(peer).expect("progress exists");
                pr.become_snapshot(meta.index);
                self.send(peer.clone(), Body::InstallSnapshot(meta));
                return;
            };
            let entries = self.log.slice(pr.next_index, self.cfg.max_append_bytes);
            let probing = pr.state == ProgressState::Probe;
            // A matched follower with nothing new needs no message: the next
            // heartbeat carries the commit index.
            if entries.is_empty() && !probing {
                return;
            }
            let last = entries.last().map_or(prev_log_index, |e| e.index);
            let body = Body::AppendRequest(AppendRequest {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit: self.log.committed,
                read_ctx: 0,
            });
            self.send(peer.clone(), body);
            let pr = self.progress.get_mut(peer).expect("progress exists");
            pr.sent(last);
            if probing {
                return;
            }
        }
    }

    /// §5.3, §5.4.2: commit the highest index stored on a majority of the
    /// voters of the configuration in force, but only if it is an entry of
    /// the current term (Figure 8); earlier entries are then committed with
    /// it. Learners and nodes that lost their data count as holding nothing.
    pub(super) fn maybe_commit(&mut self) -> bool {
        let voters = self.log.membership().voters_ids();
        if voters.is_empty() {
            return false;
        }
        let matches: Vec<LogIndex> = voters
            .iter()
            .map(|v| match (self.counts(v), *v == self.cfg.id) {
                (false, _) => LogIndex(0),
                (true, true) => self.log.persisted(),
                (true, false) => self.progress[v].match_index,
            })
            .collect();
        let index = quorum::committed_index(matches);
        let current_term = self.log.term(index) == Some(self.term);
        if index > self.log.committed && (current_term || self.cfg.bugs.commit_old_term()) {
            self.log.commit_to(index);
            // A leader whose own removal just committed hands over.
            self.maybe_leave();
            true
        } else {
            false
        }
    }

    /// Whether the leader has committed an entry of its own term (its no-op,
    /// at first): only then does its commit index cover every entry an
    /// earlier leader committed.
    pub(super) fn committed_in_current_term(&self) -> bool {
        self.log.term(self.log.committed) == Some(self.term)
    }
}
