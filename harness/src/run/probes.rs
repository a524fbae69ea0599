//! Leader probes: as soon as a node's event log says it became leader,
//! every key in use is read at that node.
//!
//! Why: a new leader's first reads are where a read path that trusts a
//! commit index it inherited (reads served before the leader's first entry
//! commits, a lease kept across an election, a follower read that skips
//! the leader) returns an old value. That window lasts until the new
//! leader's first entry commits, a round trip and an fsync, and the
//! workers' reads, spread over the whole run, seldom land in it. The
//! moments come from the same tail the nemeses use
//! ([`crate::nemesis::moments`]), a couple of milliseconds after the line
//! is written; a database without event logs (etcd) gets no probes.
//!
//! A probe is an ordinary read in the history, by a process of its own:
//! numbers from [`PROBE_PROCESSES`] up, each used once, so probes overlap
//! each other and the workers as concurrent clients may.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::workers::{WorkerSpec, perform};
use crate::cluster::Cluster;
use crate::history::Action;
use crate::nemesis::moments::{self, MomentKind, Tail};
use crate::recorder::Recorder;
use crate::workload::KeyPool;

/// The first process number of the probes: above the workers' (they grow
/// by the concurrency per unknown outcome) and the final reads'.
pub const PROBE_PROCESSES: u64 = 2_000_000_000;

/// How often the tail looks for nodes that joined after it began.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

/// Probes in flight at most: past this, a new leader's probes are skipped
/// (elections that come faster than reads finish add nothing).
const MAX_IN_FLIGHT: usize = 64;

/// Reads every key in use at each new leader until `spec.end`; returns the
/// number of probes sent, once every one of them has finished.
pub async fn run(
    spec: Arc<WorkerSpec>,
    cluster: Arc<Mutex<Cluster>>,
    keys: Arc<Mutex<KeyPool>>,
    recorder: Arc<Recorder>,
) -> u64 {
    let mut tail = Tail::new(Vec::new());
    let mut next_process = PROBE_PROCESSES;
    let mut in_flight = JoinSet::new();
    let mut next_follow = Instant::now();
    while Instant::now() < spec.end {
        if Instant::now() >= next_follow {
            follow_new_nodes(&mut tail, &cluster);
            next_follow = Instant::now() + FOLLOW_EVERY;
        }
        if tail.is_empty() {
            tokio::time::sleep(FOLLOW_EVERY).await;
            continue;
        }
        tokio::time::sleep(moments::TAIL_POLL).await;
        while in_flight.try_join_next().is_some() {}
        for m in tail.poll() {
            if m.kind != MomentKind::Leader || in_flight.len() >= MAX_IN_FLIGHT {
                continue;
            }
            let Some(home) = spec
                .members
                .addrs()
                .iter()
                .position(|(id, _)| *id == m.node)
            else {
                continue;
            };
            let active = keys.lock().unwrap_or_else(|e| e.into_inner()).active();
            for key in active {
                let process = next_process;
                next_process += 1;
                let mut client = spec.members.worker(spec.workload, home, spec.timeout);
                client.new_session(process + 1);
                let recorder = recorder.clone();
                in_flight.spawn(async move {
                    perform(&mut *client, &recorder, process, &key, Action::Read(None)).await;
                });
            }
        }
    }
    while in_flight.join_next().await.is_some() {}
    next_process - PROBE_PROCESSES
}

/// Follows the event log of every node that has one and is not followed yet.
fn follow_new_nodes(tail: &mut Tail, cluster: &Mutex<Cluster>) {
    let logs = moments::of_cluster(&cluster.lock().unwrap_or_else(|e| e.into_inner()));
    for (node, path) in logs {
        tail.follow(&node, path);
    }
}
