//! The `Raft` service: what peers send this node. Message batches are
//! checked whole and handed to the driver as one event; a snapshot arrives
//! as a stream of chunks, is checked whole, and goes to the driver with its
//! InstallSnapshot message.

use bytes::Bytes;
use proto::raft as pb;
use raft::{Body, Message, NodeId, Term};
use tonic::{Request, Response, Status};

use super::convert;
use super::shared::Shared;
use crate::kv::KvState;
use crate::mailbox::Event;
use crate::storage::Snapshot;

/// The service peers call.
pub struct RaftService(pub Shared);

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn send(&self, req: Request<pb::MessageBatch>) -> Result<Response<pb::SendAck>, Status> {
        let batch = req.into_inner();
        self.0.check_peer_cluster(&batch.from, &batch.cluster_id)?;
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

    /// Who this node is and how it came into its cluster, for a node that
    /// starts with an empty data directory (see `startup`).
    async fn hello(
        &self,
        req: Request<pb::HelloRequest>,
    ) -> Result<Response<pb::HelloResponse>, Status> {
        let req = req.into_inner();
        self.0.check_peer_cluster(&req.from, &req.cluster_id)?;
        if req.to != self.0.me.0 {
            return Err(Status::invalid_argument(format!(
                "hello addressed to `{}` reached `{}`",
                req.to, self.0.me
            )));
        }
        Ok(Response::new(self.0.hello.answer()))
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
            self.0.check_peer_cluster(&chunk.from, &chunk.cluster_id)?;
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
