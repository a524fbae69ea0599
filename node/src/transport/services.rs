//! The three gRPC services one node serves. Handlers check the cluster id and
//! the request, hand it to the driver's mailbox and wait (bounded) for the
//! answer; they never touch Raft state themselves.

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;

use proto::kv as kvpb;
use proto::raft as pb;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use super::convert;
use crate::driver::{Event, NodeStatus, ReadQueue, Refusal};
use crate::kv::{Answer, Command, KvState, Op, Outcome, command::MAX_KEY};
use crate::raft::{Body, Message, NodeId, Term};
use crate::storage::Snapshot;

/// Longest a client request waits when it sets no deadline of its own.
pub const DEFAULT_CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// Longest a client request waits even if it asks for more.
pub const MAX_CLIENT_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct Shared {
    pub me: NodeId,
    pub cluster_id: String,
    pub mailbox: mpsc::Sender<Event>,
    pub reads: std::sync::Arc<ReadQueue>,
}

impl Shared {
    fn check_cluster(&self, cluster_id: &str) -> Result<(), Status> {
        if cluster_id != self.cluster_id {
            return Err(Status::failed_precondition(format!(
                "cluster id `{cluster_id}` does not match this node's `{}`",
                self.cluster_id
            )));
        }
        Ok(())
    }

    fn submit(&self, ev: Event) -> Result<(), Status> {
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
            body: Body::InstallSnapshot {
                meta: snapshot.meta.clone(),
            },
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

// ---- Kv (clients) ----------------------------------------------------------

pub struct KvService(pub Shared);

/// The deadline the client asked for (the `grpc-timeout` header), bounded.
fn deadline<T>(req: &Request<T>) -> Duration {
    let asked = req
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout);
    asked
        .unwrap_or(DEFAULT_CLIENT_DEADLINE)
        .min(MAX_CLIENT_DEADLINE)
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

async fn wait<T>(rx: oneshot::Receiver<T>, limit: Duration) -> Result<T, Status> {
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

fn not_leader(leader: Option<NodeId>, addr: Option<String>) -> kvpb::KvResponse {
    kvpb::KvResponse {
        status: kvpb::Status::NotLeader as i32,
        value: None,
        leader_id: leader.map(|l| l.0).unwrap_or_default(),
        leader_addr: addr.unwrap_or_default(),
        index: 0,
    }
}

fn refusal(r: Refusal) -> Result<Response<kvpb::KvResponse>, Status> {
    match r {
        Refusal::NotLeader { leader, addr } => Ok(Response::new(not_leader(leader, addr))),
        Refusal::ShuttingDown => Err(Status::unavailable(
            "node is shutting down; outcome unknown",
        )),
        Refusal::Unknown { reason } => {
            Err(Status::unavailable(format!("{reason}; outcome unknown")))
        }
    }
}

fn check_key(key: &str) -> Result<(), Status> {
    if key.is_empty() {
        return Err(Status::invalid_argument("key is empty"));
    }
    if key.len() > MAX_KEY {
        return Err(Status::invalid_argument(format!(
            "key is {} bytes, the limit is {MAX_KEY}",
            key.len()
        )));
    }
    Ok(())
}

impl KvService {
    async fn write(
        &self,
        cmd: Command,
        limit: Duration,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        cmd.validate()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        self.0.submit(Event::Propose { cmd, reply: tx })?;
        match wait(rx, limit).await? {
            Ok(answer) => answer_to_response(answer),
            Err(r) => refusal(r),
        }
    }
}

fn answer_to_response(a: Answer) -> Result<Response<kvpb::KvResponse>, Status> {
    let status = match a.outcome {
        Outcome::Ok => kvpb::Status::Ok,
        Outcome::Mismatch => kvpb::Status::Mismatch,
        Outcome::Stale => {
            return Err(Status::aborted(
                "request is older than this client's latest; its outcome is no longer known",
            ));
        }
    };
    Ok(Response::new(kvpb::KvResponse {
        status: status as i32,
        value: a.value,
        leader_id: String::new(),
        leader_addr: String::new(),
        index: a.index.0,
    }))
}

#[tonic::async_trait]
impl kvpb::kv_server::Kv for KvService {
    async fn get(
        &self,
        req: Request<kvpb::GetRequest>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        let limit = deadline(&req);
        let r = req.into_inner();
        self.0.check_cluster(&r.cluster_id)?;
        check_key(&r.key)?;
        let (tx, rx) = oneshot::channel();
        if self.0.reads.push(r.key, tx) {
            self.0.submit(Event::ReadsQueued)?;
        }
        match wait(rx, limit).await? {
            Ok((value, index)) => Ok(Response::new(kvpb::KvResponse {
                status: kvpb::Status::Ok as i32,
                value,
                leader_id: String::new(),
                leader_addr: String::new(),
                index: index.0,
            })),
            Err(r) => refusal(r),
        }
    }

    async fn put(
        &self,
        req: Request<kvpb::PutRequest>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        let limit = deadline(&req);
        let r = req.into_inner();
        self.0.check_cluster(&r.cluster_id)?;
        let cmd = Command {
            client_id: r.client_id,
            seq: r.seq,
            key: r.key,
            op: Op::Put { value: r.value },
        };
        self.write(cmd, limit).await
    }

    async fn cas(
        &self,
        req: Request<kvpb::CasRequest>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        let limit = deadline(&req);
        let r = req.into_inner();
        self.0.check_cluster(&r.cluster_id)?;
        let cmd = Command {
            client_id: r.client_id,
            seq: r.seq,
            key: r.key,
            op: Op::Cas {
                expected: r.expected,
                new: r.new,
            },
        };
        self.write(cmd, limit).await
    }

    async fn append(
        &self,
        req: Request<kvpb::AppendRequest>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        let limit = deadline(&req);
        let r = req.into_inner();
        self.0.check_cluster(&r.cluster_id)?;
        let cmd = Command {
            client_id: r.client_id,
            seq: r.seq,
            key: r.key,
            op: Op::Append { suffix: r.suffix },
        };
        self.write(cmd, limit).await
    }
}

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
