//! The `node` command line. `--help` is the manual.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::config::ClusterState;
use crate::config::{Bug, NodeConfig, Peer, check_member_addr};
use crate::storage::FsyncPolicy;
use raft::NodeId;

/// A Raft key-value node. One gRPC port serves the `Raft` (peers), `Kv`
/// (clients) and `Admin` services.
#[derive(Parser, Debug)]
#[command(name = "node", version, about, long_about = None)]
pub struct Args {
    /// This node's id, unique in the cluster (e.g. n1).
    #[arg(long)]
    pub id: String,

    /// Address to serve gRPC on; the node binds here and nowhere else.
    /// A bare port means 127.0.0.1:PORT.
    #[arg(long, value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// Directory for the log, hard state, snapshots and events.jsonl.
    /// Created if missing.
    #[arg(long)]
    pub data_dir: PathBuf,

    /// Where to write events.jsonl, the record of roles, applied entries
    /// and snapshots the harness checks (default: DATA_DIR/events.jsonl).
    /// It is evidence, not state: a harness that cuts the power of the data
    /// directory's disk keeps it on another.
    #[arg(long, value_name = "PATH")]
    pub events_file: Option<PathBuf>,

    /// Another member, as ID=HOST:PORT. Repeat for each peer.
    #[arg(long = "peer", value_parser = parse_peer)]
    pub peers: Vec<(String, String)>,

    /// Every RPC carries this id; requests from another cluster are refused.
    #[arg(long, default_value = "raftkv")]
    pub cluster_id: String,

    /// Leader heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub heartbeat_ms: u64,

    /// Election timeout T in milliseconds: a follower that hears no leader for
    /// a random time in [T, 2T) starts an election. Must exceed the heartbeat.
    /// The default, five heartbeats, puts the median from a leader's crash
    /// to the next acknowledged write near 330 ms (BENCHMARKS.md).
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(2..=600_000))]
    pub election_timeout_ms: u64,

    /// `always`: term, vote and log entries reach the disk (fsync) before any
    /// reply that depends on them. `never`: FOR BENCHMARKS ONLY — data sits in
    /// the page cache and a power loss can lose acknowledged writes.
    #[arg(long, value_enum, default_value_t = FsyncArg::Always)]
    pub fsync: FsyncArg,

    /// Snapshot the state machine and discard the log before it every N
    /// applied entries; 0 disables snapshots.
    #[arg(long, default_value_t = 4096)]
    pub snapshot_every: u64,

    /// Largest AppendEntries a leader sends, in bytes of entries (one entry
    /// always goes, however large). Smaller means a follower that is far
    /// behind catches up over more round trips.
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1..=(1 << 30)))]
    pub max_append_bytes: u64,

    /// Threads serving gRPC. The Raft driver and the WAL writer have threads
    /// of their own, so one is enough for a node that shares its machine with
    /// the rest of a local cluster (more only add hand-offs there); raise it
    /// for a node alone on a many-core machine.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: u64,

    /// Turn on a seeded bug (self-test builds only): stale-read, vote-any-log,
    /// commit-old-term, lazy-persist, no-dedup, ignore-lost-tail,
    /// config-before-noop, prevote-votes-leak, commit-past-match,
    /// install-skips-apply, read-before-noop, snapshot-drops-sessions,
    /// ack-overwritten, no-stall-recovery, hardstate-nosync. Repeatable.
    #[arg(long = "bug", hide = !cfg!(feature = "bugs"))]
    pub bugs: Vec<String>,

    /// Only for a node whose data directory is empty (ignored otherwise):
    /// `new` forms a new cluster of this node and its --peer flags;
    /// `existing` joins the running cluster as a new member, which votes
    /// and counts only once its leader has added it (`member add`, or
    /// `member readd` for a node that lost its disk). Unset (the safe
    /// default): the node asks its peers, forms the cluster only if every
    /// one of them is new too, joins if any shows the cluster exists, and
    /// waits while any is out of reach.
    #[arg(long, value_enum)]
    pub initial_cluster_state: Option<ClusterStateArg>,
}

/// `--initial-cluster-state`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ClusterStateArg {
    /// Form a new cluster.
    New,
    /// Join the existing cluster.
    Existing,
}

/// `--fsync`: whether the WAL waits for the disk.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FsyncArg {
    /// fdatasync every batch (what Raft needs).
    Always,
    /// Never: for benchmarks only.
    Never,
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("`{s}` is not HOST:PORT with a numeric IP (e.g. 127.0.0.1:7001)"))
}

fn parse_peer(s: &str) -> Result<(String, String), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not ID=HOST:PORT"))?;
    if id.is_empty() {
        return Err(format!("`{s}`: the peer id is empty"));
    }
    check_member_addr(addr).map_err(|e| format!("`{s}`: {e}"))?;
    Ok((id.to_string(), addr.to_string()))
}

impl Args {
    /// Checks what single flags cannot, and builds the configuration.
    pub fn into_config(self) -> Result<NodeConfig, String> {
        if self.id.is_empty() || self.id.contains(['=', ' ']) {
            return Err(format!(
                "--id `{}`: must be non-empty, without `=` or spaces",
                self.id
            ));
        }
        let mut peers: Vec<Peer> = Vec::new();
        for (id, addr) in self.peers {
            if id == self.id {
                return Err(format!("--peer {id}={addr}: that is this node's own id"));
            }
            if peers.iter().any(|p| p.id.0 == id) {
                return Err(format!("--peer {id}: given twice"));
            }
            peers.push(Peer {
                id: NodeId(id),
                addr,
            });
        }
        if self.election_timeout_ms <= self.heartbeat_ms {
            return Err(format!(
                "--election-timeout-ms {} must be greater than --heartbeat-ms {}",
                self.election_timeout_ms, self.heartbeat_ms
            ));
        }
        let mut bugs = Vec::new();
        for b in &self.bugs {
            if !cfg!(feature = "bugs") {
                return Err(format!(
                    "--bug {b}: this build has no seeded bugs (build with --features bugs)"
                ));
            }
            bugs.push(Bug::parse(b).ok_or_else(|| {
                let names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
                format!("--bug {b}: unknown; known bugs are {}", names.join(", "))
            })?);
        }
        Ok(NodeConfig {
            id: NodeId(self.id),
            listen: self.listen,
            events_file: self
                .events_file
                .unwrap_or_else(|| self.data_dir.join("events.jsonl")),
            data_dir: self.data_dir,
            peers,
            cluster_id: self.cluster_id,
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            election_timeout: Duration::from_millis(self.election_timeout_ms),
            fsync: match self.fsync {
                FsyncArg::Always => FsyncPolicy::Always,
                FsyncArg::Never => FsyncPolicy::Never,
            },
            snapshot_every: self.snapshot_every,
            max_append_bytes: self.max_append_bytes as usize,
            bugs,
            initial_cluster_state: self.initial_cluster_state.map(|s| match s {
                ClusterStateArg::New => ClusterState::New,
                ClusterStateArg::Existing => ClusterState::Existing,
            }),
        })
    }
}

/// The whole `node` program: parse `args` (program name first), run until
/// SIGINT/SIGTERM, and return the exit code. The harness calls this to run
/// its own executable in node mode.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let threads = args.threads as usize;
    let cfg = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("node: error: {e}");
            return 2;
        }
    };
    // Colour codes only help a person at a terminal; in a log file (the
    // harness's node.log) they are noise that grep and editors trip over.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,h2=warn,tower=warn,hyper=warn".into()),
        )
        .try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("node: error: cannot start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("node: error: cannot listen on {}: {e}", cfg.listen);
                return 1;
            }
        };
        match crate::server::serve(cfg, listener, shutdown_signal()).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("node: error: {e}");
                1
            }
        }
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(args: &[&str]) -> Result<NodeConfig, String> {
        let mut v = vec!["node"];
        v.extend_from_slice(args);
        Args::try_parse_from(v)
            .map_err(|e| e.to_string())?
            .into_config()
    }

    const BASE: [&str; 6] = [
        "--id",
        "n1",
        "--listen",
        "127.0.0.1:7001",
        "--data-dir",
        "/tmp/x",
    ];

    #[test]
    fn defaults_follow_the_spec_and_the_failover_tuning() {
        let c = parse(&BASE).unwrap();
        assert_eq!(c.heartbeat, Duration::from_millis(50));
        assert_eq!(c.election_timeout, Duration::from_millis(250));
        assert_eq!(c.fsync, FsyncPolicy::Always);
        assert_eq!(c.cluster_id, "raftkv");
        assert_eq!(c.events_file, Path::new("/tmp/x/events.jsonl"));
        let mut a = BASE.to_vec();
        a.extend(["--events-file", "/elsewhere/n1.jsonl"]);
        assert_eq!(
            parse(&a).unwrap().events_file,
            Path::new("/elsewhere/n1.jsonl")
        );
        let identity = crate::storage::Identity::fresh("raftkv", &c.id);
        let rc = c.raft_config(1, &identity);
        assert_eq!((rc.heartbeat_ticks, rc.election_ticks), (5, 25));
    }

    #[test]
    fn peers_and_bare_ports() {
        let mut a = BASE.to_vec();
        a[3] = "7009";
        a.extend(["--peer", "n2=127.0.0.1:7002", "--peer", "n3=localhost:7003"]);
        let c = parse(&a).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7009");
        assert_eq!(c.peers.len(), 2);
        let none = raft::Membership::default();
        assert_eq!(
            c.peer_addr(&NodeId::new("n3"), &none),
            Some("localhost:7003")
        );
        assert_eq!(c.initial_cluster_state, None);
        a.extend(["--initial-cluster-state", "existing"]);
        let c = parse(&a).unwrap();
        assert_eq!(c.initial_cluster_state, Some(ClusterState::Existing));
    }

    #[test]
    fn bad_input_names_the_flag() {
        let with = |extra: &[&str]| {
            let mut a = BASE.to_vec();
            a.extend_from_slice(extra);
            parse(&a).unwrap_err()
        };
        assert!(with(&["--peer", "n2"]).contains("ID=HOST:PORT"));
        assert!(with(&["--peer", "n2=host"]).contains("HOST:PORT"));
        assert!(with(&["--peer", "n1=127.0.0.1:1"]).contains("own id"));
        assert!(with(&["--peer", "n2=a:1", "--peer", "n2=b:2"]).contains("twice"));
        assert!(with(&["--heartbeat-ms", "400"]).contains("greater than"));
        assert!(with(&["--heartbeat-ms", "abc"]).contains("heartbeat"));
        assert!(with(&["--fsync", "sometimes"]).contains("fsync"));
        assert!(with(&["--bug", "nonsense"]).contains("--bug"));
        assert!(with(&["--initial-cluster-state", "maybe"]).contains("initial-cluster-state"));
        let mut a = BASE.to_vec();
        a[3] = "nowhere";
        assert!(parse(&a).unwrap_err().contains("HOST:PORT"));
    }
}
