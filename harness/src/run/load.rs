//! Load and faults: the client workers (and the leader probes) and the
//! nemeses run side by side until the time limit, while the progress line shows what happens and
//! nodes that die unasked are written into the history.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinHandle;

use super::probes;
use super::progress::Progress;
use super::setup::Live;
use super::workers::{self, WorkerSpec};
use super::{RunError, RunOptions};
use crate::cluster::membership::Admin;
use crate::nemesis::schedule::{self, InForce, Schedule};
use crate::recorder::Recorder;
use crate::workload::{Generator, KeyPool, generator::token_counter};

/// What the load phase leaves for recovery, tear-down and `run.json`.
pub struct Loaded {
    /// The history, still open: recovery adds to it.
    pub recorder: Arc<Recorder>,
    /// How the workers reached the cluster; the final reads do the same.
    pub spec: Arc<WorkerSpec>,
    /// Every key used, for the final reads.
    pub keys: Arc<Mutex<KeyPool>>,
    /// History time 0 on the wall clock, for placing node events in reports.
    pub history_start: chrono::DateTime<chrono::Utc>,
    /// Seconds from the first operation to the end of the load.
    pub seconds: f64,
    /// Nodes that exited without being asked to.
    pub unexpected_exits: u64,
}

/// Runs the workers and the nemeses until `opts.time_limit` has passed and
/// every one of them has finished.
pub async fn drive(opts: &RunOptions, live: &Live, dir: &Path) -> Result<Loaded, RunError> {
    let start = Instant::now();
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
        members: live.members.clone(),
    });
    let keys = Arc::new(Mutex::new(KeyPool::new(opts.keys, opts.ops_per_key)));
    let mut workers = spawn_workers(opts, &spec, &keys, &recorder);
    workers.push(tokio::spawn({
        let (spec, cluster) = (spec.clone(), live.cluster.clone());
        let (keys, recorder) = (keys.clone(), recorder.clone());
        async move {
            probes::run(spec, cluster, keys, recorder).await;
        }
    }));
    let in_force: InForce = Arc::default();
    let nemeses = spawn_nemeses(opts, live, &recorder, &in_force, end);
    let unexpected_exits = watch(opts, live, &recorder, &in_force, start, &workers, &nemeses).await;
    Ok(Loaded {
        seconds: start.elapsed().as_secs_f64(),
        recorder,
        spec,
        keys,
        history_start,
        unexpected_exits,
    })
}

fn spawn_workers(
    opts: &RunOptions,
    spec: &Arc<WorkerSpec>,
    keys: &Arc<Mutex<KeyPool>>,
    recorder: &Arc<Recorder>,
) -> Vec<JoinHandle<()>> {
    let generator = Arc::new(Generator::new(opts.workload, token_counter()));
    (0..opts.concurrency)
        .map(|w| {
            let seed = opts.seed.wrapping_mul(1_000_003).wrapping_add(w as u64);
            tokio::spawn(workers::run_worker(
                w,
                spec.clone(),
                keys.clone(),
                generator.clone(),
                recorder.clone(),
                seed,
            ))
        })
        .collect()
}

fn spawn_nemeses(
    opts: &RunOptions,
    live: &Live,
    recorder: &Arc<Recorder>,
    in_force: &InForce,
    end: Instant,
) -> Vec<JoinHandle<()>> {
    let shared = Arc::new(schedule::Shared {
        cluster: live.cluster.clone(),
        members: live.members.clone(),
        recorder: recorder.clone(),
        in_force: in_force.clone(),
        admin: Admin::new(live.addrs.clone(), &live.cluster_id),
        changing: Default::default(),
    });
    let sched = Schedule {
        quiet: opts.quiet_period(),
        interval: opts.nemesis_interval,
        end,
    };
    opts.nemeses
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let seed = opts.seed ^ (0x9e37_79b9 * (i as u64 + 1));
            tokio::spawn(kind.run(opts.choices(), sched.clone(), shared.clone(), seed))
        })
        .collect()
}

/// Shows progress until the time is up and every task has finished; a node
/// that dies unasked is evidence, so it goes into the history. Returns how
/// many did.
async fn watch(
    opts: &RunOptions,
    live: &Live,
    recorder: &Recorder,
    in_force: &InForce,
    start: Instant,
    workers: &[JoinHandle<()>],
    nemeses: &[JoinHandle<()>],
) -> u64 {
    let end = start + opts.time_limit;
    let mut progress = Progress::new(opts.time_limit);
    let mut exits = 0;
    while Instant::now() < end
        || workers.iter().any(|w| !w.is_finished())
        || nemeses.iter().any(|n| !n.is_finished())
    {
        progress.update(start.elapsed(), recorder.counts(), in_force);
        let exited = live.cluster().reap_exited();
        for (node, status) in exited {
            exits += 1;
            recorder.nemesis("node-exited", json!({"node": node, "status": status}));
            progress.phase(&format!(
                "warning: node {node} exited on its own ({status})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress.update(start.elapsed(), recorder.counts(), in_force);
    progress.finish();
    exits
}
