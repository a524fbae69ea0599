//! The `Admin` service: a node's state, for operators and the harness.

use std::time::Duration;

use proto::kv as kvpb;
use raft::NodeId;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use super::shared::{Shared, wait};
use crate::mailbox::{Event, NodeStatus};

/// The service operators call.
pub struct AdminService(pub Shared);

#[tonic::async_trait]
impl kvpb::admin_server::Admin for AdminService {
    async fn status(
        &self,
        req: Request<kvpb::StatusRequest>,
    ) -> Result<Response<kvpb::StatusResponse>, Status> {
        self.0.check_cluster(&req.get_ref().cluster_id)?;
        let (tx, rx) = oneshot::channel();
        self.0.submit(Event::Status { reply: tx })?;
        let NodeStatus {
            raft: s,
            cluster_id,
        } = wait(rx, Duration::from_secs(5)).await?;
        let name = |n: Option<NodeId>| n.map(|n| n.0).unwrap_or_default();
        Ok(Response::new(kvpb::StatusResponse {
            id: s.id.0,
            role: s.role.as_str().to_string(),
            term: s.term.0,
            leader_id: name(s.leader),
            voted_for: name(s.voted_for),
            commit_index: s.commit_index.0,
            last_applied: s.applied_index.0,
            first_log_index: s.first_index.0,
            last_log_index: s.last_index.0,
            snapshot_index: s.snapshot_index.0,
            members: s.members.into_iter().map(|m| m.0).collect(),
            cluster_id,
        }))
    }
}
