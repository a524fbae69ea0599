//! After the final reads: each node's own applied state, read through
//! `Admin.LocalDump` (never through the leader), once the nodes' applied
//! indexes agree or a short wait has passed, written to `replicas.json` for
//! the replica-state checker. A node that cannot answer (down, or a
//! `--node-bin` without the call) is written with its error.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use node::client::NodeClient;

use super::RunError;
use crate::check::replica_state::{REPLICAS_FILE, ReplicaDump, Replicas};

/// How long the nodes get to apply the same index before they are dumped
/// as they are.
const CONVERGE_WITHIN: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Waits for the applied indexes to agree, dumps every node, writes
/// `dir/replicas.json`.
pub async fn dump(
    addrs: &[(String, SocketAddr)],
    cluster_id: &str,
    dir: &Path,
) -> Result<Replicas, RunError> {
    let started = Instant::now();
    let clients: Vec<(String, Option<NodeClient>)> = addrs
        .iter()
        .map(|(id, a)| {
            let c = NodeClient::new(&a.to_string(), cluster_id, CALL_TIMEOUT).ok();
            (id.clone(), c)
        })
        .collect();
    loop {
        let applied = join_all(clients.iter().map(|(_, c)| async move {
            match c {
                Some(c) => c.status(CALL_TIMEOUT).await.ok().map(|s| s.last_applied),
                None => None,
            }
        }))
        .await;
        let agreed = applied.iter().all(|a| a.is_some() && *a == applied[0]);
        if agreed || started.elapsed() >= CONVERGE_WITHIN {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited_ms = started.elapsed().as_millis() as u64;
    let nodes = join_all(clients.iter().map(|(id, c)| async move {
        let Some(c) = c else {
            return ReplicaDump {
                node: id.clone(),
                error: Some("bad address".into()),
                ..ReplicaDump::default()
            };
        };
        match c.local_dump(CALL_TIMEOUT).await {
            Ok(r) => ReplicaDump {
                node: id.clone(),
                error: None,
                applied_index: r.applied_index,
                commit_index: r.commit_index,
                values_digest: r.values_digest,
                sessions_digest: r.sessions_digest,
                values: r
                    .values
                    .into_iter()
                    .map(|v| (v.key, text(&v.value)))
                    .collect(),
            },
            Err(e) => ReplicaDump {
                node: id.clone(),
                error: Some(e.to_string()),
                ..ReplicaDump::default()
            },
        }
    }))
    .await;
    let replicas = Replicas { waited_ms, nodes };
    let path = dir.join(REPLICAS_FILE);
    let json = serde_json::to_string_pretty(&replicas)
        .map_err(|e| RunError::Harness(format!("cannot encode {}: {e}", path.display())))?;
    std::fs::write(&path, json + "\n")
        .map_err(|e| RunError::Store(format!("cannot write {}: {e}", path.display())))?;
    Ok(replicas)
}

/// A value as text: UTF-8 as it is, anything else as `hex:` and its bytes.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            format!("hex:{hex}")
        }
    }
}
