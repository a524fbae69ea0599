//! The checkers: history (and node event logs) in, verdict out.
//!
//! - [`linearizable`]: every key's operations are linearizable (register or
//!   append model).
//! - [`election`]: at most one leader per term.
//! - [`state_machine`]: no two different entries applied at one index;
//!   and ([`changes`]) no leader changed the configuration against Raft's
//!   rules (one change at a time, none before its term's first commit).
//! - [`convergence`]: after recovery, every member caught up with the
//!   leader and a write succeeded (from the run's `convergence` record).
//! - [`replica_state`]: replicas at equal applied indexes hold equal
//!   state (state digests in the event logs; `replicas.json` at the end).
//! - [`availability`]: fault-free stretches keep a share of the rate, and
//!   the final reads succeed after recovery.
//! - [`node_health`]: no node process exits unasked.
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
//!                                      "entries": [{"node", "term", "digest", "time"}]}],
//!                      "changes", "unsafe_changes": [{"node", "term", "index",
//!                                      "committed", "previous", "why", "time"?}]},
//!    "convergence":   {"valid", "skipped"?, "within_s", "leader", "target_index",
//!                      "converged": [node..], "lagging": [{"node", "commit", "applied"}],
//!                      "write_error"?, "explanation"?},
//!    "replica-state": {"valid", "skipped"?, "compared_indexes", "final_compared"?,
//!                      "final_not_compared"?, "violation_count",
//!                      "violations": [{"when", "index", "node", "other", "key",
//!                                      "time"?, "explanation"}]},
//!    "availability":  {"valid", "skipped"?, "reference_per_s", "reference",
//!                      "stretches": [{"from_s", "to_s", "ok_per_s"}],
//!                      "violations": [{"kind", "from_s", "to_s", "got", "wanted",
//!                                      "explanation"}]},
//!    "node-health":   {"valid", "skipped"?, "reason"?,
//!                      "exits": [{"node", "at_s", "status", "log_tail"?, "harness_side"?}]},
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
//! A plain history file (`history.jsonl`, a Jepsen `history.edn`) carries no
//! node events: `election` and `state-machine` have nothing to examine and
//! report `"valid": true` with `"skipped": "no node event logs"`, which does
//! not change the overall verdict (the summary prints "skipped", never
//! "valid"). Likewise in a run directory whose node binary (`--node-bin`)
//! wrote no events at all.
//!
//! A run directory whose nodes should have logs is different: each node's
//! log is looked for where a finished run copies it (`nodes/<id>/`) and
//! where the node writes it (`nodes/<id>/data/`, all an interrupted run
//! leaves). A node with neither makes both checkers `"unknown"` with a
//! `"reason"` (exit 2): they could not run, so they cannot say valid. An
//! anomaly found in the other logs still makes them invalid.

pub mod availability;
pub mod catch_up;
pub mod changes;
pub mod convergence;
pub mod election;
pub mod evidence;
pub mod linearizable;
pub mod node_health;
pub mod perf;
pub mod replica_state;
pub mod state_machine;
pub mod stats;
pub mod summary;
mod verdict;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use verdict::Verdict;

use crate::db::DbKind;
use crate::history::events::{NodeLog, RunEvents};
use crate::history::read::{Loaded, ReadOptions, read_history};
use crate::history::{History, HistoryError};
use availability::AvailabilityResult;
use convergence::ConvergenceResult;
use election::ElectionResult;
use linearizable::{InitialValues, LinearizableOptions, LinearizableResult};
use node_health::NodeHealthResult;
use perf::PerfResult;
use replica_state::ReplicaStateResult;
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
    /// Each checker's section.
    pub checkers: Checkers,
    /// The run's options, seed and versions (written by `harness run`).
    pub run: serde_json::Value,
    /// Inputs that were read with a repair, such as a torn event-log line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The `checkers` object of `results.json`: one section per checker, each
/// with its own `valid`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkers {
    /// Every key's operations against its model.
    pub linearizable: LinearizableResult,
    /// At most one leader per term, from the nodes' event logs.
    pub election: ElectionResult,
    /// One entry per log index, from the nodes' event logs.
    #[serde(rename = "state-machine")]
    pub state_machine: StateMachineResult,
    /// Absent from results written before it existed: skipped.
    #[serde(default)]
    pub convergence: ConvergenceResult,
    /// Outcome counts; unknown when nothing succeeded.
    /// Absent from the results.json of older harnesses: "not checked".
    #[serde(rename = "replica-state", default)]
    pub replica_state: ReplicaStateResult,
    /// Fault-free stretches keep a share of the rate (absent from older
    /// results: not checked).
    #[serde(default)]
    pub availability: AvailabilityResult,
    /// No node process exited unasked (absent from older results: not
    /// checked).
    #[serde(rename = "node-health", default)]
    pub node_health: NodeHealthResult,
    /// Outcome counts; unknown when nothing succeeded.
    pub stats: StatsResult,
    /// Latency and throughput; always valid.
    pub perf: PerfResult,
}

impl Checkers {
    /// (name, verdict, why it was skipped or is unknown) of each checker,
    /// in report order.
    pub fn verdicts(&self) -> [(&'static str, Verdict, Option<&str>); 9] {
        [
            ("linearizable", self.linearizable.valid, None),
            (
                "election",
                self.election.valid,
                self.election
                    .skipped
                    .as_deref()
                    .or(self.election.reason.as_deref()),
            ),
            (
                "state-machine",
                self.state_machine.valid,
                self.state_machine
                    .skipped
                    .as_deref()
                    .or(self.state_machine.reason.as_deref()),
            ),
            (
                "convergence",
                self.convergence.valid,
                self.convergence.skipped.as_deref(),
            ),
            (
                "replica-state",
                self.replica_state.valid,
                self.replica_state.skipped.as_deref(),
            ),
            (
                "availability",
                self.availability.valid,
                self.availability.skipped.as_deref(),
            ),
            (
                "node-health",
                self.node_health.valid,
                self.node_health
                    .skipped
                    .as_deref()
                    .or(self.node_health.reason.as_deref()),
            ),
            ("stats", self.stats.valid, self.stats.reason.as_deref()),
            ("perf", self.perf.valid, self.perf.skipped.as_deref()),
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
    /// A directory was given that holds no history (`history.jsonl`,
    /// `history.edn` or `history.txt`).
    #[error("{}: not a run directory (no history.jsonl in it)", .0.display())]
    NoHistory(PathBuf),
    /// The path given does not exist or cannot be examined.
    #[error("{}: {source}", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// `results.json` or `run.json` is not what the harness writes.
    #[error("{}:{line}: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line where the JSON parser stopped.
        line: usize,
        /// What the parser said, or which field is wrong.
        message: String,
    },
    /// Arguments that contradict the input (an initial value of the wrong
    /// kind for its key).
    #[error("{0}")]
    Usage(String),
    /// Something the harness ran failed (a child process of bench-check).
    #[error("{0}")]
    Failed(String),
    /// An output (results.json, report.html) could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

impl crate::error::Blame for CheckError {
    fn fault(&self) -> crate::error::Fault {
        match self {
            CheckError::Write { .. } | CheckError::Failed(_) => crate::error::Fault::Harness,
            _ => crate::error::Fault::BadInput,
        }
    }
}

/// How to read a history and what its keys start as: what `check` and
/// `report` are told on the command line.
#[derive(Clone, Debug, Default)]
pub struct Interpretation {
    /// Format, times, string values: how the file is read.
    pub read: ReadOptions,
    /// From `--initial-value`; when empty, the format's convention holds.
    pub initial: InitialValues,
}

/// Runs every checker on a history and the nodes' event logs (empty: none),
/// every key starting absent. `run` is left `{}`.
pub fn check_history(history: &History, logs: &[NodeLog], opts: &CheckOptions) -> Results {
    check_history_with(history, logs, opts, &InitialValues::default())
}

/// [`check_history`] with keys starting as `initial` says, or, when it
/// says nothing, as the history's format does ([`History::convention`]).
pub fn check_history_with(
    history: &History,
    logs: &[NodeLog],
    opts: &CheckOptions,
    initial: &InitialValues,
) -> Results {
    let mut initial = initial;
    let from_format;
    if initial.is_empty()
        && let Some(c) = history.convention()
    {
        from_format = InitialValues {
            all: Some(c.value.clone()),
            convention: Some(c.source),
            ..InitialValues::default()
        };
        initial = &from_format;
    }
    let threads = opts.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let lin_opts = LinearizableOptions {
        deadline: Instant::now() + opts.budget,
        budget: opts.budget,
        memo_bytes: opts.memo_bytes,
        threads,
    };
    // The small checkers run beside the search, which is the long part.
    let (lin, (stats, perf)) = std::thread::scope(|s| {
        let small = s.spawn(|| (stats::check(history), perf::check(history)));
        let lin = linearizable::check_with(history, &lin_opts, initial);
        (lin, small.join().expect("stats and perf do not panic"))
    });
    let checkers = Checkers {
        linearizable: lin,
        election: election::check(logs),
        state_machine: state_machine::check(logs),
        convergence: convergence::check(history),
        replica_state: replica_state::check(logs, None),
        availability: availability::not_judged(),
        node_health: node_health::check(history, None),
        stats,
        perf,
    };
    let mut warnings: Vec<String> = logs
        .iter()
        .flat_map(|l| l.warnings.iter().cloned())
        .collect();
    if let Some(source) = initial.convention {
        warnings.push(format!(
            "initial values: {source} (--initial-value overrides)"
        ));
    }
    Results {
        valid: Verdict::combine(checkers.verdicts().iter().map(|v| v.1)),
        checkers,
        run: serde_json::json!({}),
        warnings,
    }
}

/// Checks a run directory (`history.jsonl`, the nodes' event logs) and
/// rewrites its `results.json`. The `run` section is kept from an existing
/// `results.json`, else taken from `run.json`, else `{}`.
pub fn check_run_dir(dir: &Path, opts: &CheckOptions) -> Result<Results, CheckError> {
    let (results, _, _) = check_dir(dir, opts, &Interpretation::default())?;
    write_results(&dir.join("results.json"), &results)?;
    Ok(results)
}

/// The history of a run directory, checked: `history.jsonl`, or the
/// history a Jepsen store directory holds (`history.edn`, `history.txt`).
fn check_dir(
    dir: &Path,
    opts: &CheckOptions,
    interp: &Interpretation,
) -> Result<(Results, Timings, Loaded), CheckError> {
    let history_path = history_in(dir).ok_or_else(|| CheckError::NoHistory(dir.to_path_buf()))?;
    let started = Instant::now();
    let loaded = read_history(&history_path, &interp.read)?;
    let events = DbKind::of_run_dir(dir).run_events(dir)?;
    let read = started.elapsed();
    let (mut results, mut timings) = check_loaded(&loaded, &events.logs, opts, interp)?;
    timings.read = read;
    results.run = previous_run_section(dir);
    with_run_inputs(&mut results, &loaded, &events.logs, dir);
    if !events.missing.is_empty() {
        no_events(&mut results, dir, &events);
    }
    undecided(&mut results, &events);
    final_reads_missed(&mut results);
    Ok((results, timings, loaded))
}

/// The history file of a run directory: the harness's own, else the one a
/// Jepsen store directory holds.
fn history_in(dir: &Path) -> Option<PathBuf> {
    ["history.jsonl", "history.edn", "history.txt"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// Keys whose final read never succeeded (`run.json`'s
/// `final_reads_missed`: no leader after recovery, or reads that kept
/// failing): a write lost on them cannot show, so `linearizable` cannot
/// say valid. (A cluster that lost everything it acknowledged, and with it
/// every member's memory of the others, elects no leader again: without
/// this the run looked valid.)
fn final_reads_missed(results: &mut Results) {
    let missed = results.run["final_reads_missed"].as_u64().unwrap_or(0);
    if missed == 0 {
        return;
    }
    let why = if results.run["recovered_leader"].is_null() {
        "no leader was elected after recovery, so the final reads were skipped"
    } else {
        "their final reads kept failing until the deadline"
    };
    let lin = &mut results.checkers.linearizable;
    lin.unknown_keys.push(linearizable::UnknownKey {
        key: format!("({missed} keys)"),
        reason: format!(
            "no final read of {missed} key(s) after recovery: {why}; a lost write on them \
             would not show"
        ),
    });
    if lin.valid == Verdict::Valid {
        lin.valid = Verdict::Unknown;
    }
    results.valid = Verdict::combine(results.checkers.verdicts().iter().map(|v| v.1));
}

/// What the database says its evidence cannot show (an unreadable log,
/// states never compared) makes that checker unknown with the reason,
/// unless it found an anomaly in what it could read.
fn undecided(results: &mut Results, events: &RunEvents) {
    let c = &mut results.checkers;
    for (why, valid, skipped, reason) in [
        (
            &events.election_unknown,
            &mut c.election.valid,
            &mut c.election.skipped,
            &mut c.election.reason,
        ),
        (
            &events.state_machine_unknown,
            &mut c.state_machine.valid,
            &mut c.state_machine.skipped,
            &mut c.state_machine.reason,
        ),
    ] {
        let Some(why) = why else { continue };
        *skipped = None;
        if *valid != Verdict::Invalid {
            *valid = Verdict::Unknown;
        }
        *reason = Some(why.clone());
    }
    results.valid = Verdict::combine(results.checkers.verdicts().iter().map(|v| v.1));
}

/// What only a run directory has: the offered rate (`run.json`), each
/// node's log (why it exited) and `replicas.json` (the final dumps).
fn with_run_inputs(results: &mut Results, loaded: &Loaded, logs: &[NodeLog], dir: &Path) {
    let c = &mut results.checkers;
    if let (true, Some(offered)) = (loaded.timed, results.run["options"]["rate"].as_f64()) {
        c.availability = availability::check(&loaded.history, offered);
    }
    c.node_health = node_health::check(&loaded.history, Some(dir));
    if let Some(origin) = results.run["history_start"]
        .as_str()
        .and_then(crate::history::events::wall_ns)
    {
        convergence::add_stalls(
            &mut c.convergence,
            catch_up::stalls(&loaded.history, logs, origin),
        );
    }
    match replica_state::read_replicas(dir) {
        Ok(dumps) => c.replica_state = replica_state::check(logs, dumps.as_ref()),
        Err(e) => results.warnings.push(format!("replica-state: {e}")),
    }
    results.valid = Verdict::combine(results.checkers.verdicts().iter().map(|v| v.1));
}

/// Nodes whose event logs are nowhere: election and state-machine safety
/// could not be checked for them, so their verdicts are unknown, not valid
/// (an anomaly found in the other logs still stands). A node binary that
/// writes no events at all (`--node-bin`) is not asked for them.
fn no_events(results: &mut Results, dir: &Path, events: &RunEvents) {
    let external = results.run["options"]["node_bin"].is_string();
    let c = &mut results.checkers;
    if events.logs.is_empty() && external {
        let why = "the node binary (--node-bin) wrote no events.jsonl".to_string();
        c.election.skipped = Some(why.clone());
        c.state_machine.skipped = Some(why);
    } else {
        let nodes = events.missing.join(", ");
        let reason = format!(
            "no events.jsonl for {nodes} (neither in {0}/nodes/<node>/ nor in its data/)",
            dir.display()
        );
        for (valid, skipped, why) in [
            (
                &mut c.election.valid,
                &mut c.election.skipped,
                &mut c.election.reason,
            ),
            (
                &mut c.state_machine.valid,
                &mut c.state_machine.skipped,
                &mut c.state_machine.reason,
            ),
        ] {
            *skipped = None;
            if *valid != Verdict::Invalid {
                *valid = Verdict::Unknown;
            }
            *why = Some(reason.clone());
        }
    }
    results.valid = Verdict::combine(results.checkers.verdicts().iter().map(|v| v.1));
}

/// How long reading and checking took.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    /// Reading and validating the history and the event logs.
    pub read: Duration,
    /// Every checker, the linearizability search included.
    pub check: Duration,
}

/// Checks a loaded history: the initial values are the command line's,
/// else the format's convention (see [`check_history_with`]).
fn check_loaded(
    loaded: &Loaded,
    logs: &[NodeLog],
    opts: &CheckOptions,
    interp: &Interpretation,
) -> Result<(Results, Timings), CheckError> {
    let initial = &interp.initial;
    let warnings =
        linearizable::check_initial(&loaded.history, initial).map_err(CheckError::Usage)?;
    let started = Instant::now();
    let mut results = check_history_with(&loaded.history, logs, opts, initial);
    let check = started.elapsed();
    if !loaded.timed {
        results.checkers.perf = perf::untimed();
        results.checkers.availability = AvailabilityResult {
            skipped: Some("the history has no times".into()),
            ..AvailabilityResult::default()
        };
        results.valid = Verdict::combine(results.checkers.verdicts().iter().map(|v| v.1));
    }
    results.warnings.extend(warnings);
    Ok((
        results,
        Timings {
            read: Duration::ZERO,
            check,
        },
    ))
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
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        werr(e)
    })
}

/// What [`check_path`] checked.
#[derive(Debug)]
pub struct Checked {
    /// The verdicts; `run` as [`check_run_dir`] says for a directory, `{}`
    /// for a history file.
    pub results: Results,
    /// The history file read.
    pub history: PathBuf,
    /// For a run directory: the `results.json` written, or why it could
    /// not be (the verdict stands either way).
    pub written: Option<Result<PathBuf, CheckError>>,
    /// How long reading and checking took (for `--timings` and benchmarks).
    pub timings: Timings,
    /// The history read.
    pub loaded: Loaded,
}

/// Checks a run directory (and rewrites its `results.json`), or a history
/// file in any format [`read_history`] knows.
pub fn check_path(
    path: &Path,
    opts: &CheckOptions,
    interp: &Interpretation,
) -> Result<Checked, CheckError> {
    let meta = std::fs::metadata(path).map_err(|source| CheckError::NotFound {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        let (results, timings, loaded) = check_dir(path, opts, interp)?;
        let out = path.join("results.json");
        let written = write_results(&out, &results).map(|()| out);
        let history = history_in(path).unwrap_or_else(|| path.join("history.jsonl"));
        return Ok(Checked {
            results,
            history,
            written: Some(written),
            timings,
            loaded,
        });
    }
    let started = Instant::now();
    let loaded = read_history(path, &interp.read)?;
    let read = started.elapsed();
    let (results, mut timings) = check_loaded(&loaded, &[], opts, interp)?;
    timings.read = read;
    Ok(Checked {
        results,
        history: path.to_path_buf(),
        written: None,
        timings,
        loaded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_without_a_final_read_make_a_valid_history_unknown() {
        let history = History::default();
        let mut results = check_history(&history, &[], &CheckOptions::default());
        results.run = serde_json::json!({"final_reads_missed": 0, "recovered_leader": "n1"});
        let before = results.checkers.linearizable.valid;
        final_reads_missed(&mut results);
        assert_eq!(results.checkers.linearizable.valid, before);

        results.run = serde_json::json!({"final_reads_missed": 3, "recovered_leader": null});
        results.checkers.linearizable.valid = Verdict::Valid;
        final_reads_missed(&mut results);
        assert_eq!(results.checkers.linearizable.valid, Verdict::Unknown);
        assert_ne!(results.valid, Verdict::Valid);
        let why = &results.checkers.linearizable.unknown_keys[0].reason;
        assert!(
            why.contains("3 key(s)") && why.contains("no leader"),
            "{why}"
        );
    }
}
