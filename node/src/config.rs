//! The node's configuration, validated once at start-up, and how it maps onto
//! the core's tick-based timing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::storage::{FsyncPolicy, Identity, Standing};
use raft::{self, Membership, NodeId};

/// Seeded bugs for the harness's self-test. Only with the `bugs` feature can
/// they be switched on; otherwise the list is always empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// The leader answers Get from its local state without ReadIndex.
    StaleRead,
    /// Votes are granted without the log up-to-date check.
    VoteAnyLog,
    /// Replicas of earlier-term entries are counted toward commit (Figure 8).
    CommitOldTerm,
    /// Writes are acknowledged while still in a user-space buffer.
    LazyPersist,
    /// A retried request is applied again.
    NoDedup,
    /// The leader ignores a rejection at or below the match index it
    /// recorded: a follower that lost the tail of its log never catches up
    /// (issue 19, finding 2).
    IgnoreLostTail,
    /// A leader appends a configuration change before an entry of its term
    /// has committed (Ongaro's 2015 single-server change bug).
    ConfigBeforeNoop,
    /// A candidate keeps the grants of its pre-vote and counts them as
    /// votes (canonical/raft#196; etcd-io/etcd#8346).
    PrevoteVotesLeak,
    /// Heartbeats carry the leader's whole commit index and a follower
    /// commits up to it, past what the request proved matches
    /// (atomix/copycat#265; scylladb/scylladb#9965; etcd-io/etcd#1203).
    CommitPastMatch,
    /// An installed snapshot moves the log and the applied index, but the
    /// state machine keeps its old contents (nats-io/nats-streaming-server#503;
    /// huton-io/huton#4; cubefs/cubefs#671).
    InstallSkipsApply,
    /// A new leader serves ReadIndex reads before an entry of its own term
    /// has committed (tikv/tikv#6340; RedisLabs/redisraft#19 and #22).
    ReadBeforeNoop,
    /// Snapshots carry the values but not the client sessions (Raft
    /// dissertation §6.3; atomix/atomix#1101).
    SnapshotDropsSessions,
    /// A proposal is answered "ok" when any entry is applied at its index,
    /// whatever its term (cloud-software-foundation/c5#184; EventStore#3472).
    AckOverwritten,
    /// A leader never re-probes a follower whose replication pipeline
    /// stalled (etcd-io/etcd#2089, #7037; etcd-io/raft#52; hashicorp/raft#212).
    NoStallRecovery,
    /// Term and vote alone are written but not fsynced: "the next append
    /// syncs them" (bakwc/PySyncObj#84; hashicorp/raft#507).
    HardstateNosync,
}

impl Bug {
    /// Every seeded bug.
    pub const ALL: [Bug; 15] = [
        Bug::StaleRead,
        Bug::VoteAnyLog,
        Bug::CommitOldTerm,
        Bug::LazyPersist,
        Bug::NoDedup,
        Bug::IgnoreLostTail,
        Bug::ConfigBeforeNoop,
        Bug::PrevoteVotesLeak,
        Bug::CommitPastMatch,
        Bug::InstallSkipsApply,
        Bug::ReadBeforeNoop,
        Bug::SnapshotDropsSessions,
        Bug::AckOverwritten,
        Bug::NoStallRecovery,
        Bug::HardstateNosync,
    ];

    /// The name `--bug` takes.
    pub fn name(self) -> &'static str {
        match self {
            Bug::StaleRead => "stale-read",
            Bug::VoteAnyLog => "vote-any-log",
            Bug::CommitOldTerm => "commit-old-term",
            Bug::LazyPersist => "lazy-persist",
            Bug::NoDedup => "no-dedup",
            Bug::IgnoreLostTail => "ignore-lost-tail",
            Bug::ConfigBeforeNoop => "config-before-noop",
            Bug::PrevoteVotesLeak => "prevote-votes-leak",
            Bug::CommitPastMatch => "commit-past-match",
            Bug::InstallSkipsApply => "install-skips-apply",
            Bug::ReadBeforeNoop => "read-before-noop",
            Bug::SnapshotDropsSessions => "snapshot-drops-sessions",
            Bug::AckOverwritten => "ack-overwritten",
            Bug::NoStallRecovery => "no-stall-recovery",
            Bug::HardstateNosync => "hardstate-nosync",
        }
    }

    /// The bug `--bug NAME` names.
    pub fn parse(s: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| b.name() == s)
    }
}

/// Checks a member's address, `HOST:PORT` (a `--peer`'s, or one given to
/// `member add`): what is wrong with it otherwise.
pub fn check_member_addr(addr: &str) -> Result<(), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("`{addr}` is not HOST:PORT"))?;
    let bad_host = host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/');
    if bad_host || port.parse::<u16>().is_err() {
        return Err(format!("`{addr}` is not HOST:PORT"));
    }
    Ok(())
}

/// Another member of the cluster.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Its node id.
    pub id: NodeId,
    /// Where to reach it: `host:port` (the harness may put a proxy here).
    pub addr: String,
}

/// `--initial-cluster-state`: how a node whose data directory is empty
/// enters its cluster when it should not find out by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterState {
    /// Form a new cluster of this node and its `--peer` flags.
    New,
    /// Join the existing cluster as a new member (to be added by its leader).
    Existing,
}

/// What a node is told at start-up (the command line, checked).
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node.
    pub id: NodeId,
    /// Where it serves gRPC.
    pub listen: SocketAddr,
    /// Where its WAL, snapshot and event log live.
    pub data_dir: PathBuf,
    /// Where `events.jsonl` goes (by default in the data directory).
    pub events_file: PathBuf,
    /// The other members.
    pub peers: Vec<Peer>,
    /// The cluster every request must name.
    pub cluster_id: String,
    /// How often a leader sends heartbeats.
    pub heartbeat: Duration,
    /// T: a follower that hears no leader for [T, 2T) campaigns.
    pub election_timeout: Duration,
    /// Whether the WAL waits for the disk.
    pub fsync: FsyncPolicy,
    /// Take a snapshot after this many applied entries; 0 = never.
    pub snapshot_every: u64,
    /// Bound on the entries of one AppendEntries, in bytes.
    pub max_append_bytes: usize,
    /// Seeded bugs to run with (only with the `bugs` feature).
    pub bugs: Vec<Bug>,
    /// How a node whose data directory is empty enters its cluster; `None`:
    /// it asks its peers (see `startup`).
    pub initial_cluster_state: Option<ClusterState>,
}

impl NodeConfig {
    /// The length of one core tick: fine enough that heartbeats and election
    /// timeouts keep their configured lengths to within a few milliseconds.
    pub fn tick(&self) -> Duration {
        let ms = self.heartbeat.as_millis().clamp(1, 10) as u64;
        Duration::from_millis(ms)
    }

    /// The core's configuration: durations in ticks, the configuration and
    /// incarnation of the node's `identity`, and the core's share of the bugs.
    pub fn raft_config(&self, seed: u64, identity: &Identity) -> raft::Config {
        let tick = self.tick().as_millis().max(1);
        let ticks = |d: Duration| (d.as_millis().div_ceil(tick)).max(1) as u32;
        let mut cfg = raft::Config::new(self.id.clone(), Vec::new());
        cfg.initial = match &identity.standing {
            Standing::Founder(m) => m.clone(),
            Standing::Joined | Standing::Undecided => Membership::default(),
        };
        cfg.joined = identity.standing == Standing::Joined;
        cfg.incarnation = identity.incarnation;
        cfg.heartbeat_ticks = ticks(self.heartbeat);
        cfg.election_ticks = ticks(self.election_timeout);
        cfg.seed = seed;
        cfg.max_append_bytes = self.max_append_bytes;
        cfg.bugs.vote_any_log = self.has_bug(Bug::VoteAnyLog);
        cfg.bugs.commit_old_term = self.has_bug(Bug::CommitOldTerm);
        cfg.bugs.ignore_lost_tail = self.has_bug(Bug::IgnoreLostTail);
        cfg.bugs.config_before_noop = self.has_bug(Bug::ConfigBeforeNoop);
        cfg.bugs.prevote_votes_leak = self.has_bug(Bug::PrevoteVotesLeak);
        cfg.bugs.commit_past_match = self.has_bug(Bug::CommitPastMatch);
        cfg.bugs.read_before_noop = self.has_bug(Bug::ReadBeforeNoop);
        cfg.bugs.no_stall_recovery = self.has_bug(Bug::NoStallRecovery);
        cfg
    }

    /// Where peer `id` is reached: its `--peer` flag, which wins (a harness
    /// may put a proxy there), else its address in `membership`.
    pub fn peer_addr<'a>(&'a self, id: &NodeId, membership: &'a Membership) -> Option<&'a str> {
        self.peers
            .iter()
            .find(|p| p.id == *id)
            .map(|p| p.addr.as_str())
            .or_else(|| {
                membership
                    .get(id)
                    .map(|m| m.addr.as_str())
                    .filter(|a| !a.is_empty())
            })
    }

    /// Whether this node runs with `bug`.
    pub fn has_bug(&self, bug: Bug) -> bool {
        self.bugs.contains(&bug)
    }
}
