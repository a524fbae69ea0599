//! How a core is set up: its place in the cluster, its timers, the optional
//! protocol extensions and the bounds of replication.

use super::NodeId;

/// A core's configuration, fixed for its lifetime.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node.
    pub id: NodeId,
    /// The other members of the cluster.
    pub peers: Vec<NodeId>,
    /// T: a follower that hears no leader for a random number of ticks in
    /// [T, 2T) starts an election.
    pub election_ticks: u32,
    /// A leader sends heartbeats every this many ticks (well below T).
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
    /// Seeds the election timeouts; mixed with `id`, so nodes given one
    /// seed still draw different timeouts.
    pub seed: u64,
    /// Deliberate bugs for the harness's self-test; always off unless the
    /// crate is built with the `bugs` feature and asked for them.
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
    pub(crate) fn vote_any_log(&self) -> bool {
        cfg!(feature = "bugs") && self.vote_any_log
    }

    pub(crate) fn commit_old_term(&self) -> bool {
        cfg!(feature = "bugs") && self.commit_old_term
    }
}

impl Config {
    /// The defaults: T = 30 ticks, heartbeats every 5, pre-vote and
    /// check-quorum on, 1 MiB per AppendEntries, 64 of them in flight.
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
