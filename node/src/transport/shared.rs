//! What every service shares: this node's name and cluster, and the way to
//! the driver. Handlers check the cluster id and the request, hand it to
//! the driver's mailbox and wait (bounded) for the answer; they never touch
//! Raft state themselves.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use raft::NodeId;
use tokio::sync::oneshot;
use tonic::Status;

use crate::mailbox::{Event, ReadQueue};
use crate::startup::HelloState;

/// The services' handle on the node.
#[derive(Clone)]
pub struct Shared {
    /// This node.
    pub me: NodeId,
    /// The cluster every request must name.
    pub cluster_id: String,
    /// The driver's inbox.
    pub mailbox: mpsc::Sender<Event>,
    /// Where reads go to the driver.
    pub reads: Arc<ReadQueue>,
    /// What this node answers to `Hello`.
    pub hello: HelloState,
    /// Peers (with the cluster id they named) whose traffic was refused and
    /// logged: a peer of another cluster retries all the time, and one line
    /// says all there is to say.
    pub strangers: Arc<Mutex<HashSet<(String, String)>>>,
}

impl Shared {
    /// Refuses a request meant for another cluster.
    pub fn check_cluster(&self, cluster_id: &str) -> Result<(), Status> {
        if cluster_id != self.cluster_id {
            return Err(Status::failed_precondition(format!(
                "cluster id `{cluster_id}` does not match this node's `{}`",
                self.cluster_id
            )));
        }
        Ok(())
    }

    /// Refuses a peer's message meant for another cluster, and says so in
    /// the log the first time this peer names that cluster: a node started
    /// with the wrong `--cluster-id` (or a peer address that is another
    /// cluster's node) otherwise shows only as a cluster that never forms.
    pub fn check_peer_cluster(&self, from: &str, cluster_id: &str) -> Result<(), Status> {
        let refused = self.check_cluster(cluster_id);
        if refused.is_err() {
            let key = (from.to_string(), cluster_id.to_string());
            let first = self
                .strangers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key);
            if first {
                tracing::warn!(
                    "refusing traffic from peer `{from}`: it names cluster `{cluster_id}`, \
                     this node's is `{}` (logged once per peer)",
                    self.cluster_id
                );
            }
        }
        refused
    }

    /// Hands an event to the driver.
    pub fn submit(&self, ev: Event) -> Result<(), Status> {
        self.mailbox
            .send(ev)
            .map_err(|_| Status::unavailable("node is shutting down"))
    }
}

/// The deadline a unary caller asked for: its `grpc-timeout` header.
pub fn asked_deadline<T>(req: &tonic::Request<T>) -> Option<Duration> {
    req.metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
}

/// `grpc-timeout` is up to 8 digits and a unit: H, M, S, m (ms), u (µs), n (ns).
fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (num, unit) = v.split_at(v.len() - 1);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Waits for the driver's answer, at most `limit`.
pub async fn wait<T>(rx: oneshot::Receiver<T>, limit: Duration) -> Result<T, Status> {
    match tokio::time::timeout(limit, rx).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(_)) => Err(Status::unavailable(
            "node stopped before answering; outcome unknown",
        )),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no answer within {} ms; the operation may or may not take effect",
            limit.as_millis()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_header() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("5x"), None);
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("123456789m"), None);
    }
}
