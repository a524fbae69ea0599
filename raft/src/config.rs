//! How a core is set up: its place in the cluster, its timers, the optional
//! protocol extensions and the bounds of replication.

use super::{Membership, NodeId};

/// A core's configuration, fixed for its lifetime.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node.
    pub id: NodeId,
    /// The cluster's configuration before any snapshot or log entry says
    /// otherwise: the members a cluster was formed with, or empty for a
    /// node that joined an existing cluster (it learns the configuration
    /// from the leader).
    pub initial: Membership,
    /// This incarnation of the node: made at its first start, new after
    /// its disk was wiped. Sent with every AppendEntries answer so the
    /// leader can name it in the entry that promotes the node.
    pub incarnation: u64,
    /// The node joined an existing cluster with an empty disk: a
    /// configuration makes it a member only where it names `incarnation`
    /// (see [`Membership::role_of`]). Until then it never votes and the
    /// leader never counts it, whatever the configuration says of its id.
    pub joined: bool,
    /// A learner is caught up, and may be promoted, once its log matches
    /// the leader's to within this many entries of the leader's last.
    pub promote_within: u64,
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
    /// Append a configuration change before an entry of the leader's term
    /// has committed (the single-server change bug Ongaro reported on
    /// raft-dev in 2015).
    pub config_before_noop: bool,
    /// Ignore a follower's rejection at or below the match index recorded
    /// for it, so a follower that lost the tail of its log is never
    /// repaired (issue 19, finding 2).
    pub ignore_lost_tail: bool,
    /// A candidate keeps its pre-vote grants as votes (canonical/raft#196).
    pub prevote_votes_leak: bool,
    /// Heartbeats carry the whole commit index, and followers commit up to
    /// it without the "last new entry" bound (atomix/copycat#265).
    pub commit_past_match: bool,
    /// ReadIndex rounds start before the leader's no-op has committed
    /// (tikv/tikv#6340, RedisLabs/redisraft#19).
    pub read_before_noop: bool,
    /// A stalled replication pipeline is never sent back to probing
    /// (etcd-io/raft#52, etcd-io/etcd#2089).
    pub no_stall_recovery: bool,
}

impl SeededBugs {
    pub(crate) fn vote_any_log(&self) -> bool {
        cfg!(feature = "bugs") && self.vote_any_log
    }

    pub(crate) fn commit_old_term(&self) -> bool {
        cfg!(feature = "bugs") && self.commit_old_term
    }

    pub(crate) fn config_before_noop(&self) -> bool {
        cfg!(feature = "bugs") && self.config_before_noop
    }

    pub(crate) fn ignore_lost_tail(&self) -> bool {
        cfg!(feature = "bugs") && self.ignore_lost_tail
    }

    pub(crate) fn prevote_votes_leak(&self) -> bool {
        cfg!(feature = "bugs") && self.prevote_votes_leak
    }

    pub(crate) fn commit_past_match(&self) -> bool {
        cfg!(feature = "bugs") && self.commit_past_match
    }

    pub(crate) fn read_before_noop(&self) -> bool {
        cfg!(feature = "bugs") && self.read_before_noop
    }

    pub(crate) fn no_stall_recovery(&self) -> bool {
        cfg!(feature = "bugs") && self.no_stall_recovery
    }
}

impl Config {
    /// A member of a cluster formed of it and `peers`, all voters, with
    /// the defaults: T = 30 ticks, heartbeats every 5, pre-vote and
    /// check-quorum on, 1 MiB per AppendEntries, 64 of them in flight, a
    /// learner promotable within 64 entries of the leader.
    pub fn new(id: NodeId, peers: Vec<NodeId>) -> Config {
        let initial = Membership::voters(peers.into_iter().chain([id.clone()]));
        Config {
            id,
            initial,
            incarnation: 0,
            joined: false,
            promote_within: 64,
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
