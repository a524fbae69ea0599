//! What every service shares: this node's name and cluster, and the way to
//! the driver. Handlers check the cluster id and the request, hand it to
//! the driver's mailbox and wait (bounded) for the answer; they never touch
//! Raft state themselves.

use std::sync::{Arc, mpsc};
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

    /// Hands an event to the driver.
    pub fn submit(&self, ev: Event) -> Result<(), Status> {
        self.mailbox
            .send(ev)
            .map_err(|_| Status::unavailable("node is shutting down"))
    }
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
