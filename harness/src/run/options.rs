//! A run's options, checked before anything starts.

use std::path::PathBuf;
use std::time::Duration;

use lazyfs::Metadata;
use serde_json::{Value, json};

use crate::cluster::DiskKind;
use crate::db::{DbKind, DbSpec};
use crate::nemesis::power::Loss;
use crate::nemesis::shapes::Shape;
use crate::nemesis::targets::Target;
use crate::nemesis::{Choices, Kind};
use crate::net::{Behavior, NetworkKind};
use crate::workload::Workload;

/// Everything a run needs to know, from the flags of `run`, `test-all` or
/// `selftest`.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// How long the load and the faults last.
    pub time_limit: Duration,
    /// Client workers.
    pub concurrency: usize,
    /// Operations per second over all workers; 0: as fast as answers come.
    pub rate: f64,
    /// What the workers do.
    pub workload: Workload,
    /// Keys in use at once.
    pub keys: usize,
    /// Operations on a key before a fresh key replaces it.
    pub ops_per_key: u64,
    /// The nemeses, each running on its own schedule.
    pub nemeses: Vec<Kind>,
    /// The mean time between fault starts and stops.
    pub nemesis_interval: Duration,
    /// Partition shapes to draw from; empty: all.
    pub partition_shapes: Vec<Shape>,
    /// Which nodes kills, pauses and packet faults hit; empty: all targets.
    pub fault_targets: Vec<Target>,
    /// The packet behaviours the packet nemesis draws from; empty: all.
    pub packet_behaviours: Vec<Behavior>,
    /// Namespaces or proxies.
    pub network: NetworkKind,
    /// The seed of every random choice.
    pub seed: u64,
    /// Where the run directory is created.
    pub store: PathBuf,
    /// The database under test (`--db`).
    pub db: DbKind,
    /// etcd: serializable reads (`--etcd-serializable-reads`).
    pub serializable_reads: bool,
    /// The database's binary (`--db-bin`, `--node-bin`); `None`: raftkv
    /// runs the harness's own executable in node mode, etcd `etcd` on `PATH`.
    pub node_bin: Option<PathBuf>,
    /// Record the history without checking it.
    pub no_check: bool,
    /// `--snapshot-every` for every node, when given.
    pub snapshot_every: Option<u64>,
    /// How long the linearizability checker may take.
    pub check_budget: Duration,
    /// Extra flags for every node (timing, seeded bugs): `--db-arg`,
    /// `--node-arg`.
    pub node_args: Vec<String>,
    /// How the workers reach the nodes.
    pub api: node::client::Api,
    /// The command line, for the report's "reproduce with".
    pub command: String,
    /// How power faults are made.
    pub power: PowerOptions,
    /// Nodes that form the cluster at start; the others start outside it
    /// (`None`: all).
    pub initial_members: Option<usize>,
    /// How long the members may take to converge after recovery; zero:
    /// not checked.
    pub convergence_timeout: Duration,
}

/// The default of `--convergence-timeout`.
pub const CONVERGENCE_TIMEOUT: Duration = Duration::from_secs(10);

/// `--snapshot-every` unless told otherwise: at the default load (about
/// 100 log entries a second) a snapshot every second or so, so that every
/// run takes snapshots and a node back from a fault is caught up by one.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 100;

/// raftkv's `--max-append-bytes` in runs (the node's own default is 1 MiB).
/// A 30 s test never builds a backlog near 1 MiB, so every catch-up would
/// travel in one message, with the new leader's own entry beside the old
/// ones; a cluster that runs for months catches followers up over many.
/// A deposed leader's backlog in a run is a dozen entries or so (what its
/// clients sent before check-quorum stopped it, ~20 bytes each: at 256
/// bytes a dozen still went in one message), so two or three entries a
/// message makes every catch-up of a run take several, as those do
/// (`--node-arg=--max-append-bytes=N` replaces it).
pub const TEST_MAX_APPEND_BYTES: u64 = 64;

/// The faults that act on lazyfs disks, which need FUSE.
const DISK_FAULTS: [Kind; 2] = [Kind::Power, Kind::SlowDisk];

/// How power faults are made: `--power-loss`, `--lazyfs-metadata`,
/// `--fsync-delay`. They shape the nodes' lazyfs disks, which exist only
/// when `power` is among the nemeses.
#[derive(Clone, Debug, Default)]
pub struct PowerOptions {
    /// What a power-off throws away.
    pub loss: Loss,
    /// Which metadata changes need an fsync to survive; `None`: the
    /// database's default ([`DbKind::default_metadata`]).
    pub metadata: Option<Metadata>,
    /// How long every fsync on a lazy disk waits (a slower disk).
    pub fsync_delay: Duration,
    /// `power` came with `all`: where FUSE cannot run, the run goes on
    /// without it (and says so) instead of refusing to start.
    pub optional: bool,
}
impl RunOptions {
    /// Rejects combinations that make no sense, naming the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 || self.nodes > 15 {
            return Err(format!("--nodes {}: must be between 1 and 15", self.nodes));
        }
        if self.concurrency == 0 || self.concurrency > 10_000 {
            return Err(format!(
                "--concurrency {}: must be between 1 and 10000",
                self.concurrency
            ));
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return Err(format!(
                "--rate {}: must be a non-negative number",
                self.rate
            ));
        }
        if self.time_limit.is_zero() {
            return Err("--time-limit must be positive".into());
        }
        if self.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        if self.ops_per_key == 0 {
            return Err("--ops-per-key must be at least 1".into());
        }
        if self.nemesis_interval < Duration::from_millis(100) {
            return Err("--nemesis-interval must be at least 0.1 s".into());
        }
        if let Some(m) = self.initial_members {
            if m == 0 || m > self.nodes {
                return Err(format!(
                    "--initial-members {m}: must be between 1 and --nodes ({})",
                    self.nodes
                ));
            }
            if m < self.nodes && !self.nemeses.contains(&Kind::Member) {
                return Err(format!(
                    "--initial-members {m} below --nodes {}: only --nemesis member adds the \
                     other nodes",
                    self.nodes
                ));
            }
            if m < self.nodes && self.network != NetworkKind::Netns {
                return Err(format!(
                    "--initial-members {m} below --nodes {} needs --network netns (this run's \
                     network is {}: members added later are reached at the address they are \
                     added with, which would bypass the proxies that partitions cut)",
                    self.nodes, self.network
                ));
            }
        }
        // Checked here, before the run directory exists: a wrong binary is
        // bad input, not a run that failed.
        if let Some(bin) = &self.node_bin {
            crate::launch::NodeBin::External(bin.clone())
                .check()
                .map_err(|e| format!("--node-bin: {e}"))?;
        }
        if let Some(why) = self
            .nemeses
            .iter()
            .find_map(|k| crate::nemesis::support::unsupported(*k, self.db, self.network))
        {
            return Err(why);
        }
        if self.serializable_reads && self.db != DbKind::Etcd {
            return Err("--etcd-serializable-reads needs --db etcd".into());
        }
        if self.snapshot_every.is_some() && self.db != DbKind::Raftkv {
            return Err(format!(
                "--snapshot-every is a flag of our node; pass {}'s own with --db-arg",
                self.db.name()
            ));
        }
        if self.network != NetworkKind::Netns {
            if self.nemeses.contains(&Kind::Packet) {
                return Err(format!(
                    "--nemesis packet needs --network netns (this run's network is {}: a TCP \
                     proxy cannot delay, drop, duplicate, reorder or corrupt packets)",
                    self.network
                ));
            }
            if let Some(s) = self
                .partition_shapes
                .iter()
                .find(|s| !s.works_on(self.network))
            {
                return Err(format!(
                    "--partition-shapes {s} needs --network netns (this run's network is {}: \
                     a proxied connection carries both directions, so a one-way cut cannot \
                     be exact)",
                    self.network
                ));
            }
        }
        Ok(())
    }

    /// What the nemeses choose from.
    pub fn choices(&self) -> Choices {
        Choices {
            shapes: self.partition_shapes.clone(),
            targets: self.fault_targets.clone(),
            behaviours: self.packet_behaviours.clone(),
            loss: self.power.loss,
            fsync_delay: self.power.fsync_delay,
        }
    }

    /// Whether `power` and `slow-disk` (the faults of lazyfs disks) can
    /// run here, settled before anything starts. Where FUSE cannot run,
    /// either asked for by name is an error naming what is missing and how
    /// to get it; those that came with `all` are dropped, and the returned
    /// note says so.
    pub fn settle_power(&mut self) -> Result<Option<String>, String> {
        let Some(first) = self
            .nemeses
            .iter()
            .copied()
            .find(|k| DISK_FAULTS.contains(k))
        else {
            return Ok(None);
        };
        match lazyfs::check_available() {
            Ok(()) => Ok(None),
            Err(e) if self.power.optional => {
                self.nemeses.retain(|k| !DISK_FAULTS.contains(k));
                Ok(Some(format!("FUSE cannot run here: {e}")))
            }
            Err(e) => Err(format!(
                "--nemesis {first} needs FUSE, which cannot run here: {e}"
            )),
        }
    }

    /// The nodes' disks: lazyfs where power or slow-disk faults need it,
    /// else plain.
    pub fn disk(&self) -> DiskKind {
        if self.nemeses.iter().any(|k| DISK_FAULTS.contains(k)) {
            DiskKind::Lazy {
                metadata: self.power.metadata.unwrap_or(self.db.default_metadata()),
                fsync_delay: self.power.fsync_delay,
            }
        } else {
            DiskKind::Plain
        }
    }

    /// What opens the database: its binary, flags, cluster id, reads.
    pub fn db_spec(&self) -> DbSpec {
        // The node takes each flag once: the harness's own choices give
        // way to the same flag in the user's --db-arg.
        let chosen = |flag: &str| {
            self.node_args
                .iter()
                .any(|a| a == flag || a.strip_prefix(flag).is_some_and(|v| v.starts_with('=')))
        };
        let mut args = Vec::new();
        if self.db == DbKind::Raftkv && !chosen("--max-append-bytes") {
            args.extend([
                "--max-append-bytes".to_string(),
                TEST_MAX_APPEND_BYTES.to_string(),
            ]);
        }
        args.extend(self.node_args.iter().cloned());
        if let Some(n) = self.snapshot_every.filter(|_| !chosen("--snapshot-every")) {
            args.extend(["--snapshot-every".to_string(), n.to_string()]);
        }
        DbSpec {
            kind: self.db,
            bin: self.node_bin.clone(),
            args,
            cluster_id: format!("harness-{}", self.seed),
            api: self.api,
            serializable_reads: self.serializable_reads,
            bench_workers: 0,
        }
    }

    /// Client operations give up well before the next fault, so every
    /// outcome is settled within one nemesis period.
    pub fn client_timeout(&self) -> Duration {
        (self.nemesis_interval / 2).clamp(Duration::from_millis(250), Duration::from_secs(2))
    }

    /// No faults in the first seconds: a healthy baseline first.
    pub fn quiet_period(&self) -> Duration {
        (self.time_limit / 6).min(Duration::from_secs(5))
    }

    /// The nemeses as the run directory's name shows them: `partition+kill`, or
    /// `none`.
    pub fn nemesis_label(&self) -> String {
        if self.nemeses.is_empty() {
            "none".into()
        } else {
            self.nemeses
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join("+")
        }
    }

    /// The options as `run.json` records them.
    pub fn to_json(&self) -> Value {
        json!({
            "nodes": self.nodes,
            "time_limit": self.time_limit.as_secs_f64(),
            "concurrency": self.concurrency,
            "rate": self.rate,
            "workload": self.workload.name(),
            "keys": self.keys,
            "ops_per_key": self.ops_per_key,
            "nemesis": self.nemeses.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "nemesis_interval": self.nemesis_interval.as_secs_f64(),
            "partition_shapes": self.partition_shapes.iter().map(|s| s.name()).collect::<Vec<_>>(),
            "fault_targets": self.fault_targets.iter().map(|t| t.name()).collect::<Vec<_>>(),
            "packet_behaviours": self.packet_behaviours.iter().map(|b| b.name()).collect::<Vec<_>>(),
            "network": self.network.name(),
            "seed": self.seed,
            "db": self.db.name(),
            "etcd_serializable_reads": self.serializable_reads,
            "node_bin": self.node_bin.as_ref().map(|p| p.display().to_string()),
            "snapshot_every": self.snapshot_every,
            "check_budget": self.check_budget.as_secs_f64(),
            "node_args": self.node_args,
            "api": self.api.name(),
            "client_timeout": self.client_timeout().as_secs_f64(),
            "disk": self.disk().name(),
            "power_loss": self.power.loss.name(),
            "lazyfs_metadata": match self.disk() {
                DiskKind::Lazy { metadata, .. } => Some(metadata.to_string()),
                DiskKind::Plain => None,
            },
            "fsync_delay_ms": self.power.fsync_delay.as_secs_f64() * 1e3,
            "initial_members": self.initial_members.unwrap_or(self.nodes),
            "convergence_timeout": self.convergence_timeout.as_secs_f64(),
        })
    }
}
