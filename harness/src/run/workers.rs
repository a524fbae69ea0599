//! Client workers: each issues one operation at a time against its node,
//! records the invocation before sending and the completion after, and
//! continues as a new process after an unknown outcome.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::recorder::Recorder;

use crate::client::Outcome;
use crate::db::{Members, Worker};
use crate::history::{Action, ClientOp, NodeName, OpType, ProcessId};
use crate::workload::Workload;
use crate::workload::{Generator, KeyPool, ProcessNumbers};
use raft::Rng;

/// What every worker of a run shares.
#[derive(Clone)]
pub struct WorkerSpec {
    /// What the workers do.
    pub workload: Workload,
    /// How many workers there are.
    pub concurrency: usize,
    /// Operations per second over all workers; 0 = as fast as answers come.
    pub rate: f64,
    /// How long one operation may take, redirects and retries included.
    pub timeout: Duration,
    /// When the workers stop starting operations.
    pub end: Instant,
    /// The members, over the database's own API.
    pub members: Arc<dyn Members>,
}

impl WorkerSpec {
    /// A client of the database, homed at node `first_target`.
    fn client(&self, first_target: usize) -> Box<dyn Worker> {
        self.members
            .worker(self.workload, first_target, self.timeout)
    }

    /// A random pause before the next operation, averaging the worker's share of the rate.
    fn stagger(&self, rng: &mut Rng) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        let mean_us = (self.concurrency as f64 / self.rate * 1e6) as u64;
        Duration::from_micros(rng.below(2 * mean_us.max(1)))
    }
}

/// Performs one operation, records it, and returns how it completed.
pub async fn perform(
    client: &mut dyn Worker,
    recorder: &Recorder,
    process: u64,
    key: &str,
    action: Action,
) -> OpType {
    let op = ClientOp::new(ProcessId(process), key, action.clone())
        .with_node(NodeName::new(client.target()));
    recorder.invoke(&op);
    let outcome = client.perform(key, &action).await;
    let node = NodeName::new(client.target());
    match outcome {
        Outcome::Ok(done) => {
            let op = ClientOp::new(ProcessId(process), key, done).with_node(node);
            recorder.complete(OpType::Ok, op);
            OpType::Ok
        }
        Outcome::Fail { error, action } => {
            let op = ClientOp::new(ProcessId(process), key, action)
                .with_node(node)
                .with_error(error);
            recorder.complete(OpType::Fail, op);
            OpType::Fail
        }
        Outcome::Info(error) => {
            recorder.complete(OpType::Info, op.with_error(error));
            OpType::Info
        }
    }
}

/// Worker `worker`: operations on random keys at its share of the rate until
/// `spec.end`, each recorded; after an unknown outcome it continues as a new
/// process with a new session.
pub async fn run_worker(
    worker: usize,
    spec: Arc<WorkerSpec>,
    keys: Arc<Mutex<KeyPool>>,
    generator: Arc<Generator>,
    recorder: Arc<Recorder>,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let mut procs = ProcessNumbers::new(worker, spec.concurrency);
    let mut client = spec.client(worker);
    client.new_session(procs.client_id());
    // Operations are scheduled on the clock, not after each other's
    // latency, so the total rate holds while operations are fast; after a
    // long stall (a fault) the schedule restarts rather than bursting.
    let mut next = Instant::now();
    loop {
        next += spec.stagger(&mut rng);
        let now = Instant::now();
        if next + Duration::from_millis(500) < now {
            next = now;
        }
        if next >= spec.end {
            break;
        }
        tokio::time::sleep_until(next.into()).await;
        let key = keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pick(&mut rng);
        let action = generator.next(&mut rng);
        if perform(&mut *client, &recorder, procs.current(), &key, action).await == OpType::Info {
            procs.retire();
            client.new_session(procs.client_id());
        }
    }
}

/// After recovery: read every key until a read succeeds (or `within` runs out),
/// so that a lost write shows as a final read that misses it.
pub async fn final_reads(
    spec: Arc<WorkerSpec>,
    keys: Vec<String>,
    recorder: Arc<Recorder>,
    within: Duration,
) -> usize {
    let deadline = Instant::now() + within;
    let readers = 4.min(keys.len().max(1));
    let keys = Arc::new(Mutex::new(keys));
    let mut tasks = Vec::new();
    for r in 0..readers {
        let (spec, keys, recorder) = (spec.clone(), keys.clone(), recorder.clone());
        // Process numbers no worker reaches: workers grow by `concurrency` per unknown outcome.
        let process = 1_000_000_000 + r as u64;
        tasks.push(tokio::spawn(async move {
            let mut client = spec.client(r);
            let mut missed = 0;
            loop {
                let Some(key) = keys.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                    break;
                };
                loop {
                    if perform(&mut *client, &recorder, process, &key, Action::Read(None)).await
                        == OpType::Ok
                    {
                        break;
                    }
                    if Instant::now() >= deadline {
                        missed += 1;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            missed
        }));
    }
    let mut missed = 0;
    for t in tasks {
        missed += t.await.unwrap_or(0);
    }
    missed
}
