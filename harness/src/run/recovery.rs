//! Recovery and final reads: heal every fault, wait for a leader, re-add
//! members that wait for it, then read every key ever used, so that a lost
//! write shows as a final read that misses it; last, watch the members
//! converge (`convergence`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::convergence;
use super::load::Loaded;
use super::setup::Live;
use super::workers::{self, WorkerSpec};
use super::{FINAL_READS_WITHIN, LEADER_WAIT, RunError};

/// What recovery found.
pub struct Recovered {
    /// The leader after recovery and its term; `None` if none was elected
    /// in time (the final reads were then skipped).
    pub leader: Option<(String, u64)>,
    /// Keys whose final read did not succeed.
    pub missed: usize,
}

/// Heals the network, resumes and restarts every node, and reads every key.
pub async fn recover(
    live: &Live,
    loaded: &Loaded,
    convergence_timeout: Duration,
) -> Result<Recovered, RunError> {
    println!("recovering: healing the network, resuming and restarting every node");
    live.cluster()
        .recover_all()
        .map_err(|e| RunError::Harness(e.to_string()))?;
    loaded.recorder.nemesis(
        "recover",
        json!({"healed": true, "restarted": "all", "resumed": "all"}),
    );
    let leader = live
        .members
        .wait_for_leader(LEADER_WAIT)
        .await
        .map(|l| (l.id, l.term));
    if leader.is_some() && live.members.raftkv_clients().is_some() {
        let shared = convergence::shared(live, &loaded.recorder);
        let readded = convergence::readd_waiting(&shared).await;
        if !readded.is_empty() {
            println!("re-added {}", readded.join(", "));
        }
    }
    let all_keys = loaded
        .keys
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
                ..(*loaded.spec).clone()
            });
            workers::final_reads(spec, all_keys, loaded.recorder.clone(), FINAL_READS_WITHIN).await
        }
        None => {
            println!(
                "warning: no leader within {LEADER_WAIT:?} after recovery; final reads skipped"
            );
            all_keys.len()
        }
    };
    // Convergence is judged from our node's Status (commit and applied
    // indexes); other databases do not report them.
    if !convergence_timeout.is_zero() && live.members.raftkv_clients().is_some() {
        convergence::observe(live, &loaded.recorder, convergence_timeout).await;
    }
    Ok(Recovered { leader, missed })
}
