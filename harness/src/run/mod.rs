//! `harness run`: set up a cluster → drive clients while faults come and go →
//! heal everything → wait for a leader → read every key → stop the cluster →
//! check the history → summarise.
//!
//! [`run`] reads as that list; each phase is a module:
//!
//! - `setup`: start the cluster, wait for a leader.
//! - `load`: the workers and the nemeses until the time limit, with
//!   `workers` (the clients, the final reads), `probes` (reads at each new
//!   leader) and `progress` (the bar on a terminal, plain lines in CI).
//! - `recovery`: heal, restart, wait for a leader, re-add members that
//!   lost their data, read every key; `convergence`: watch every member
//!   catch up with the leader.
//! - `replicas`: each node's own applied state, for the replica-state
//!   checker (`replicas.json`).
//! - tear-down and check: in this file.
//!
//! Beside them: `options` (the run's flags, validated), `layout` (the run
//! directory, `latest`, copied event logs), `record` (`run.json`) and
//! [`crate::recorder`] (the history as it is written).

pub mod convergence;
pub mod layout;
pub mod load;
pub mod options;
pub mod probes;
pub mod progress;
pub mod record;
pub mod recovery;
pub mod replicas;
pub mod setup;
pub mod workers;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

pub use options::RunOptions;

use crate::check::{self, CheckOptions, Verdict};
use load::Loaded;
use record::RunRecord;
use setup::Live;

/// How long the cluster may take to elect its first leader, and to recover
/// one after the faults stop, before the run is declared broken.
const LEADER_WAIT: Duration = Duration::from_secs(30);
/// How long the final reads may keep retrying.
const FINAL_READS_WITHIN: Duration = Duration::from_secs(30);

/// Why a run, or a subcommand that starts nodes, could not finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad flags or an unusable store: exit 254.
    #[error("{0}")]
    BadArgs(String),
    /// The store (run directory, history, `run.json`) could not be written:
    /// exit 254, as the user's `--store` is at fault.
    #[error("{0}")]
    Store(String),
    /// The harness could not do its job: exit 255.
    #[error("{0}")]
    Harness(String),
}

impl RunError {
    /// Whether the user's input was at fault (exit 254) rather than the harness
    /// (255).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, RunError::BadArgs(_) | RunError::Store(_))
    }
}

impl crate::error::Blame for RunError {
    fn fault(&self) -> crate::error::Fault {
        if self.is_bad_input() {
            crate::error::Fault::BadInput
        } else {
            crate::error::Fault::Harness
        }
    }
}

/// What a finished run produced.
pub struct RunOutcome {
    /// The run directory.
    pub dir: PathBuf,
    /// The overall verdict (`Valid` when the checkers were skipped).
    pub verdict: Verdict,
    /// The checkers' results, unless skipped with `--no-check`.
    pub results: Option<check::Results>,
    /// Client operations ended ok, fail, info.
    pub ops: (u64, u64, u64),
    /// Faults started.
    pub faults: u64,
    /// Seconds of load.
    pub load_seconds: f64,
}

/// Runs one test from set-up to verdict. The run directory is created
/// first and holds whatever the run got to, also when it fails.
pub async fn run(mut opts: RunOptions) -> Result<RunOutcome, RunError> {
    opts.validate().map_err(RunError::BadArgs)?;
    let without_power = opts.settle_power().map_err(RunError::BadArgs)?;
    if let Some(why) = &without_power {
        println!("note: running without power and slow-disk faults: {why}");
    }
    let db = setup::open_db(&opts)?;
    setup::sweep_dead_mounts(&opts);
    let dir = layout::create_run_dir(&opts.store, &opts.nemesis_label(), opts.seed)?;
    let mut record = RunRecord::begin(&opts, &dir, without_power.as_deref())?;
    if let Err(e) = layout::link_latest(&opts.store, &dir) {
        eprintln!(
            "warning: cannot update {}/latest: {e}",
            opts.store.display()
        );
    }
    println!("run directory: {}", dir.display());

    let live = setup::start(&opts, db, &dir).await?;
    let loaded = load::drive(&opts, &live, &dir).await?;
    let recovered = recovery::recover(&live, &loaded, opts.convergence_timeout).await?;
    if recovered.leader.is_some() && live.members.raftkv_clients().is_some() {
        replicas::dump(&live.addrs, &live.cluster_id, &dir).await?;
    }
    let compared = live.members.compare(&dir).await;
    if !compared.is_empty() {
        println!("{compared}");
    }
    let (nodes, network) = tear_down(&live, &loaded, &dir)?;
    record.finish(&loaded, &recovered, nodes, network)?;
    let (ok, fail, info) = loaded.recorder.counts();
    let load_seconds = loaded.seconds;
    println!(
        "{} ops in {load_seconds:.1} s ({:.0}/s): ok {ok}, fail {fail}, info {info}",
        ok + fail + info,
        (ok + fail + info) as f64 / load_seconds
    );

    let results = if opts.no_check {
        println!(
            "checkers skipped (--no-check); run `harness check {}` later",
            dir.display()
        );
        write_report(&dir, None);
        None
    } else {
        let results = judge(&opts, &dir).await?;
        println!("run directory: {}", dir.display());
        Some(results)
    };
    Ok(RunOutcome {
        dir,
        verdict: results.as_ref().map_or(Verdict::Valid, |r| r.valid),
        results,
        ops: (ok, fail, info),
        faults: loaded
            .recorder
            .faults
            .load(std::sync::atomic::Ordering::Relaxed),
        load_seconds,
    })
}

/// Stops every node, unmounts their lazy disks (so the data directories
/// show what the nodes left), makes sure the whole history reached the
/// disk, and puts the nodes' event logs beside it. Returns each node's
/// starts, kills, pauses and power cuts, and the network with what each
/// link carried, for `run.json`.
fn tear_down(live: &Live, loaded: &Loaded, dir: &Path) -> Result<(Vec<Value>, Value), RunError> {
    let (nodes, network) = {
        let mut c = live.cluster();
        if let Err(e) = c.detach_disks() {
            eprintln!("warning: {e}");
        }
        let nodes = c
            .nodes()
            .iter()
            .map(|n| {
                json!({"id": n.id, "starts": n.starts, "kills": n.kills, "pauses": n.pauses,
                       "power_offs": n.power_offs, "wipes": n.wipes})
            })
            .collect();
        let mut network = c.net().describe();
        network["links"] = c.net().stats();
        (nodes, network)
    };
    if let Some(e) = loaded.recorder.error() {
        return Err(RunError::Store(e));
    }
    layout::copy_events(dir)
        .map_err(|e| RunError::Store(format!("cannot copy node event logs: {e}")))?;
    Ok((nodes, network))
}

/// Checks the run directory (off the async threads: a check can take
/// minutes), prints the summary and writes the report.
async fn judge(opts: &RunOptions, dir: &Path) -> Result<check::Results, RunError> {
    let check_opts = CheckOptions {
        budget: opts.check_budget,
        ..CheckOptions::default()
    };
    let check_dir = dir.to_path_buf();
    let results =
        tokio::task::spawn_blocking(move || check::check_run_dir(&check_dir, &check_opts))
            .await
            .map_err(|e| RunError::Harness(format!("the checker panicked: {e}")))?
            .map_err(|e| RunError::Harness(e.to_string()))?;
    print!(
        "{}",
        check::summary::render(&results, &dir.display().to_string())
    );
    write_report(dir, Some(&results));
    Ok(results)
}

/// Writes `report.html`; a report that cannot be written is a warning, not
/// a failed run (the verdict stands, and `harness report` can retry).
fn write_report(dir: &Path, results: Option<&check::Results>) {
    match crate::report::write_run_report(dir, results) {
        Ok(path) => println!("report: {}", path.display()),
        Err(e) => eprintln!("warning: no report.html: {e}"),
    }
}
