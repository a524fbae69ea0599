//! The checkers: history (and node event logs) in, verdict out.
//!
//! - [`linearizable`]: every key's operations are linearizable (register or
//!   append model).
//! - [`election`]: at most one leader per term.
//! - [`state_machine`]: no two different entries applied at one index.
//! - [`stats`]: outcome counts; nothing succeeded means unknown.
//! - [`perf`]: latency percentiles and throughput (informative).
//! - [`summary`]: the results in words, for the terminal.
//! - [`evidence`]: when the first anomaly became visible.
//! - This file: [`Results`] (the shape of `results.json`), and the entry
//!   points [`check_history`], [`check_run_dir`] and [`check_path`].
//!
//! The checkers depend on [`crate::history`] only.
//!
//! ## results.json
//!
//! ```text
//! {"valid": true | false | "unknown",          all checkers combined
//!  "checkers": {
//!    "linearizable": {"valid", "keys", "ops", "elapsed_ms",
//!                     "failures": [{"key", "model", "op", "prefix": [index...],
//!                                   "window": [op...], "explanation"}],
//!                     "unknown_keys": [{"key", "reason"}]},
//!    "election":      {"valid", "skipped"?, "terms",
//!                      "violations": [{"term", "nodes": [..], "times": [..]}]},
//!    "state-machine": {"valid", "skipped"?, "indexes", "violation_count",
//!                      "violations": [{"index", "nodes": [..],
//!                                      "entries": [{"node", "term", "digest", "time"}]}]},
//!    "stats":         {"valid", "reason"?, "ops": {"total", "ok", "fail", "info", "pending"},
//!                      "by_f": {"read": {...}, ...}, "nemesis"},
//!    "perf":          {"valid", "latency_ms": {"read": {"count", "p50", "p90", "p99", "max"}},
//!                      "duration_s", "ok_per_s"}},
//!  "run": {...},                               the run's options (written by `harness run`)
//!  "warnings": [...]}                          only when inputs needed repair
//! ```
//!
//! An `op` in `failures` is `{"index", "process", "f", "value", "type",
//! "invoke", "complete", "error"?, "actual"?}`, times in ns; `index` is the
//! invocation's, and is how every report names an operation.
//!
//! ## When there are no node event logs
//!
//! A plain `history.jsonl` or a Jepsen `history.edn` carries no node events,
//! and a node binary given with `--node-bin` may not write them. Then
//! `election` and `state-machine` report `"valid": true` with `"skipped":
//! "no node event logs"`: there is nothing for them to examine, and they do
//! not change the overall verdict. They do not say "unknown", because
//! unknown means "the evidence was there but the checker could not decide"
//! (exit 2), and every check of a Jepsen file would then end in exit 2. The
//! summary prints them as "skipped", never as "valid".

pub mod election;
pub mod evidence;
pub mod linearizable;
pub mod perf;
pub mod state_machine;
pub mod stats;
pub mod summary;
mod verdict;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use verdict::Verdict;

use crate::history::events::{NodeLog, read_run_events};
use crate::history::jepsen::read_edn;
use crate::history::{History, HistoryError, read_jsonl};
use election::ElectionResult;
use linearizable::{LinearizableOptions, LinearizableResult};
use perf::PerfResult;
use state_machine::StateMachineResult;
use stats::StatsResult;

/// Why `election` and `state-machine` had nothing to check.
pub const NO_EVENT_LOGS: &str = "no node event logs";

/// The default of `--check-budget`.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(60);

/// How a check may spend time and memory.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    /// Wall time for the whole linearizability check; keys not finished
    /// in time are unknown.
    pub budget: Duration,
    /// Approximate cap on the memory of the linearizability search caches,
    /// all threads together; a key that needs more is unknown.
    pub memo_bytes: usize,
    /// Threads for the per-key searches; `None`: one per core.
    pub threads: Option<usize>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            budget: DEFAULT_BUDGET,
            memo_bytes: 1 << 30,
            threads: None,
        }
    }
}

/// `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// All checkers combined: any invalid makes it invalid, else any
    /// unknown makes it unknown.
    pub valid: Verdict,
    pub checkers: Checkers,
    /// The run's options, seed and versions (written by `harness run`).
    pub run: serde_json::Value,
    /// Inputs that were read with a repair, such as a torn event-log line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkers {
    pub linearizable: LinearizableResult,
    pub election: ElectionResult,
    #[serde(rename = "state-machine")]
    pub state_machine: StateMachineResult,
    pub stats: StatsResult,
    pub perf: PerfResult,
}

impl Checkers {
    /// (name, verdict, skipped reason) of each checker, in report order.
    pub fn verdicts(&self) -> [(&'static str, Verdict, Option<&str>); 5] {
        [
            ("linearizable", self.linearizable.valid, None),
            (
                "election",
                self.election.valid,
                self.election.skipped.as_deref(),
            ),
            (
                "state-machine",
                self.state_machine.valid,
                self.state_machine.skipped.as_deref(),
            ),
            ("stats", self.stats.valid, self.stats.reason.as_deref()),
            ("perf", self.perf.valid, None),
        ]
    }
}

/// Why a check (or a report, which reads the same inputs) could not be
/// made. Every message names the file, and the line where there is one.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The history or an event log is malformed or unreadable.
    #[error(transparent)]
    Input(#[from] HistoryError),
    #[error("{}: not a run directory (no history.jsonl in it)", .0.display())]
    NoHistory(PathBuf),
    #[error("{}: {source}", path.display())]
    NotFound {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `results.json` or `run.json` is not what the harness writes.
    #[error("{}:{line}: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// An output (results.json, report.html) could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl crate::error::Blame for CheckError {
    fn fault(&self) -> crate::error::Fault {
        match self {
            CheckError::Write { .. } => crate::error::Fault::Harness,
            _ => crate::error::Fault::BadInput,
        }
    }
}

/// Runs every checker on a history and the nodes' event logs (empty: none).
/// `run` is left `{}`.
pub fn check_history(history: &History, logs: &[NodeLog], opts: &CheckOptions) -> Results {
    let threads = opts.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let lin = linearizable::check(
        history,
        &LinearizableOptions {
            deadline: Instant::now() + opts.budget,
            budget: opts.budget,
            memo_bytes: opts.memo_bytes,
            threads,
        },
    );
    let checkers = Checkers {
        linearizable: lin,
        election: election::check(logs),
        state_machine: state_machine::check(logs),
        stats: stats::check(history),
        perf: perf::check(history),
    };
    Results {
        valid: Verdict::combine(checkers.verdicts().iter().map(|v| v.1)),
        checkers,
        run: serde_json::json!({}),
        warnings: logs
            .iter()
            .flat_map(|l| l.warnings.iter().cloned())
            .collect(),
    }
}

/// Checks a run directory (`history.jsonl`, `nodes/*/events.jsonl`) and
/// rewrites its `results.json`. The `run` section is kept from an existing
/// `results.json`, else taken from `run.json`, else `{}`.
pub fn check_run_dir(dir: &Path, opts: &CheckOptions) -> Result<Results, CheckError> {
    let history_path = dir.join("history.jsonl");
    if !history_path.is_file() {
        return Err(CheckError::NoHistory(dir.to_path_buf()));
    }
    let history = read_jsonl(&history_path)?;
    let logs = read_run_events(dir)?;
    let mut results = check_history(&history, &logs, opts);
    results.run = previous_run_section(dir);
    if let Ok(entries) = std::fs::read_dir(dir.join("nodes")) {
        for e in entries.flatten() {
            if e.path().is_dir() && !e.path().join("events.jsonl").is_file() {
                results.warnings.push(format!(
                    "{}: no events.jsonl (election and state-machine safety not checked for this node)",
                    e.path().display()
                ));
            }
        }
    }
    write_results(&dir.join("results.json"), &results)?;
    Ok(results)
}

/// The `run` section for a run directory (see [`check_run_dir`]).
fn previous_run_section(dir: &Path) -> serde_json::Value {
    let read = |name: &str| -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(dir.join(name)).ok()?;
        serde_json::from_str(&text).ok()
    };
    if let Some(run) = read("results.json").and_then(|r| r.get("run").cloned()) {
        return run;
    }
    read("run.json").unwrap_or_else(|| serde_json::json!({}))
}

/// Writes `results.json` atomically (a temporary file renamed over it), so
/// a reader never sees half a file.
pub fn write_results(path: &Path, results: &Results) -> Result<(), CheckError> {
    let werr = |source| CheckError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut text = serde_json::to_string_pretty(results).map_err(|e| werr(e.into()))?;
    text.push('\n');
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(werr)?;
    std::fs::rename(&tmp, path).map_err(werr)
}

/// What [`check_path`] checked.
#[derive(Clone, Debug)]
pub struct Checked {
    pub results: Results,
    /// The history file read.
    pub history: PathBuf,
    /// The `results.json` written, for a run directory.
    pub written: Option<PathBuf>,
}

/// Checks a run directory, a `history.jsonl` or a Jepsen `.edn` file.
pub fn check_path(path: &Path, opts: &CheckOptions) -> Result<Checked, CheckError> {
    let meta = std::fs::metadata(path).map_err(|source| CheckError::NotFound {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        let results = check_run_dir(path, opts)?;
        return Ok(Checked {
            results,
            history: path.join("history.jsonl"),
            written: Some(path.join("results.json")),
        });
    }
    let history = if path.extension().is_some_and(|e| e == "edn") {
        read_edn(path)?
    } else {
        read_jsonl(path)?
    };
    Ok(Checked {
        results: check_history(&history, &[], opts),
        history: path.to_path_buf(),
        written: None,
    })
}
