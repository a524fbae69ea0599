//! The command line: one [`Command`] variant per subcommand, its flags
//! documented where they are defined (`--help` is the manual). Adding a
//! subcommand is one variant here and one match arm in `main.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::check::DEFAULT_BUDGET;
use crate::nemesis::Kind;
use crate::nemesis::shapes::Shape;
use crate::nemesis::targets::Target;
use crate::workload::Workload;

/// Jepsen-style fault injection and consistency checking for the Raft KV node.
#[derive(Debug, Parser)]
#[command(name = "harness", version)]
pub struct Cli {
    /// The subcommand and its flags.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands; each variant's text is its `--help`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a local cluster, drive clients while injecting faults, record
    /// the history, then check it.
    ///
    /// Exit status: 0 valid, 1 an anomaly was found, 2 undecided, 254 bad
    /// arguments, 255 the harness failed (e.g. no leader could be elected).
    Run(RunArgs),
    /// Run a matrix of nemesis sets × cluster sizes × --test-count, each a
    /// normal run in its own directory.
    ///
    /// Exit status: 255 if a run crashed, else 1 if any run was invalid,
    /// else 2 if any was unknown, else 0.
    #[command(name = "test-all")]
    TestAll(TestAllArgs),
    /// Run each seeded bug of the node with the faults that should expose
    /// it and report which checker caught it (needs `--features bugs`).
    ///
    /// Exit status: 0 every bug caught within --within seconds for every
    /// seed, 1 otherwise.
    Selftest(SelftestArgs),
    /// Closed-loop load against a fresh local cluster: ops/s and latency
    /// percentiles beside the disk's fsync bound; --failover N times
    /// leader kills. Build with --release for meaningful numbers.
    Bench(BenchArgs),
    /// Talk to a running node by hand: get, put, cas, append, status.
    /// Follows not-leader redirects. Exit 0 ok, 1 cas mismatch or no
    /// leader, 254 bad arguments, 255 the node could not be reached.
    Kv(KvArgs),
    /// Check a run directory, a history.jsonl or a Jepsen history.edn.
    ///
    /// Exit status: 0 valid, 1 an anomaly was found, 2 no anomaly found but
    /// a checker could not decide, 254 bad arguments or input, 255 internal
    /// failure. For a run directory, rewrites its results.json.
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
    Report(ReportArgs),
    /// Time the checkers on generated histories (a benchmark).
    ///
    /// Without --ops, runs the two standard scenarios: (a) 100,000
    /// operations over 100 keys and (b) 1,000,000 operations over 1,000 keys,
    /// both with 20 concurrent clients and 1% unknown outcomes. Build with
    /// --release for meaningful numbers.
    #[command(name = "bench-check")]
    BenchCheck(BenchCheckArgs),
}

/// `harness check PATH`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A run directory, a history.jsonl, or a Jepsen history.edn.
    pub path: PathBuf,
    /// How long the checkers may take.
    #[command(flatten)]
    pub budget: BudgetArgs,
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

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() && x < 1e9 => Ok(x),
        _ => Err(format!("expected a positive number of seconds, got {s:?}")),
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
    /// Also time writing the history to a temporary history.jsonl and
    /// reading it back.
    #[arg(long)]
    pub with_io: bool,
    /// Plant an anomaly: the ok read in the middle of the history returns a
    /// value nobody wrote, so the check must end invalid (times the search
    /// for a failure, which explores every order before it gives up).
    #[arg(long)]
    pub corrupt_read: bool,
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
    /// Faults: none, all (partition, kill, pause), or a comma list of
    /// partition, kill, pause, figure8 (README: what figure8 does).
    #[arg(long, default_value = "none", value_parser = parse_nemeses)]
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
    /// Mean seconds between fault starts and stops.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_secs)]
    pub nemesis_interval: f64,
    /// Partition shapes to draw from, comma-separated: random-halves,
    /// isolate-one, isolate-leader, majorities-ring, bridge (default: all).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub partition_shapes: Vec<Shape>,
    /// Nodes that kills and pauses hit, comma-separated: one, leader,
    /// minority, majority, all (default: all of these, whole-cluster
    /// crashes rarest).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub fault_targets: Vec<Target>,
    /// Seed of every random choice of the harness (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where run directories are created.
    #[arg(long, default_value = "histories")]
    pub store: PathBuf,
    /// Test another binary that takes the node's flags (default: the node
    /// built into this harness).
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,
    /// Passed to every node: snapshot every N log entries (0 disables).
    #[arg(long, value_name = "N")]
    pub snapshot_every: Option<u64>,
    /// Extra flag for every node, e.g. `--node-arg=--bug=stale-read`
    /// (repeatable).
    #[arg(long = "node-arg", value_name = "FLAG", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// How the workers reach the nodes: unary (one RPC per operation) or
    /// stream (the workers' operations to a node share one `Kv.Stream`,
    /// so the checkers judge that path under faults too).
    #[arg(long, default_value = "unary", value_parser = node::client::Api::parse)]
    pub api: node::client::Api,
    /// How long the checkers may take.
    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// `harness test-all`: a matrix of runs.
#[derive(Debug, Args, Clone)]
pub struct TestAllArgs {
    /// Nemesis sets to run, separated by `;`, each as for `run --nemesis`.
    #[arg(long, default_value = "none;partition;kill;pause;all", value_parser = parse_nemesis_sets)]
    pub nemeses: NemesisSets,
    /// Cluster sizes to run, comma-separated.
    #[arg(long, default_value = "3", value_parser = parse_sizes)]
    pub nodes: Sizes,
    /// Runs of each (nemesis set, size) cell.
    #[arg(long, default_value_t = 1)]
    pub test_count: u32,
    /// Write a JUnit XML report here: one testcase per run (and per bug
    /// and seed of --selftest).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// After the matrix, the seeded-bug self-test (needs `--features
    /// bugs`): every bug, --test-count seeds each, each allowed
    /// --selftest-within seconds of load on fresh clusters; a bug not
    /// caught fails the suite (exit 1) as an invalid run does.
    #[arg(long)]
    pub selftest: bool,
    /// Run time allowed to catch each bug in --selftest.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = parse_secs)]
    pub selftest_within: f64,
    /// Everything about each run but the cluster size and the faults.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// `harness selftest`: the seeded bugs, each run until caught.
#[derive(Debug, Args, Clone)]
pub struct SelftestArgs {
    /// Seeded bugs to run, comma-separated (default: all of them).
    #[arg(long, value_delimiter = ',')]
    pub bugs: Vec<String>,
    /// Seeds per bug (the catch rate is measured over these).
    #[arg(long, default_value_t = 1)]
    pub seeds: u32,
    /// Run time allowed to catch each bug, split into attempts of
    /// --attempt seconds on fresh clusters.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = parse_secs)]
    pub within: f64,
    /// Seconds of load per attempt.
    #[arg(long, value_name = "SECS", default_value_t = 20.0, value_parser = parse_secs)]
    pub attempt: f64,
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
}

/// `--nemeses` of test-all.
#[derive(Debug, Clone)]
pub struct NemesisSets(pub Vec<Vec<Kind>>);

fn parse_nemesis_sets(s: &str) -> Result<NemesisSets, String> {
    let sets = s
        .split(';')
        .map(Kind::parse_list)
        .collect::<Result<Vec<_>, _>>()?;
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
        .map(|n| {
            n.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=15).contains(n))
                .ok_or_else(|| format!("expected cluster sizes between 1 and 15, got {n:?}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Sizes)
}

/// `--nemesis` as one value (a comma list), not repeated flags.
#[derive(Debug, Clone)]
pub struct NemesisList(pub Vec<Kind>);

fn parse_nemeses(s: &str) -> Result<NemesisList, String> {
    Kind::parse_list(s).map(NemesisList)
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
    /// Bytes per written value.
    #[arg(long, default_value_t = 100)]
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
    /// Extra flag for every node (repeatable).
    #[arg(long = "node-arg", value_name = "FLAG", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Threads of the load generator. One keeps the client's CPU (and its
    /// thread hand-offs) off the nodes' backs when they share the machine.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub client_threads: u64,
    /// How clients reach the nodes: stream (the calls of the workers that
    /// share a connection travel together on one `Kv.Stream`) or unary
    /// (one RPC per call).
    #[arg(long, default_value = "stream", value_parser = node::client::Api::parse)]
    pub api: node::client::Api,
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
    /// Set KEY to VALUE.
    Put {
        /// The key written.
        key: String,
        /// Its new value.
        #[arg(allow_hyphen_values = true)]
        value: String,
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
