//! The end of recovery: members that still wait to be re-added are
//! re-added (as an operator finishing the job would), then the harness
//! watches whether every running member reaches the leader's commit index
//! within `--convergence-timeout`, after a write of its own, and records
//! what it saw as the history's `convergence` op, which the `convergence`
//! checker judges (`check::convergence`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use node::client::{NodeClient, Reply, Session};
use serde_json::{Value, json};

use super::setup::Live;
use crate::cluster::membership::Admin;
use crate::nemesis::schedule::Shared;
use crate::nemesis::wipe;
use crate::recorder::Recorder;

/// The key of the write convergence waits for; no workload uses it.
const KEY: &str = "harness-convergence";
/// Between two looks at the members' indexes.
const POLL: Duration = Duration::from_millis(100);
/// Each attempt of the write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Re-adds every member the leader lists as waiting to be re-added (and
/// every wiped node the harness has not yet seen re-added), and records
/// each re-add (`readd`). Returns the nodes re-added.
pub async fn readd_waiting(shared: &Shared) -> Vec<String> {
    let Ok(members) = shared.admin.members().await else {
        return Vec::new();
    };
    // The leader's list, and wiped nodes whose re-add was cut off after
    // their removal (no longer members, so not on that list).
    let mut waiting = members.awaiting_readd();
    for n in shared.cluster().nodes() {
        if n.awaiting_readd && !n.is_out() && !waiting.contains(&n.id) {
            waiting.push(n.id.clone());
        }
    }
    let mut done = Vec::new();
    for node in waiting {
        let value = wipe::readd(shared, &node).await;
        if value["readded"].as_array().is_some_and(|a| !a.is_empty()) {
            done.push(node.clone());
        }
        shared.recorder.nemesis("readd", value);
    }
    done
}

/// Waits up to `within` for a write to succeed and every running member
/// to reach the leader's commit index after it; records the outcome.
pub async fn observe(live: &Live, recorder: &Recorder, within: Duration) {
    let value = watch(live, within).await;
    let converged = value["converged"] == json!(true);
    if converged {
        println!(
            "converged: every member at commit index {} within {:.1} s",
            value["target_index"],
            value["elapsed_s"].as_f64().unwrap_or(0.0)
        );
    } else {
        println!("warning: the members did not converge within {within:?}: {value}");
    }
    recorder.nemesis(crate::check::convergence::OP, value);
}

async fn watch(live: &Live, within: Duration) -> Value {
    let t0 = Instant::now();
    let deadline = t0 + within;
    let admin = Admin::new(live.addrs.clone(), &live.cluster_id);
    let write = write(live, deadline).await;
    let mut value = json!({"within_s": within.as_secs_f64(), "write": write});
    let mut last = BTreeMap::new();
    loop {
        let look = look(&admin, live).await;
        let (leader, target, nodes) = match look {
            Ok(found) => found,
            Err(e) => {
                value["error"] = json!(e);
                (String::new(), 0, BTreeMap::new())
            }
        };
        let all_reached =
            !nodes.is_empty() && nodes.values().all(|n: &Value| n["reached"] == json!(true));
        if !nodes.is_empty() {
            value["leader"] = json!(leader);
            value["target_index"] = json!(target);
            last = nodes;
            value.as_object_mut().expect("an object").remove("error");
        }
        let write_ok = value["write"]["ok"] == json!(true);
        if (all_reached && write_ok) || Instant::now() >= deadline {
            value["nodes"] = json!(last);
            value["converged"] = json!(all_reached && write_ok);
            value["elapsed_s"] = json!(t0.elapsed().as_secs_f64());
            return value;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The leader, its commit index, and each running member's indexes
/// against it.
async fn look(
    admin: &Admin,
    live: &Live,
) -> Result<(String, u64, BTreeMap<String, Value>), String> {
    let members = admin.members().await?;
    let statuses = admin.statuses().await;
    let running: Vec<String> = {
        let c = live.cluster();
        c.nodes()
            .iter()
            .filter(|n| n.is_running() && !n.is_out())
            .map(|n| n.id.clone())
            .collect()
    };
    let target = statuses
        .iter()
        .find(|(id, _)| *id == members.leader)
        .and_then(|(_, s)| s.as_ref())
        .map(|s| s.commit_index)
        .ok_or_else(|| format!("the leader {} did not answer Status", members.leader))?;
    let mut nodes = BTreeMap::new();
    for (id, status) in statuses {
        if !members.contains(&id) || !running.contains(&id) {
            continue;
        }
        let v = match status {
            Some(s) => json!({"commit": s.commit_index, "applied": s.last_applied,
                              "role": s.role, "reached": s.commit_index >= target && s.last_applied >= target}),
            None => json!({"reached": false, "error": "no answer to Status"}),
        };
        nodes.insert(id, v);
    }
    Ok((members.leader, target, nodes))
}

/// A write through whichever node leads, retried until `deadline`.
async fn write(live: &Live, deadline: Instant) -> Value {
    let session = Session::new(u64::MAX - 1, 1);
    let request = session.put(KEY, "converged");
    let mut last = "no node answered".to_string();
    let mut at = 0;
    while Instant::now() < deadline {
        let (id, addr) = &live.addrs[at % live.addrs.len()];
        at += 1;
        let client = match NodeClient::new(&addr.to_string(), &live.cluster_id, WRITE_TIMEOUT) {
            Ok(c) => c,
            Err(e) => return json!({"ok": false, "error": e.to_string()}),
        };
        match client.call(request.clone(), WRITE_TIMEOUT).await {
            Ok(Reply::Done { index, .. }) => return json!({"ok": true, "index": index, "node": id}),
            Ok(Reply::NotLeader { leader_id, .. }) => {
                if let Some(i) =
                    leader_id.and_then(|l| live.addrs.iter().position(|(n, _)| *n == l))
                {
                    at = i;
                }
                last = format!("{id}: not the leader");
            }
            Ok(other) => last = format!("{id}: {other:?}"),
            Err(e) => last = format!("{id}: {e}"),
        }
        if Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
    }
    json!({"ok": false, "error": last})
}

/// What recovery hands the nemesis helpers it reuses.
pub fn shared(live: &Live, recorder: &Arc<Recorder>) -> Shared {
    Shared {
        cluster: live.cluster.clone(),
        members: live.members.clone(),
        recorder: recorder.clone(),
        in_force: Default::default(),
        admin: Admin::new(live.addrs.clone(), &live.cluster_id),
        changing: Default::default(),
    }
}
