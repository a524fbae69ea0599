//! `harness run`: set up a cluster → drive clients while faults come and go →
//! heal everything → wait for a leader → read every key → stop the cluster →
//! check the history → summarise.
//!
//! - `options`: the run's flags, validated.
//! - `layout`: the run directory, `latest`, copied event logs.
//! - `recorder`: the history as it is written.
//! - `workers`: the clients and the final reads.
//! - `progress`: the bar (terminal) or plain lines (CI).

pub mod layout;
pub mod options;
pub mod progress;
pub mod recorder;
pub mod workers;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use node::client::{Api, Conn};
use serde_json::json;

pub use options::RunOptions;

use crate::check::{self, CheckOptions, Verdict};
use crate::cluster::{Cluster, ClusterSpec, NodeBin, wait_for_leader};
use crate::nemesis::schedule::{self, InForce, Schedule};
use crate::workload::{Generator, KeyPool, generator::token_counter};
use progress::Progress;
use recorder::Recorder;
use workers::WorkerSpec;

/// How long the cluster may take to elect its first leader, and to recover
/// one after the faults stop, before the run is declared broken.
const LEADER_WAIT: Duration = Duration::from_secs(30);
/// How long the final reads may keep retrying.
const FINAL_READS_WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad flags or an unusable store: exit 254.
    #[error("{0}")]
    BadArgs(String),
    #[error("{0}")]
    Store(String),
    /// The harness could not do its job: exit 255.
    #[error("{0}")]
    Harness(String),
}

impl RunError {
    pub fn is_bad_input(&self) -> bool {
        matches!(self, RunError::BadArgs(_) | RunError::Store(_))
    }
}

/// What a finished run produced.
pub struct RunOutcome {
    pub dir: PathBuf,
    pub verdict: Verdict,
    pub results: Option<check::Results>,
    /// Client operations ended ok, fail, info.
    pub ops: (u64, u64, u64),
    /// Faults started.
    pub faults: u64,
    /// Seconds of load.
    pub load_seconds: f64,
}

pub async fn run(opts: RunOptions) -> Result<RunOutcome, RunError> {
    opts.validate().map_err(RunError::BadArgs)?;
    let bin = match &opts.node_bin {
        Some(p) => NodeBin::External(p.clone()),
        None => NodeBin::this_executable().map_err(|e| RunError::Harness(e.to_string()))?,
    };
    let dir = layout::create_run_dir(&opts.store, &opts.nemesis_label(), opts.seed)?;
    let started = chrono::Utc::now();
    let mut run_info = json!({
        "options": opts.to_json(),
        "seed": opts.seed,
        "command": opts.command,
        "started": started.to_rfc3339(),
        "harness_version": env!("CARGO_PKG_VERSION"),
        "dir": dir.display().to_string(),
    });
    write_json(&dir.join("run.json"), &run_info)?;
    if let Err(e) = layout::link_latest(&opts.store, &dir) {
        eprintln!(
            "warning: cannot update {}/latest: {e}",
            opts.store.display()
        );
    }
    println!("run directory: {}", dir.display());

    // --- set-up -----------------------------------------------------------
    let mut node_args = opts.node_args.clone();
    if let Some(n) = opts.snapshot_every {
        node_args.extend(["--snapshot-every".to_string(), n.to_string()]);
    }
    let spec = ClusterSpec {
        nodes: opts.nodes,
        bin,
        dir: dir.clone(),
        cluster_id: format!("harness-{}", opts.seed),
        node_args,
        direct: false,
    };
    let cluster = Cluster::start(spec)
        .await
        .map_err(|e| RunError::Harness(e.to_string()))?;
    let addrs = cluster.addrs();
    let cluster_id = cluster.cluster_id().to_string();
    let cluster = Arc::new(Mutex::new(cluster));
    let t0 = Instant::now();
    let Some((leader, term)) = wait_for_leader(&addrs, &cluster_id, LEADER_WAIT).await else {
        return Err(RunError::Harness(format!(
            "no leader elected within {LEADER_WAIT:?}; node logs are in {}/nodes/*/node.log",
            dir.display()
        )));
    };
    println!(
        "leader {leader} (term {term}) after {:.2} s",
        t0.elapsed().as_secs_f64()
    );

    // --- load and faults ------------------------------------------------------
    let start = Instant::now();
    // History time 0 on the wall clock, for placing node events in reports.
    let history_start = chrono::Utc::now();
    let end = start + opts.time_limit;
    let recorder = Arc::new(
        Recorder::create(&dir.join("history.jsonl"), start).map_err(|e| {
            RunError::Store(format!(
                "cannot create {}/history.jsonl: {e}",
                dir.display()
            ))
        })?,
    );
    let spec = Arc::new(WorkerSpec {
        workload: opts.workload,
        concurrency: opts.concurrency,
        rate: opts.rate,
        timeout: opts.client_timeout(),
        end,
        cluster_id: cluster_id.clone(),
        addrs: addrs.clone(),
        shared: match opts.api {
            Api::Unary => Vec::new(),
            Api::Stream => addrs
                .iter()
                .map(|(_, a)| {
                    Conn::new(
                        Api::Stream,
                        &a.to_string(),
                        &cluster_id,
                        Duration::from_millis(500),
                    )
                })
                .collect::<Result<_, _>>()
                .map_err(|e| RunError::Harness(e.to_string()))?,
        },
    });
    let keys = Arc::new(Mutex::new(KeyPool::new(opts.keys, opts.ops_per_key)));
    let generator = Arc::new(Generator::new(opts.workload, token_counter()));
    let mut workers = Vec::new();
    for w in 0..opts.concurrency {
        let seed = opts.seed.wrapping_mul(1_000_003).wrapping_add(w as u64);
        workers.push(tokio::spawn(workers::run_worker(
            w,
            spec.clone(),
            keys.clone(),
            generator.clone(),
            recorder.clone(),
            seed,
        )));
    }
    let in_force: InForce = Arc::default();
    let shared = Arc::new(schedule::Shared {
        cluster: cluster.clone(),
        addrs: addrs.clone(),
        cluster_id: cluster_id.clone(),
        recorder: recorder.clone(),
        in_force: in_force.clone(),
    });
    let sched = Schedule {
        quiet: opts.quiet_period(),
        interval: opts.nemesis_interval,
        end,
    };
    let mut nemeses = Vec::new();
    for (i, kind) in opts.nemeses.iter().enumerate() {
        let seed = opts.seed ^ (0x9e37_79b9 * (i as u64 + 1));
        nemeses.push(tokio::spawn(kind.run(
            opts.partition_shapes.clone(),
            opts.fault_targets.clone(),
            sched.clone(),
            shared.clone(),
            seed,
        )));
    }

    let mut progress = Progress::new(opts.time_limit);
    let mut exits = 0;
    while Instant::now() < end
        || workers.iter().any(|w| !w.is_finished())
        || nemeses.iter().any(|n| !n.is_finished())
    {
        progress.update(start.elapsed(), recorder.counts(), &in_force);
        // A node that dies unasked is evidence: put it in the history.
        let exited = cluster
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reap_exited();
        for (node, status) in exited {
            exits += 1;
            recorder.nemesis("node-exited", json!({"node": node, "status": status}));
            progress.phase(&format!(
                "warning: node {node} exited on its own ({status})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress.update(start.elapsed(), recorder.counts(), &in_force);
    progress.finish();
    let load_secs = start.elapsed().as_secs_f64();

    // --- recovery and final reads ------------------------------------------------
    println!("recovering: healing the network, resuming and restarting every node");
    cluster
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .recover_all()
        .map_err(|e| RunError::Harness(e.to_string()))?;
    recorder.nemesis(
        "recover",
        json!({"healed": true, "restarted": "all", "resumed": "all"}),
    );
    let leader = wait_for_leader(&addrs, &cluster_id, LEADER_WAIT).await;
    let all_keys = keys
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .all_keys()
        .to_vec();
    let missed = match &leader {
        Some((l, _)) => {
            println!("leader {l} after recovery; reading {} keys", all_keys.len());
            let spec = Arc::new(WorkerSpec {
                end: Instant::now() + FINAL_READS_WITHIN,
                rate: 0.0,
                ..(*spec).clone()
            });
            workers::final_reads(spec, all_keys.clone(), recorder.clone(), FINAL_READS_WITHIN).await
        }
        None => {
            println!(
                "warning: no leader within {LEADER_WAIT:?} after recovery; final reads skipped"
            );
            all_keys.len()
        }
    };

    // --- tear-down ------------------------------------------------------------
    let node_stats: Vec<_> = {
        let mut c = cluster.lock().unwrap_or_else(|e| e.into_inner());
        c.stop();
        c.nodes()
            .iter()
            .map(|n| json!({"id": n.id, "starts": n.starts, "kills": n.kills, "pauses": n.pauses}))
            .collect()
    };
    drop(shared);
    if let Some(e) = recorder.error() {
        return Err(RunError::Store(e));
    }
    layout::copy_events(&dir)
        .map_err(|e| RunError::Store(format!("cannot copy node event logs: {e}")))?;
    let (ok, fail, info) = recorder.counts();
    let faults = recorder.faults.load(std::sync::atomic::Ordering::Relaxed);
    run_info["finished"] = json!(chrono::Utc::now().to_rfc3339());
    run_info["history_start"] = json!(history_start.to_rfc3339());
    run_info["load_seconds"] = json!(load_secs);
    run_info["ops"] = json!({"ok": ok, "fail": fail, "info": info, "per_second": (ok + fail + info) as f64 / load_secs});
    run_info["final_reads_missed"] = json!(missed);
    run_info["recovered_leader"] = json!(leader.map(|l| l.0));
    run_info["nodes"] = json!(node_stats);
    run_info["unexpected_exits"] = json!(exits);
    write_json(&dir.join("run.json"), &run_info)?;
    println!(
        "{} ops in {load_secs:.1} s ({:.0}/s): ok {ok}, fail {fail}, info {info}",
        ok + fail + info,
        (ok + fail + info) as f64 / load_secs
    );

    // --- check ----------------------------------------------------------------
    if opts.no_check {
        println!(
            "checkers skipped (--no-check); run `harness check {}` later",
            dir.display()
        );
        write_report(&dir, None);
        return Ok(RunOutcome {
            dir,
            verdict: Verdict::Valid,
            results: None,
            ops: (ok, fail, info),
            faults,
            load_seconds: load_secs,
        });
    }
    let check_opts = CheckOptions {
        budget: opts.check_budget,
        ..CheckOptions::default()
    };
    let check_dir = dir.clone();
    let results =
        tokio::task::spawn_blocking(move || check::check_run_dir(&check_dir, &check_opts))
            .await
            .map_err(|e| RunError::Harness(format!("the checker panicked: {e}")))?
            .map_err(|e| RunError::Harness(e.to_string()))?;
    print!(
        "{}",
        check::summary::render(&results, &dir.display().to_string())
    );
    write_report(&dir, Some(&results));
    println!("run directory: {}", dir.display());
    Ok(RunOutcome {
        dir,
        verdict: results.valid,
        results: Some(results),
        ops: (ok, fail, info),
        faults,
        load_seconds: load_secs,
    })
}

/// Writes `report.html`; a report that cannot be written is a warning, not
/// a failed run (the verdict stands, and `harness report` can retry).
fn write_report(dir: &std::path::Path, results: Option<&check::Results>) {
    match crate::report::write_run_report(dir, results) {
        Ok(path) => println!("report: {}", path.display()),
        Err(e) => eprintln!("warning: no report.html: {e}"),
    }
}

fn write_json(path: &std::path::Path, value: &serde_json::Value) -> Result<(), RunError> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialize");
    std::fs::write(path, text + "\n")
        .map_err(|e| RunError::Store(format!("cannot write {}: {e}", path.display())))
}
