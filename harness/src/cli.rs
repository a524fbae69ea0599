//! The command line: one [`Command`] variant per subcommand, its flags
//! documented where they are defined (`--help` is the manual). Adding a
//! subcommand is one variant here and one match arm in `main.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::check::DEFAULT_BUDGET;
use crate::nemesis::Kind;
use crate::sim::Workload;

/// Jepsen-style fault injection and consistency checking for the Raft KV node.
#[derive(Debug, Parser)]
#[command(name = "harness", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a local cluster, drive clients while injecting faults, record
    /// the history, then check it.
    ///
    /// Exit status: 0 valid, 1 an anomaly was found, 2 undecided, 254 bad
    /// arguments, 255 the harness failed (e.g. no leader could be elected).
    Run(RunArgs),
    /// Check a run directory, a history.jsonl or a Jepsen history.edn.
    ///
    /// Exit status: 0 valid, 1 an anomaly was found, 2 no anomaly found but
    /// a checker could not decide, 254 bad arguments or input, 255 internal
    /// failure. For a run directory, rewrites its results.json.
    Check(CheckArgs),
    /// Time the checkers on generated histories (a benchmark).
    ///
    /// Without --ops, runs the two standard scenarios: (a) 100,000
    /// operations over 100 keys and (b) 1,000,000 operations over 1,000 keys,
    /// both with 20 concurrent clients and 1% unknown outcomes. Build with
    /// --release for meaningful numbers.
    #[command(name = "bench-check")]
    BenchCheck(BenchCheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A run directory, a history.jsonl, or a Jepsen history.edn.
    pub path: PathBuf,
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
    #[command(flatten)]
    pub budget: BudgetArgs,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
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
    #[arg(long, default_value = "register", value_parser = parse_workload)]
    pub workload: Workload,
    /// Keys in use at once.
    #[arg(long, default_value_t = 8)]
    pub keys: usize,
    /// Operations on a key before a fresh key replaces it.
    #[arg(long, default_value_t = 200)]
    pub ops_per_key: u64,
    /// Faults: none, all, or a comma list of partition, kill, pause.
    #[arg(long, default_value = "none", value_parser = parse_nemeses)]
    pub nemesis: NemesisList,
    /// Mean seconds between fault starts and stops.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = parse_secs)]
    pub nemesis_interval: f64,
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
    /// Record the history but do not check it (exit 0 unless the run failed).
    #[arg(long)]
    pub no_check: bool,
    /// Passed to every node: snapshot every N log entries (0 disables).
    #[arg(long, value_name = "N")]
    pub snapshot_every: Option<u64>,
    /// Extra flag for every node, e.g. `--node-arg=--bug=stale-read`
    /// (repeatable).
    #[arg(long = "node-arg", value_name = "FLAG", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    #[command(flatten)]
    pub budget: BudgetArgs,
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    match s {
        "register" => Ok(Workload::Register),
        "append" => Ok(Workload::Append),
        _ => Err(format!(
            "unknown workload {s:?}; expected register or append"
        )),
    }
}

/// `--nemesis` as one value (a comma list), not repeated flags.
#[derive(Debug, Clone)]
pub struct NemesisList(pub Vec<Kind>);

fn parse_nemeses(s: &str) -> Result<NemesisList, String> {
    Kind::parse_list(s).map(NemesisList)
}
