//! The database under test (`--db`), behind one interface, so that the
//! cluster, the nemeses, the workloads and the checkers work the same on
//! any of them (issue 17).
//!
//! A database is two things:
//!
//! - [`Db`]: what it is before anything runs. Its binary, the command
//!   line of a member (data directory, addresses, peers), whether it
//!   serves clients and peers on one port or two, whether each member
//!   dials each peer at an address of its own (so proxies can cut one
//!   link apart from another), which nemeses it supports on which
//!   network, and the lazyfs metadata model its durability needs.
//! - [`Members`]: the running members, reached over the database's own
//!   API: who leads and in which term (leader-targeted faults, the
//!   recovery wait), a workload client per worker ([`Worker`]: one
//!   history action in, an [`Outcome`] out), the end-of-run comparison of
//!   the members' state, membership changes, and a closed-loop call for
//!   `bench`.
//!
//! Where the election and state-machine checkers get their evidence is
//! [`DbKind::run_events`]: a finished run directory says in `run.json`
//! which database ran, and each database turns what its members left
//! there into the role and apply events of [`crate::history::events`].
//!
//! - `raftkv`: our node (the default), as the harness always ran it.
//! - `etcd`: etcd v3.4 through [`crate::etcd`].

pub mod etcd;
pub mod raftkv;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use lazyfs::Metadata;

use crate::client::Outcome;
use crate::history::events::RunEvents;
use crate::history::{Action, HistoryError};
use crate::launch::NodeBin;
use crate::net::{Listen, Ports};
use crate::workload::Workload;

/// Which database a run tests (`--db`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DbKind {
    /// Our Raft key-value node.
    #[default]
    Raftkv,
    /// etcd v3 (3.4 here).
    Etcd,
}

impl DbKind {
    /// The name on the command line and in `run.json`.
    pub fn name(self) -> &'static str {
        match self {
            DbKind::Raftkv => "raftkv",
            DbKind::Etcd => "etcd",
        }
    }

    /// Parses `--db`.
    pub fn parse(s: &str) -> Result<DbKind, String> {
        match s {
            "raftkv" => Ok(DbKind::Raftkv),
            "etcd" => Ok(DbKind::Etcd),
            _ => Err(format!("unknown database {s:?}; expected raftkv or etcd")),
        }
    }

    /// The database a run directory's `run.json` names (`options.db`);
    /// a run from before `--db` existed, or a directory without `run.json`,
    /// is our node's.
    pub fn of_run_dir(dir: &Path) -> DbKind {
        std::fs::read_to_string(dir.join("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["options"]["db"].as_str().map(str::to_string))
            .and_then(|s| DbKind::parse(&s).ok())
            .unwrap_or_default()
    }

    /// The evidence the election and state-machine checkers read from a
    /// run directory of this database: role and apply events per member,
    /// and why a checker cannot judge (never "valid" on no evidence).
    pub fn run_events(self, dir: &Path) -> Result<RunEvents, HistoryError> {
        match self {
            DbKind::Raftkv => raftkv::run_events(dir),
            DbKind::Etcd => Ok(etcd::run_events(dir)),
        }
    }

    /// The lazyfs metadata model a power-fault run uses unless
    /// `--lazyfs-metadata` says otherwise (see each database's reason).
    pub fn default_metadata(self) -> Metadata {
        match self {
            DbKind::Raftkv => raftkv::METADATA,
            DbKind::Etcd => etcd::METADATA,
        }
    }
}

/// Everything needed to open a database: from the flags.
#[derive(Clone, Debug)]
pub struct DbSpec {
    /// Which database.
    pub kind: DbKind,
    /// Its binary (`--db-bin`, `--node-bin`); `None`: the default
    /// (raftkv: the harness itself in node mode; etcd: `etcd` on `PATH`).
    pub bin: Option<PathBuf>,
    /// Extra flags for every member, after the harness's own
    /// (`--db-arg`, `--node-arg`).
    pub args: Vec<String>,
    /// The cluster's name: our node's cluster id, etcd's
    /// `--initial-cluster-token`.
    pub cluster_id: String,
    /// How workers reach our node (unary or stream); etcd ignores it.
    pub api: node::client::Api,
    /// etcd: serializable reads instead of linearizable ones.
    pub serializable_reads: bool,
    /// `bench`'s closed-loop workers, which share connections (0 for runs).
    pub bench_workers: usize,
}

/// Why a database could not be opened or asked something.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The binary is missing or unusable, or a flag makes no sense for
    /// this database: bad arguments (exit 254).
    #[error("{0}")]
    BadArgs(String),
    /// A connection could not be set up.
    #[error("{0}")]
    Connect(String),
    /// The database refused a request, and why (nothing changed).
    #[error("refused: {0}")]
    Refused(String),
    /// No answer in time, or the connection broke: the outcome of a change
    /// is unknown.
    #[error("no answer: {0}")]
    Unknown(String),
}

/// Opens the database `spec` names: finds and checks its binary.
pub fn open(spec: &DbSpec) -> Result<Arc<dyn Db>, DbError> {
    match spec.kind {
        DbKind::Raftkv => Ok(Arc::new(raftkv::RaftKv::open(spec)?)),
        DbKind::Etcd => Ok(Arc::new(etcd::Etcd::open(spec)?)),
    }
}

/// One member's place, for its command line.
#[derive(Clone, Debug)]
pub struct MemberSpec<'a> {
    /// Its id (`n1`, ...).
    pub id: &'a str,
    /// Where it listens.
    pub listen: Listen,
    /// Every member (itself included), with the peer address this member
    /// dials to reach it (a proxy's, on proxies, for databases that dial
    /// per link; the member's own peer address otherwise).
    pub cluster: &'a [(String, SocketAddr)],
    /// Its data directory (a lazyfs mount with power faults).
    pub data_dir: &'a Path,
    /// Where our node writes `events.jsonl` (others ignore it).
    pub events_path: &'a Path,
}

/// A database: how its members are started and what it supports.
pub trait Db: Send + Sync {
    /// Which database this is.
    fn kind(&self) -> DbKind;
    /// What to execute for a member.
    fn bin(&self) -> &NodeBin;
    /// One port for clients and peers, or two.
    fn ports(&self) -> Ports;
    /// Whether each member dials each peer at an address given to it
    /// alone (our node's `--peer`), so a proxy per ordered pair can cut
    /// one link apart from another. etcd members dial the one URL each
    /// peer advertises, so on proxies they are connected directly.
    fn dials_per_link(&self) -> bool;
    /// A member's arguments (without the binary).
    fn member_args(&self, member: &MemberSpec) -> Vec<String>;
    /// Connects to the running members (`addrs`: each member's id and
    /// client address, in member order).
    fn connect(&self, addrs: &[(String, SocketAddr)]) -> Result<Arc<dyn Members>, DbError>;
}

/// One request of `bench`'s closed loop.
#[derive(Clone, Debug)]
pub enum BenchOp {
    /// Write `value` at `key`; `seq` grows with each put of the worker
    /// (our node's session; etcd has none).
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Bytes,
        /// The worker's put count.
        seq: u64,
    },
    /// Read the key (linearizable, or as the database's reads are set).
    Get(String),
}

/// What one bench request got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BenchAnswer {
    /// Answered.
    Ok,
    /// This member does not lead; the leader's index in member order if it
    /// said.
    NotLeader(Option<usize>),
    /// Failed (connection, deadline, refusal).
    Error,
}

/// A member's role and term as the member itself reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leader {
    /// The leader's id.
    pub id: String,
    /// Its term.
    pub term: u64,
}

/// The running members of a database, reached over its own API. Cheap to
/// share (`Arc`); every call is bounded by its timeout.
pub trait Members: Send + Sync {
    /// The members' ids and client addresses, in member order.
    fn addrs(&self) -> &[(String, SocketAddr)];

    /// Asks every member; the one that says it leads in the highest term.
    fn leader(&self, timeout: Duration) -> BoxFuture<'_, Option<Leader>>;

    /// A workload client whose home is member `home` (modulo their
    /// number), giving each operation `timeout`.
    fn worker(&self, workload: Workload, home: usize, timeout: Duration) -> Box<dyn Worker>;

    /// At the end of a run, with every member up and the load stopped:
    /// records in `dir` what the state-machine checker compares across
    /// members (our node: nothing, its `events.jsonl` say it all; etcd:
    /// `hashkv.json`). Returns a line for the terminal.
    fn compare(&self, dir: &Path) -> BoxFuture<'_, String>;

    /// Adds member `id`, which will serve peers at `peer` (a learner if
    /// `learner`).
    fn add_member(
        &self,
        id: &str,
        peer: SocketAddr,
        learner: bool,
    ) -> BoxFuture<'_, Result<(), DbError>>;
    /// Removes member `id`.
    fn remove_member(&self, id: &str) -> BoxFuture<'_, Result<(), DbError>>;
    /// Makes learner `id` a voter.
    fn promote_member(&self, id: &str) -> BoxFuture<'_, Result<(), DbError>>;

    /// One closed-loop bench request to member `member`; `worker` picks
    /// among shared connections.
    fn bench_call(
        &self,
        member: usize,
        worker: usize,
        op: BenchOp,
        timeout: Duration,
    ) -> BoxFuture<'_, BenchAnswer>;

    /// Our node's Admin clients, for nemeses that steer Raft by its
    /// Status (figure8); `None` for databases that do not speak `proto/`.
    fn raftkv_clients(&self) -> Option<Vec<(String, node::client::NodeClient)>> {
        None
    }
}

impl dyn Members {
    /// Polls until some member leads, or gives up after `within`.
    pub async fn wait_for_leader(&self, within: Duration) -> Option<Leader> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.leader(Duration::from_millis(300)).await {
                return Some(l);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Member `id`'s index in member order.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.addrs().iter().position(|(m, _)| m == id)
    }
}

/// One worker's client of the database: performs history actions and says
/// what happened ([`Outcome`]).
pub trait Worker: Send {
    /// The member the next operation starts at (the worker's home).
    fn target(&self) -> &str;
    /// A new process begins: it must not share the old one's session.
    fn new_session(&mut self, client_id: u64);
    /// Performs `action` on `key`.
    fn perform<'a>(&'a mut self, key: &'a str, action: &'a Action) -> BoxFuture<'a, Outcome>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_directory_names_its_database_and_old_ones_are_our_nodes() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(DbKind::of_run_dir(dir.path()), DbKind::Raftkv);
        std::fs::write(
            dir.path().join("run.json"),
            r#"{"options": {"db": "etcd"}}"#,
        )
        .unwrap();
        assert_eq!(DbKind::of_run_dir(dir.path()), DbKind::Etcd);
        std::fs::write(dir.path().join("run.json"), r#"{"options": {}}"#).unwrap();
        assert_eq!(DbKind::of_run_dir(dir.path()), DbKind::Raftkv);
        assert!(
            DbKind::parse("mongo")
                .unwrap_err()
                .contains("raftkv or etcd")
        );
    }

    #[test]
    fn etcd_defaults_to_durable_metadata_and_our_node_to_strict() {
        assert_eq!(DbKind::Etcd.default_metadata(), Metadata::Durable);
        assert_eq!(DbKind::Raftkv.default_metadata(), Metadata::Strict);
    }
}
