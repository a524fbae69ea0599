//! The peer and admin services, and what every service shares. Handlers
//! check the cluster id and the request, hand it to the driver's mailbox and
//! wait (bounded) for the answer; they never touch Raft state themselves.
//! The client `Kv` service is in [`super::kv_service`].

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;

use proto::kv as kvpb;
use proto::raft as pb;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use super::convert;
use super::kv_service::wait;
use crate::driver::{Event, NodeStatus, ReadQueue};
use crate::kv::KvState;
use crate::storage::Snapshot;
use raft::{Body, Message, NodeId, Term};

#[derive(Clone)]
pub struct Shared {
    pub me: NodeId,
    pub cluster_id: String,
    pub mailbox: mpsc::Sender<Event>,
    pub reads: std::sync::Arc<ReadQueue>,
}

impl Shared {
    pub(super) fn check_cluster(&self, cluster_id: &str) -> Result<(), Status> {
        if cluster_id != self.cluster_id {
            return Err(Status::failed_precondition(format!(
                "cluster id `{cluster_id}` does not match this node's `{}`",
                self.cluster_id
            )));
        }
        Ok(())
    }

    pub(super) fn submit(&self, ev: Event) -> Result<(), Status> {
        self.mailbox
            .send(ev)
            .map_err(|_| Status::unavailable("node is shutting down"))
    }
}

// ---- Raft (peers) ----------------------------------------------------------

pub struct RaftService(pub Shared);

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn send(&self, req: Request<pb::MessageBatch>) -> Result<Response<pb::SendAck>, Status> {
        let batch = req.into_inner();
        self.0.check_cluster(&batch.cluster_id)?;
        if batch.to != self.0.me.0 {
            return Err(Status::invalid_argument(format!(
                "batch addressed to `{}` reached `{}`",
                batch.to, self.0.me
            )));
        }
        let from = NodeId(batch.from);
        // Check the whole batch first: a malformed one is refused entirely.
        let mut msgs = Vec::with_capacity(batch.messages.len());
        for (i, m) in batch.messages.into_iter().enumerate() {
            msgs.push(
                convert::from_proto(&from, &self.0.me, i, m)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?,
            );
        }
        // One event for the batch: the driver wakes once for all of it.
        self.0.submit(Event::Peers(msgs))?;
        Ok(Response::new(pb::SendAck {}))
    }

    /// Gathers a leader's snapshot, checks it whole (checksum, position,
    /// image), and hands it to the driver with its InstallSnapshot message.
    /// The core does the term checks (§7) and the reply travels as a
    /// message, after the snapshot is durable. The ack says only "received".
    async fn install_snapshot(
        &self,
        req: Request<tonic::Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::SendAck>, Status> {
        let mut stream = req.into_inner();
        let mut first: Option<pb::SnapshotChunk> = None;
        let mut file: Vec<u8> = Vec::new();
        let mut done = false;
        while let Some(chunk) = stream.message().await? {
            self.0.check_cluster(&chunk.cluster_id)?;
            if chunk.to != self.0.me.0 {
                return Err(Status::invalid_argument(format!(
                    "snapshot addressed to `{}` reached `{}`",
                    chunk.to, self.0.me
                )));
            }
            if let Some(f) = &first {
                let same = (&f.from, f.term, f.snapshot_index, f.snapshot_term)
                    == (
                        &chunk.from,
                        chunk.term,
                        chunk.snapshot_index,
                        chunk.snapshot_term,
                    );
                if !same {
                    return Err(Status::invalid_argument(
                        "snapshot chunks disagree on sender, term or position",
                    ));
                }
            }
            if chunk.offset != file.len() as u64 {
                return Err(Status::invalid_argument(format!(
                    "snapshot chunk at offset {}, expected {}",
                    chunk.offset,
                    file.len()
                )));
            }
            if file.len() + chunk.data.len() > MAX_SNAPSHOT_BYTES {
                return Err(Status::resource_exhausted(format!(
                    "snapshot larger than {MAX_SNAPSHOT_BYTES} bytes"
                )));
            }
            file.extend_from_slice(&chunk.data);
            done = chunk.done;
            if first.is_none() {
                first = Some(pb::SnapshotChunk {
                    data: Default::default(),
                    ..chunk
                });
            }
            if done {
                break;
            }
        }
        let Some(head) = first.filter(|_| done) else {
            return Err(Status::invalid_argument(
                "snapshot stream ended before its last chunk",
            ));
        };
        // Checking and decoding a large image takes a while: not on the
        // threads that serve the other RPCs.
        let checked = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let snapshot = Snapshot::decode(Bytes::from(file))?;
            let meta = &snapshot.meta;
            if (meta.index.0, meta.term.0) != (head.snapshot_index, head.snapshot_term) {
                return Err(format!(
                    "the file holds index {} term {}, the chunks say index {} term {}",
                    meta.index, meta.term, head.snapshot_index, head.snapshot_term
                ));
            }
            let state = KvState::from_image(snapshot.image()).map_err(|e| e.to_string())?;
            Ok((head, snapshot, state))
        })
        .await
        .map_err(|e| Status::internal(format!("checking the snapshot: {e}")))?;
        let (head, snapshot, state) =
            checked.map_err(|e| Status::invalid_argument(format!("bad snapshot: {e}")))?;
        let msg = Message {
            from: NodeId(head.from),
            to: self.0.me.clone(),
            term: Term(head.term),
            body: Body::InstallSnapshot(snapshot.meta.clone()),
        };
        self.0.submit(Event::SnapshotReceived {
            msg,
            snapshot,
            state: Box::new(state),
        })?;
        Ok(Response::new(pb::SendAck {}))
    }
}

/// The largest snapshot file a node accepts from a leader.
pub const MAX_SNAPSHOT_BYTES: usize = 4 << 30;

// ---- Admin -----------------------------------------------------------------

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
