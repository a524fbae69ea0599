//! The command line: one [`Command`] variant per subcommand, its flags
//! documented where they are defined (`--help` is the manual). Adding a
//! subcommand is one variant here and one match arm in `main.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::check::DEFAULT_BUDGET;
use crate::db::DbKind;
use crate::nemesis::power::Loss;
use crate::nemesis::shapes::Shape;
use crate::nemesis::targets::Target;
use crate::nemesis::{Kind, NemesisList};
use crate::net::{Behavior, NetworkKind};
use crate::workload::Workload;

/// Jepsen-style fault injection and consistency checking for the Raft KV node.
#[derive(Debug, Parser)]
#[command(name = "harness", version)]
pub struct Cli {
    /// The subcommand and its flags.
    #[command(subcommand)]
    pub command: Command,
}

impl Command {
    /// The `--network` of a subcommand that starts clusters (`run`,
    /// `test-all`, `selftest`, `bench`); `None` for the others, which never
    /// enter namespaces.
    pub fn network_mut(&mut self) -> Option<&mut NetworkArg> {
        match self {
            Command::Run(a) => Some(&mut a.load.network),
            Command::TestAll(a) => Some(&mut a.load.network),
            Command::Selftest(a) => Some(&mut a.network),
            Command::Bench(a) => Some(&mut a.network),
            Command::Kv(_) | Command::Check(_) | Command::Report(_) | Command::BenchCheck(_) => {
                None
            }
        }
    }
}

/// The subcommands; each variant's text is its `--help`.
// Each subcommand takes a negative number as a flag's value (`--nodes -1`
// is refused by the flag's own check, which names it), not as an unknown
// flag `-1`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a local cluster, drive clients while injecting faults, record
    /// the history, then check it.
    ///
    /// Exit status: 0 valid, 1 an anomaly was found, 2 undecided, 254 bad
    /// arguments, 255 the harness failed (e.g. no leader could be elected).
    #[command(allow_negative_numbers = true)]
    Run(RunArgs),
    /// Run a matrix of nemesis sets × cluster sizes × --test-count, each a
    /// normal run in its own directory.
    ///
    /// Exit status: 255 if a run crashed, else 1 if any run was invalid,
    /// else 2 if any was unknown, else 0.
    #[command(name = "test-all")]
    #[command(allow_negative_numbers = true)]
    TestAll(TestAllArgs),
    /// Run each seeded bug of the node against the default test-all suite
    /// (the only change: `--node-arg=--bug=NAME`), stopping each seed's
    /// suite at its first anomaly, and report which checker caught it and
    /// how fast (needs `--features bugs`).
    ///
    /// Exit status: 0 every bug caught by the suite for every seed, 1
    /// otherwise.
    #[command(allow_negative_numbers = true)]
    Selftest(SelftestArgs),
    /// Closed-loop load against a fresh local cluster: ops/s and latency
    /// percentiles beside the disk's fsync bound; --failover N times
    /// leader kills. Build with --release for meaningful numbers.
    #[command(allow_negative_numbers = true)]
    Bench(BenchArgs),
    /// Talk to a running node by hand: get, put, cas, append, status.
    /// Follows not-leader redirects. Exit 0 ok, 1 cas mismatch or no
    /// leader, 254 bad arguments, 255 the node could not be reached.
    Kv(KvArgs),
    /// Check a run directory or a history file in any format it reads
    /// (the harness's, Jepsen's, Knossos's, Porcupine's).
    ///
    /// Exit status: 0 valid, 1 an anomaly was found, 2 no anomaly found but
    /// a checker could not decide (or could not run: the reason is given),
    /// 254 bad arguments or input, 255 internal failure. For a run
    /// directory, rewrites its results.json (if it cannot, the verdict
    /// still stands, with a warning).
    #[command(allow_negative_numbers = true)]
    Check(CheckArgs),
    /// Write report.html: one self-contained page with the verdicts, a
    /// timeline of operations, faults and node roles, latency and
    /// throughput, the anomalies, and a summary per node.
    ///
    /// PATH is a run directory (writes PATH/report.html from its
    /// history.jsonl, results.json, run.json and node event logs), a
    /// history.jsonl or a Jepsen history.edn (writes report.html beside
    /// it). Without a results.json the checkers run first (nothing else is
    /// written). Exit status: 0 the report was written, whatever the
    /// verdict (`harness check` judges), 254 bad arguments or input, 255
    /// the report could not be written.
    #[command(allow_negative_numbers = true)]
    Report(ReportArgs),
    /// Time `harness check` on generated history files (a benchmark).
    ///
    /// Without --ops, runs the two standard scenarios: (a) 100,000
    /// operations over 100 keys and (b) 1,000,000 operations over 1,000 keys,
    /// both with 20 concurrent clients and 1% unknown outcomes. Each is
    /// written as a history.jsonl and checked by a child `harness check`,
    /// end to end: wall time, reading apart from checking, peak memory.
    /// Build with --release for meaningful numbers.
    #[command(name = "bench-check")]
    #[command(allow_negative_numbers = true)]
    BenchCheck(BenchCheckArgs),
}

/// `harness check PATH`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A run directory, or a history file: history.jsonl, a Jepsen
    /// history.edn or history.txt, Jepsen log lines, Knossos's or
    /// Porcupine's test data (the format is told from the content).
    pub path: PathBuf,
    /// How to read the history.
    #[command(flatten)]
    pub input: InputArgs,
    /// Also print how long reading the history and checking it took.
    #[arg(long)]
    pub timings: bool,
    /// How long the checkers may take.
    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// How to read a history and what its keys start as.
#[derive(Debug, Args, Clone, Default)]
pub struct InputArgs {
    /// The history's format: jsonl, edn or text (Jepsen's history.txt and
    /// log lines). Default: told from the content.
    #[arg(long, value_name = "FORMAT", value_parser = crate::history::read::Format::parse)]
    pub format: Option<crate::history::read::Format>,
    /// What keys hold before the history begins: a JSON value for every
    /// key (`0`, `'"x"'`, `[1,2]`, `null` for absent), or KEY=VALUE for one
    /// key (repeatable; beats the value for every key). Default: absent,
    /// or "" for Porcupine's kv histories. Knossos's cas-register tests
    /// start registers at 0.
    #[arg(
        long = "initial-value",
        value_name = "[KEY=]JSON",
        allow_hyphen_values = true
    )]
    pub initial_values: Vec<String>,
    /// Order events by their position in the file and ignore their times
    /// (for histories whose times go backwards).
    #[arg(long)]
    pub ignore_times: bool,
    /// Read integer values as their decimal text: keys become strings that
    /// appends concatenate (the Kv API's own semantics).
    #[arg(long)]
    pub strings: bool,
    /// In Jepsen's formats, a cas that failed without an error is a
    /// mismatch (it saw another value), as Jepsen's early clients meant and
    /// Porcupine reads their logs. Default: a failure says nothing, as
    /// Knossos reads it.
    #[arg(long)]
    pub fail_cas_mismatch: bool,
}

/// `harness report PATH`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory, a history.jsonl, or a Jepsen history.edn.
    pub path: PathBuf,
    /// Where to write the report (default: PATH/report.html for a run
    /// directory, report.html beside a history file).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Do not run the checkers when there is no results.json: the report
    /// then shows the history without verdicts.
    #[arg(long)]
    pub no_check: bool,
    /// How long the checkers may take when they run.
    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// The checkers' time budget; shared by every subcommand that checks.
#[derive(Debug, Args, Clone, Copy)]
pub struct BudgetArgs {
    /// Seconds the linearizability checker may spend in all; keys it has
    /// not decided by then are reported unknown (exit 2), never valid.
    #[arg(long = "check-budget", value_name = "SECS", default_value_t = DEFAULT_BUDGET.as_secs_f64(), value_parser = parse_secs)]
    pub check_budget: f64,
}

impl BudgetArgs {
    /// The budget as a duration.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.check_budget)
    }
}

fn parse_value_size(s: &str) -> Result<usize, String> {
    let max = node::kv::command::MAX_VALUE;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number of bytes from 1 to {max} (the node's limit on a value)"
        )),
    }
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() && x < 1e9 => Ok(x),
        _ => Err(format!("expected a positive number of seconds, got {s:?}")),
    }
}

fn parse_secs_or_zero(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x >= 0.0 && x.is_finite() && x < 1e9 => Ok(x),
        _ => Err(format!(
            "expected a number of seconds (0 or more), got {s:?}"
        )),
    }
}

/// `harness bench-check`: the checkers timed on simulated histories.
#[derive(Debug, Args)]
pub struct BenchCheckArgs {
    /// Run one custom scenario with this many operations instead of the
    /// standard ones.
    #[arg(long)]
    pub ops: Option<usize>,
    /// Keys of the custom scenario.
    #[arg(long, default_value_t = 100)]
    pub keys: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 20)]
    pub concurrency: usize,
    /// Fraction of operations with an unknown outcome.
    #[arg(long, default_value_t = 0.01)]
    pub info_rate: f64,
    /// Register values are drawn from 0..VALUES (0: every value is new).
    #[arg(long, default_value_t = 5)]
    pub values: i64,
    /// Use the append workload instead of registers.
    #[arg(long)]
    pub append: bool,
    /// Seed of the simulated histories.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Plant an anomaly: the ok read in the middle of the history returns a
    /// value nobody wrote, so the check must end invalid (times the search
    /// for a failure, which explores every order before it gives up).
    #[arg(long)]
    pub corrupt_read: bool,
    /// Times each binary checks each history (the median is shown: the
    /// machine may be busy).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Also time `PATH check` on the same files (an older build, say), in
    /// turn with this one, and show the ratios (repeatable).
    #[arg(long = "compare", value_name = "PATH")]
    pub compare: Vec<PathBuf>,
    /// Keep the generated histories in this directory (default: a
    /// temporary one, removed at the end).
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Only generate the history (--ops, --keys, ...) into FILE (what
    /// bench-check runs in a child).
    #[arg(long, value_name = "FILE", hide = true)]
    pub generate_to: Option<PathBuf>,
    /// How long the checkers may take.
    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// `harness run`: one run.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Faults: none, all (partition, packet, kill, pause, power; packet on
    /// netns only, power only where FUSE can run), or a comma list of
    /// partition, packet, kill, pause, figure8, power, member, wipe
    /// (README: what each does; figure8 not with partition or packet).
    #[arg(long, default_value = "none", value_parser = Kind::parse_list)]
    pub nemesis: NemesisList,
    /// Record the history but do not check it (exit 0 unless the run failed).
    #[arg(long)]
    pub no_check: bool,
    /// Everything else about the run.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Everything about a run but the cluster size and the faults: shared by
/// `run`, `test-all` and `selftest`.
#[derive(Debug, Args, Clone)]
pub struct LoadArgs {
    /// Seconds of load and faults (recovery and final reads come after).
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_secs)]
    pub time_limit: f64,
    /// Concurrent client workers.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Operations per second in total, at most (0: as fast as possible).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// register: read/write/cas of small integers; append: unique tokens.
    #[arg(long, default_value = "register", value_parser = Workload::parse)]
    pub workload: Workload,
    /// Keys in use at once.
    #[arg(long, default_value_t = 8)]
    pub keys: usize,
    /// Operations on a key before a fresh key replaces it.
    #[arg(long, default_value_t = 200)]
    pub ops_per_key: u64,
    /// Mean seconds between fault starts and stops. Short, so that a 30 s
    /// run sees a dozen faults of each kind, and so a dozen elections.
    #[arg(long, value_name = "SECS", default_value_t = 2.0, value_parser = parse_secs)]
    pub nemesis_interval: f64,
    /// Partition shapes to draw from, comma-separated: random-halves,
    /// isolate-one, isolate-leader, majorities-ring, bridge, one-way
    /// (netns only), one-way-dial (default: every shape the network can cut).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub partition_shapes: Vec<Shape>,
    /// Nodes that kills, pauses, packet faults and power cuts hit, comma-separated:
    /// one, leader, minority, majority, all (default: all of these,
    /// whole-cluster faults rarest).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub fault_targets: Vec<Target>,
    /// Packet faults the packet nemesis draws from, comma-separated: delay
    /// (50 ms ± 10 ms, normal), loss (20%, correlation 75%), duplicate,
    /// reorder, corrupt (each 20%, 75%), rate (1 Mbit/s), or all. Each
    /// fault applies a random non-empty subset of them to every link of
    /// its targets.
    #[arg(long, value_name = "LIST", default_value = "all", value_parser = parse_behaviours)]
    pub packet_behaviours: Behaviours,
    /// The network between the nodes.
    #[command(flatten)]
    pub network: NetworkArg,
    /// What a power cut (`--nemesis power`) throws away: all or torn.
    #[arg(long, default_value = "all", value_parser = Loss::parse, long_help = power_loss_help())]
    pub power_loss: Loss,
    /// Which metadata changes must be fsynced to survive a power cut:
    /// strict (POSIX) or durable (at once) (default: strict for the node).
    #[arg(long, value_name = "MODEL", value_parser = parse_metadata, long_help = metadata_help())]
    pub lazyfs_metadata: Option<lazyfs::Metadata>,
    /// Milliseconds every fsync waits on the disks of power faults (a
    /// slower disk; lazyfs's own fsyncs never reach the real disk).
    #[arg(long, value_name = "MS", default_value_t = 0.0, value_parser = parse_ms)]
    pub fsync_delay: f64,
    /// Seed of every random choice of the harness (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where run directories are created.
    #[arg(long, default_value = "histories")]
    pub store: PathBuf,
    /// The database under test.
    #[command(flatten)]
    pub db: DbArgs,
    /// Passed to every node of raftkv: snapshot every N log entries (0
    /// disables). Default 100: low, so that every run takes snapshots and
    /// a node that falls behind is caught up by one.
    #[arg(long, value_name = "N")]
    pub snapshot_every: Option<u64>,
    /// etcd: reads are serializable (served from the member's own state,
    /// which etcd documents as possibly stale) instead of linearizable.
    #[arg(long)]
    pub etcd_serializable_reads: bool,
    /// Nodes that form the cluster at start (n1..nM); the others start
    /// outside it, for `--nemesis member` to add (default: all of them).
    #[arg(long, value_name = "M")]
    pub initial_members: Option<usize>,
    /// After recovery, how long every running member may take to reach
    /// the leader's commit index (and a write to succeed) before the
    /// `convergence` checker calls the run invalid; 0 skips the check.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_secs_or_zero)]
    pub convergence_timeout: f64,
    /// How the workers reach the nodes: unary (one RPC per operation) or
    /// stream (the workers' operations to a node share one `Kv.Stream`,
    /// so the checkers judge that path under faults too).
    #[arg(long, default_value = "unary", value_parser = node::client::Api::parse)]
    pub api: node::client::Api,
    /// How long the checkers may take.
    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// `--db`, `--db-bin`, `--db-arg`: shared by every subcommand that starts
/// a cluster.
#[derive(Debug, Args, Clone, Default)]
pub struct DbArgs {
    /// The database under test: raftkv (our node) or etcd (from PATH, or
    /// --db-bin; Debian's package etcd-server).
    #[arg(long = "db", value_name = "raftkv|etcd", default_value = "raftkv", value_parser = DbKind::parse)]
    pub kind: DbKind,
    /// The database's binary (default: raftkv, the node built into this
    /// harness; etcd, `etcd` on PATH). `--node-bin` is the same flag.
    #[arg(long = "db-bin", alias = "node-bin", value_name = "PATH")]
    pub bin: Option<PathBuf>,
    /// Extra flag for every member, after the harness's own, e.g.
    /// `--db-arg=--bug=stale-read` or `--db-arg=--unsafe-no-fsync`
    /// (repeatable). raftkv's `--max-append-bytes` and `--snapshot-every`,
    /// which the harness sets, give way to the same flag here. `--node-arg`
    /// is the same flag.
    #[arg(
        long = "db-arg",
        alias = "node-arg",
        value_name = "FLAG",
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

/// `--network`, shared by every subcommand that starts a cluster.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct NetworkArg {
    /// netns: a network namespace per node (addresses in 198.18.0.0/15),
    /// partitions and packet faults in the packet filter (needs root, ip,
    /// nft, iptables, tc); proxy: loopback ports and a TCP proxy between
    /// every two nodes (no packet faults). Default: netns where it can run,
    /// proxy otherwise; printed at start and recorded in run.json.
    #[arg(long = "network", value_name = "netns|proxy", value_parser = NetworkKind::parse)]
    pub network: Option<NetworkKind>,
}

impl NetworkArg {
    /// The network to use: as asked (after `main` settled the default),
    /// else proxies, which need nothing.
    pub fn kind(&self) -> NetworkKind {
        self.network.unwrap_or(NetworkKind::Proxy)
    }
}

/// `--packet-behaviours`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behaviours(pub Vec<Behavior>);

fn parse_behaviours(s: &str) -> Result<Behaviours, String> {
    if s.trim() == "all" {
        return Ok(Behaviours(Behavior::ALL.to_vec()));
    }
    let mut list = Vec::new();
    for name in s.split(',') {
        let b: Behavior = name.trim().parse().map_err(|e: netlab::NetlabError| {
            e.to_string()
                .trim_start_matches("invalid packet faults: ")
                .to_string()
        })?;
        if !list.contains(&b) {
            list.push(b);
        }
    }
    list.sort();
    Ok(Behaviours(list))
}

/// `harness test-all`: a matrix of runs.
#[derive(Debug, Args, Clone)]
pub struct TestAllArgs {
    /// Nemesis sets to run, separated by `;`, each as for `run --nemesis`,
    /// optionally with its own cluster size (`all@5`; otherwise every size
    /// of --nodes). A set may come more than once: each cell has its own
    /// seed. The default runs each kind alone, then the cells that caught
    /// the most in the self-test's measurements (partition, `all`) again,
    /// one of them on 5 nodes.
    #[arg(
        long,
        default_value = DEFAULT_NEMESES,
        value_parser = parse_nemesis_sets
    )]
    pub nemeses: NemesisSets,
    /// Cluster sizes to run, comma-separated.
    #[arg(long, default_value = "3", value_parser = parse_sizes)]
    pub nodes: Sizes,
    /// Workloads the cells take in turn, comma-separated (cell i runs the
    /// (i mod n)-th): append lists show lost, stale, duplicated and
    /// reordered updates; registers add compare-and-set. Append comes
    /// first, so the cells of kills and of `all` run it. Overrides --workload.
    #[arg(long, value_name = "LIST", default_value = "append,register", value_delimiter = ',', value_parser = Workload::parse)]
    pub workloads: Vec<Workload>,
    /// Runs of each (nemesis set, size) cell.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub test_count: u32,
    /// Write a JUnit XML report here: one testcase per run (and per bug
    /// and seed of --selftest).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// After the matrix, the seeded-bug self-test (needs `--features
    /// bugs`): every bug, --test-count seeds each, each against this same
    /// matrix with its flags (only `--bug` added), stopped at its first
    /// anomaly; a bug not caught fails the suite (exit 1) as an invalid run
    /// does.
    #[arg(long)]
    pub selftest: bool,
    /// Everything about each run but the cluster size and the faults.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// `harness test-all` with every flag at its default (the suite a user
/// runs when they name nothing): what the self-test seeds its bugs into.
pub fn default_test_all(network: NetworkKind) -> TestAllArgs {
    #[derive(Parser)]
    struct Defaults {
        #[command(flatten)]
        args: TestAllArgs,
    }
    let mut d = Defaults::parse_from(["test-all"]).args;
    d.load.network.network = Some(network);
    d
}

/// `harness selftest`: the seeded bugs, each against the default suite.
#[derive(Debug, Args, Clone)]
pub struct SelftestArgs {
    /// Seeded bugs to run, comma-separated (default: all of them).
    #[arg(long, value_delimiter = ',')]
    pub bugs: Vec<String>,
    /// Seeds per bug (the catch rate is measured over these); each seed
    /// runs the whole default test-all suite, stopped at its first anomaly.
    #[arg(long, default_value_t = 5)]
    pub seeds: u32,
    /// First seed; seed i of a bug is FIRST + i.
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// Where run directories are created.
    #[arg(long, default_value = "histories/selftest")]
    pub store: PathBuf,
    /// Write a JUnit XML report here: one testcase per bug and seed, a
    /// failure when the bug was not caught.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// The network between the nodes.
    #[command(flatten)]
    pub network: NetworkArg,
    /// raftkv: our node's seeded bugs (needs `--features bugs`); etcd:
    /// configurations etcd documents as unsafe (serializable-reads,
    /// unsafe-no-fsync), which must be found invalid.
    #[arg(long = "db", value_name = "raftkv|etcd", default_value = "raftkv", value_parser = DbKind::parse)]
    pub db: DbKind,
}

/// The default `--nemeses` of test-all: 13 cells.
pub const DEFAULT_NEMESES: &str = "none;partition;kill;pause;all;member,wipe,kill,partition;figure8;\
     partition;all;all@5;member,kill,partition@5;all;partition";

/// `--nemeses` of test-all.
#[derive(Debug, Clone)]
pub struct NemesisSets(pub Vec<NemesisSet>);

/// One set of `--nemeses`: `KINDS` or `KINDS@N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NemesisSet {
    /// The nemeses, as for `run --nemesis`.
    pub list: NemesisList,
    /// The cluster size of this set's cells (`@N`); none: every size of
    /// `--nodes`.
    pub nodes: Option<usize>,
}

fn parse_nemesis_sets(s: &str) -> Result<NemesisSets, String> {
    let sets = s
        .split(';')
        .map(|set| {
            let (kinds, nodes) = match set.split_once('@') {
                Some((kinds, n)) => (kinds, Some(parse_size(n)?)),
                None => (set, None),
            };
            Ok(NemesisSet {
                list: Kind::parse_list(kinds)?,
                nodes,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if sets.is_empty() {
        return Err("expected at least one nemesis set".into());
    }
    Ok(NemesisSets(sets))
}

/// `--nodes` of test-all.
#[derive(Debug, Clone)]
pub struct Sizes(pub Vec<usize>);

fn parse_sizes(s: &str) -> Result<Sizes, String> {
    s.split(',')
        .map(parse_size)
        .collect::<Result<Vec<_>, _>>()
        .map(Sizes)
}

fn parse_size(n: &str) -> Result<usize, String> {
    n.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=15).contains(n))
        .ok_or_else(|| format!("expected cluster sizes between 1 and 15, got {n:?}"))
}

fn parse_metadata(s: &str) -> Result<lazyfs::Metadata, String> {
    lazyfs::Metadata::parse(s)
        .ok_or_else(|| format!("unknown metadata model {s:?} (expected strict or durable)"))
}

fn parse_ms(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=10_000.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "expected milliseconds between 0 and 10000, got {s:?}"
        )),
    }
}

/// `--power-loss --help`: lazyfs's own words.
fn power_loss_help() -> String {
    format!(
        "What a power cut (`--nemesis power`) throws away from each node's disk:\n\n{}",
        lazyfs::POWER_LOSS_HELP
    )
}

/// `--lazyfs-metadata --help`: exactly what each model keeps, in lazyfs's
/// own words.
fn metadata_help() -> String {
    format!(
        "Which changes survive a power cut (`--nemesis power`) on the nodes' lazyfs disks. \
         Default: strict for the node (it fsyncs every directory it changes).\n\n{}\n\n{}",
        lazyfs::STRICT_MODEL_HELP,
        lazyfs::DURABLE_MODEL_HELP
    )
}

/// `harness bench`: load and failover timing.
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Closed-loop clients.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds of measured load (after a 1 s warm-up).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_secs)]
    pub duration: f64,
    /// write, read (linearizable) or mixed (half each).
    #[arg(long, default_value = "write", value_parser = crate::bench::BenchWorkload::parse)]
    pub workload: crate::bench::BenchWorkload,
    /// Bytes per written value (at most the node's limit, 1 MiB).
    #[arg(long, default_value_t = 100, value_parser = parse_value_size)]
    pub value_size: usize,
    /// Distinct keys written and read.
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// Kill the leader this many times under write load and time each
    /// recovery (replaces the timed load).
    #[arg(long, default_value_t = 0)]
    pub failover: u32,
    /// Where the bench directory (node data, bench.json) is created.
    #[arg(long, default_value = "histories")]
    pub store: PathBuf,
    /// The database under test.
    #[command(flatten)]
    pub db: DbArgs,
    /// etcd: serializable gets instead of linearizable ones.
    #[arg(long)]
    pub etcd_serializable_reads: bool,
    /// Threads of the load generator. One keeps the client's CPU (and its
    /// thread hand-offs) off the nodes' backs when they share the machine.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub client_threads: u64,
    /// How clients reach the nodes: stream (the calls of the workers that
    /// share a connection travel together on one `Kv.Stream`) or unary
    /// (one RPC per call).
    #[arg(long, default_value = "stream", value_parser = node::client::Api::parse)]
    pub api: node::client::Api,
    /// The network between the nodes (on proxy, the peers connect
    /// directly, with no proxy in between).
    #[command(flatten)]
    pub network: NetworkArg,
    /// The nodes' disks: plain (the data directories as they are) or lazy
    /// (a lazyfs mount over each, as power faults use): the same load on
    /// either shows what the FUSE hop costs.
    #[arg(long, default_value = "plain", value_parser = parse_disk)]
    pub disk: String,
    /// With --disk lazy: the metadata model (strict or durable).
    #[arg(long, value_name = "MODEL", value_parser = parse_metadata, long_help = metadata_help())]
    pub lazyfs_metadata: Option<lazyfs::Metadata>,
    /// With --disk lazy: milliseconds every fsync waits (a slower disk).
    #[arg(long, value_name = "MS", default_value_t = 0.0, value_parser = parse_ms)]
    pub fsync_delay: f64,
}

fn parse_disk(s: &str) -> Result<String, String> {
    match s {
        "plain" | "lazy" => Ok(s.to_string()),
        _ => Err(format!("unknown disk {s:?} (expected plain or lazy)")),
    }
}

/// `harness kv`: one request by hand.
#[derive(Debug, Args, Clone)]
pub struct KvArgs {
    /// Any node of the cluster.
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub node: String,
    /// The cluster id the nodes were started with.
    #[arg(long, default_value = "raftkv")]
    pub cluster_id: String,
    /// Seconds to wait for an answer.
    #[arg(long, value_name = "SECS", default_value_t = 3.0, value_parser = parse_secs)]
    pub timeout: f64,
    /// What to ask.
    #[command(subcommand)]
    pub op: KvOp,
}

/// The requests `harness kv` sends.
#[derive(Debug, Subcommand, Clone)]
pub enum KvOp {
    /// Read KEY (linearizable).
    Get {
        /// The key read.
        key: String,
    },
    /// Set KEY to VALUE, or to the bytes of --value-file.
    Put {
        /// The key written.
        key: String,
        /// Its new value.
        #[arg(
            allow_hyphen_values = true,
            required_unless_present = "value_file",
            conflicts_with = "value_file"
        )]
        value: Option<String>,
        /// Read the new value from PATH, byte for byte (`-`: standard
        /// input), for values the command line cannot carry. At most 1 MiB,
        /// the node's limit.
        #[arg(long, value_name = "PATH")]
        value_file: Option<std::path::PathBuf>,
    },
    /// Set KEY to NEW if it holds --expect VALUE (or, with --absent, no value).
    Cas {
        /// The key compared and written.
        key: String,
        /// Its new value.
        new: String,
        /// The value KEY must hold.
        #[arg(
            long,
            value_name = "VALUE",
            required_unless_present = "absent",
            conflicts_with = "absent"
        )]
        expect: Option<String>,
        /// Set KEY only if it has no value.
        #[arg(long)]
        absent: bool,
    },
    /// Append SUFFIX to KEY's value.
    Append {
        /// The key written.
        key: String,
        /// What is added at the end of its value.
        #[arg(allow_hyphen_values = true)]
        suffix: String,
    },
    /// The node's role, term, leader and log positions.
    Status,
    /// The cluster's membership, asked of its leader (any node redirects).
    ///
    /// A change waits at least 30 s (adding a voter waits for it to catch
    /// up), or --timeout if longer. Exit status: 0 done; 1 refused (the
    /// reason is printed; nothing changed) or no leader known; 255 no
    /// answer (a change cut off by its deadline may or may not take
    /// effect: `member list` shows).
    Member {
        /// What to do.
        #[command(subcommand)]
        op: MemberOp,
    },
}

/// `harness kv member ...`.
#[derive(Debug, Subcommand, Clone)]
pub enum MemberOp {
    /// Every member: role, address, incarnation, how far its log matches
    /// the leader's, and whether it waits to be re-added.
    List,
    /// Add node ID (serving at ADDR) as a learner; without --learner it is
    /// then promoted to voter once it has caught up.
    Add {
        /// The new member's id (its --id).
        id: String,
        /// Where it serves, HOST:PORT (its --listen).
        addr: String,
        /// Leave it a learner (receives the log, never votes).
        #[arg(long)]
        learner: bool,
    },
    /// Remove a member (the leader too: it hands over, then steps down).
    Remove {
        /// The member's id.
        id: String,
    },
    /// Make a learner that has caught up a voter.
    Promote {
        /// The learner's id.
        id: String,
    },
    /// Re-add a member that lost its data (restarted on an empty data
    /// directory): remove it, add it back as a learner, promote it once
    /// caught up.
    Readd {
        /// The member's id.
        id: String,
    },
    /// Hand leadership to voter ID.
    Transfer {
        /// The voter's id.
        id: String,
    },
}
