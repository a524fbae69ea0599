//! What a leader knows about one follower, and the flow control of
//! replication to it (probe one request at a time until the logs match, then
//! pipeline a bounded window of requests).

use std::collections::VecDeque;

use super::LogIndex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Where the follower's log matches is unknown: one request at a time.
    Probe,
    /// Logs match up to `match_index`: send optimistically, several in flight.
    Replicate,
    /// The follower needs entries the leader has compacted: a snapshot at
    /// this index is on its way.
    Snapshot(LogIndex),
}

#[derive(Clone, Debug)]
pub struct Progress {
    pub match_index: LogIndex,
    pub next_index: LogIndex,
    pub state: ProgressState,
    /// In Probe: a request is out and unanswered, wait for a reply or the next heartbeat.
    pub probe_sent: bool,
    /// In Replicate: last index of each unacknowledged request, oldest first.
    pub inflight: VecDeque<LogIndex>,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
    /// Highest ReadIndex round this follower acknowledged.
    pub read_acked: u64,
    /// Ticks since `match_index` last advanced while requests were in flight;
    /// a replicate stream that stops moving is assumed lost and re-probed.
    pub stalled_ticks: u32,
    /// The incarnation the follower's latest answer carried.
    pub incarnation: u64,
    /// Its latest answer said it lost its data and is not a member under
    /// its new incarnation: it counts toward nothing.
    pub rejoining: bool,
}

impl Progress {
    pub fn new(next_index: LogIndex) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            recent_active: true,
            read_acked: 0,
            stalled_ticks: 0,
            incarnation: 0,
            rejoining: false,
        }
    }

    pub fn become_probe(&mut self) {
        // After a snapshot, the follower holds at least the snapshot's index.
        if let ProgressState::Snapshot(index) = self.state {
            self.next_index = self.match_index.max(index).next();
        } else {
            self.next_index = self.match_index.next();
        }
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.inflight.clear();
        self.stalled_ticks = 0;
    }

    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index.next();
        self.inflight.clear();
        self.stalled_ticks = 0;
    }

    pub fn become_snapshot(&mut self, index: LogIndex) {
        self.state = ProgressState::Snapshot(index);
        self.inflight.clear();
        self.probe_sent = false;
        self.stalled_ticks = 0;
    }

    /// A success reply says the follower matches up to `index`. Replies may
    /// arrive late, twice or out of order, so only ever move forward.
    pub fn on_success(&mut self, index: LogIndex) -> bool {
        let advanced = index > self.match_index;
        if advanced {
            self.match_index = index;
            self.stalled_ticks = 0;
        }
        if index >= self.next_index {
            self.next_index = index.next();
        }
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        self.probe_sent = false;
        advanced
    }

    /// A rejection of the request whose prev index was `rejected`; `hint` is
    /// where the leader's log could next match. Returns false for a stale
    /// rejection, which must not move `next_index` backwards again.
    ///
    /// A rejection of a request at or above `match_index` whose hint lies
    /// at or below it is not stale: the follower no longer holds what it
    /// acknowledged (it lost the tail of its log, or its whole disk).
    /// Progress starts over from the hint (match 0, probing), or heartbeats,
    /// anchored at the old match, would be refused forever.
    /// `ignore_lost_tail` is the seeded bug that skips this.
    pub fn on_reject(
        &mut self,
        rejected: LogIndex,
        hint: LogIndex,
        ignore_lost_tail: bool,
    ) -> bool {
        let lost = rejected >= self.match_index
            && hint <= self.match_index
            && self.match_index > LogIndex(0);
        if lost && !ignore_lost_tail {
            self.match_index = LogIndex(0);
            self.state = ProgressState::Probe;
            self.next_index = hint.max(LogIndex(1));
            self.probe_sent = false;
            self.inflight.clear();
            self.stalled_ticks = 0;
            return true;
        }
        match self.state {
            ProgressState::Replicate => {
                if rejected <= self.match_index {
                    return false;
                }
                self.become_probe();
                self.next_index = hint.min(rejected).max(self.match_index.next());
                true
            }
            ProgressState::Probe => {
                if self.next_index.prev() != rejected {
                    return false;
                }
                self.next_index = hint.min(rejected).max(self.match_index.next());
                self.probe_sent = false;
                true
            }
            ProgressState::Snapshot(_) => false,
        }
    }

    pub fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflight.len() >= max_inflight,
            ProgressState::Snapshot(_) => true,
        }
    }

    /// Records that a request ending at `last` was sent.
    pub fn sent(&mut self, last: LogIndex) {
        match self.state {
            ProgressState::Replicate => {
                if last >= self.next_index {
                    self.next_index = last.next();
                    self.inflight.push_back(last);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn li(i: u64) -> LogIndex {
        LogIndex(i)
    }

    /// A follower known to match up to `matched`, now replicating.
    fn replicating(matched: u64) -> Progress {
        let mut p = Progress::new(li(1));
        p.on_success(li(matched));
        p.become_replicate();
        p
    }

    #[test]
    fn replicate_pipelines_up_to_the_window() {
        let mut p = replicating(0);
        p.sent(li(5));
        p.sent(li(9));
        assert_eq!(p.next_index, li(10));
        assert!(p.is_paused(2));
        // Out-of-order replies: the later one frees both slots; the earlier is then a no-op.
        assert!(p.on_success(li(9)));
        assert!(!p.on_success(li(5)));
        assert_eq!(p.match_index, li(9));
        assert!(p.inflight.is_empty());
    }

    #[test]
    fn stale_rejections_are_ignored() {
        let mut p = replicating(10);
        p.sent(li(20));
        // A rejection below the match index comes from an old request.
        assert!(!p.on_reject(li(8), li(3), false));
        assert_eq!(p.state, ProgressState::Replicate);
        assert!(p.on_reject(li(15), li(12), false));
        assert_eq!(p.state, ProgressState::Probe);
        assert_eq!(p.next_index, li(12));
        // In Probe only the rejection of the outstanding probe counts.
        assert!(!p.on_reject(li(15), li(11), false));
        assert!(p.on_reject(li(11), li(12), false));
        assert_eq!(p.next_index, li(11), "never below match + 1");
    }

    #[test]
    fn a_follower_that_lost_what_it_acknowledged_starts_over() {
        // Matched to 10, then a heartbeat anchored there is refused: the
        // follower's log now ends at 4.
        let mut p = replicating(10);
        assert!(p.on_reject(li(10), li(5), false));
        assert_eq!(p.state, ProgressState::Probe);
        assert_eq!((p.match_index, p.next_index), (li(0), li(5)));
        // The seeded bug ignores it, as the leader did before: stuck.
        let mut p = replicating(10);
        assert!(!p.on_reject(li(10), li(5), true));
        assert_eq!((p.match_index, p.state), (li(10), ProgressState::Replicate));
    }

    #[test]
    fn probe_sends_one_at_a_time() {
        let mut p = Progress::new(li(5));
        assert!(!p.is_paused(8));
        p.sent(li(7));
        assert!(p.is_paused(8));
        p.on_success(li(7));
        assert!(!p.is_paused(8));
    }
}
