//! The `Kv` service: the four unary calls, and what they share with the
//! batched stream ([`super::kv_stream`]): checking a request into a
//! [`Call`] for the driver, submitting calls, and turning the driver's
//! answers into responses.

use std::time::Duration;

use bytes::Bytes;
use proto::kv as kvpb;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use super::services::Shared;
use crate::driver::{Event, ReadReply, Refusal, WriteReply};
use crate::kv::{Answer, Command, Op, Outcome, command::MAX_KEY};
use raft::{LogIndex, NodeId};

/// Longest a client request waits when it sets no deadline of its own.
pub const DEFAULT_CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// Longest a client request waits even if it asks for more.
pub const MAX_CLIENT_DEADLINE: Duration = Duration::from_secs(30);

/// A checked client request, ready for the driver.
pub enum Call {
    /// A linearizable read of this key.
    Read(String),
    Write(Command),
}

impl Call {
    pub fn get(shared: &Shared, r: kvpb::GetRequest) -> Result<Call, Status> {
        shared.check_cluster(&r.cluster_id)?;
        check_key(&r.key)?;
        Ok(Call::Read(r.key))
    }

    pub fn put(shared: &Shared, r: kvpb::PutRequest) -> Result<Call, Status> {
        shared.check_cluster(&r.cluster_id)?;
        Call::write(Command {
            client_id: r.client_id,
            seq: r.seq,
            key: r.key,
            op: Op::Put { value: r.value },
        })
    }

    pub fn cas(shared: &Shared, r: kvpb::CasRequest) -> Result<Call, Status> {
        shared.check_cluster(&r.cluster_id)?;
        Call::write(Command {
            client_id: r.client_id,
            seq: r.seq,
            key: r.key,
            op: Op::Cas {
                expected: r.expected,
                new: r.new,
            },
        })
    }

    pub fn append(shared: &Shared, r: kvpb::AppendRequest) -> Result<Call, Status> {
        shared.check_cluster(&r.cluster_id)?;
        Call::write(Command {
            client_id: r.client_id,
            seq: r.seq,
            key: r.key,
            op: Op::Append { suffix: r.suffix },
        })
    }

    fn write(cmd: Command) -> Result<Call, Status> {
        cmd.validate()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Call::Write(cmd))
    }
}

/// Where the driver's answer to a call will arrive.
pub enum Pending {
    Read(oneshot::Receiver<Result<(Option<Bytes>, LogIndex), Refusal>>),
    Write(oneshot::Receiver<Result<Answer, Refusal>>),
}

impl Pending {
    /// The response, once the driver answers or `limit` passes.
    pub async fn response(self, limit: Duration) -> Result<kvpb::KvResponse, Status> {
        match self {
            Pending::Read(rx) => read_response(wait(rx, limit).await?),
            Pending::Write(rx) => write_response(wait(rx, limit).await?),
        }
    }
}

/// Hands calls to the driver, many at once: one wake-up of the driver for
/// all the writes, and none for reads that can join a round in flight.
pub fn submit(shared: &Shared, calls: Vec<Call>) -> Result<Vec<Pending>, Status> {
    let mut pending = Vec::with_capacity(calls.len());
    let mut reads: Vec<(String, ReadReply)> = Vec::new();
    let mut writes: Vec<(Command, WriteReply)> = Vec::new();
    for call in calls {
        match call {
            Call::Read(key) => {
                let (tx, rx) = oneshot::channel();
                reads.push((key, tx));
                pending.push(Pending::Read(rx));
            }
            Call::Write(cmd) => {
                let (tx, rx) = oneshot::channel();
                writes.push((cmd, tx));
                pending.push(Pending::Write(rx));
            }
        }
    }
    if !reads.is_empty() && shared.reads.push_all(reads) {
        shared.submit(Event::ReadsQueued)?;
    }
    match writes.len() {
        0 => {}
        1 => {
            let (cmd, reply) = writes.pop().expect("one write");
            shared.submit(Event::Propose { cmd, reply })?;
        }
        _ => shared.submit(Event::ProposeMany(writes))?,
    }
    Ok(pending)
}

/// The deadline a unary client asked for (the `grpc-timeout` header), bounded.
fn deadline<T>(req: &Request<T>) -> Duration {
    let asked = req
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout);
    bounded_deadline(asked)
}

/// A client's deadline (`None`: it set none), within the node's bounds.
pub fn bounded_deadline(asked: Option<Duration>) -> Duration {
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

fn not_leader(leader: Option<NodeId>, addr: Option<String>) -> kvpb::KvResponse {
    kvpb::KvResponse {
        status: kvpb::Status::NotLeader as i32,
        value: None,
        leader_id: leader.map(|l| l.0).unwrap_or_default(),
        leader_addr: addr.unwrap_or_default(),
        index: 0,
    }
}

fn refusal(r: Refusal) -> Result<kvpb::KvResponse, Status> {
    match r {
        Refusal::NotLeader { leader, addr } => Ok(not_leader(leader, addr)),
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

fn read_response(
    r: Result<(Option<Bytes>, LogIndex), Refusal>,
) -> Result<kvpb::KvResponse, Status> {
    match r {
        Ok((value, index)) => Ok(answered(kvpb::Status::Ok, value, index)),
        Err(r) => refusal(r),
    }
}

/// The answer of a call the state machine served.
fn answered(status: kvpb::Status, value: Option<Bytes>, index: LogIndex) -> kvpb::KvResponse {
    kvpb::KvResponse {
        status: status as i32,
        value,
        leader_id: String::new(),
        leader_addr: String::new(),
        index: index.0,
    }
}

fn write_response(r: Result<Answer, Refusal>) -> Result<kvpb::KvResponse, Status> {
    let a = match r {
        Ok(a) => a,
        Err(r) => return refusal(r),
    };
    let status = match a.outcome {
        Outcome::Ok => kvpb::Status::Ok,
        Outcome::Mismatch => kvpb::Status::Mismatch,
        Outcome::Stale => {
            return Err(Status::aborted(
                "request is older than this client's latest; its outcome is no longer known",
            ));
        }
    };
    Ok(answered(status, a.value, a.index))
}

pub struct KvService(pub Shared);

impl KvService {
    /// One unary call: check it, hand it to the driver, wait for the answer.
    async fn unary<T>(
        &self,
        req: Request<T>,
        check: fn(&Shared, T) -> Result<Call, Status>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        let limit = deadline(&req);
        let call = check(&self.0, req.into_inner())?;
        let pending = submit(&self.0, vec![call])?
            .pop()
            .expect("one answer slot per call");
        pending.response(limit).await.map(Response::new)
    }
}

#[tonic::async_trait]
impl kvpb::kv_server::Kv for KvService {
    async fn get(
        &self,
        req: Request<kvpb::GetRequest>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        self.unary(req, Call::get).await
    }

    async fn put(
        &self,
        req: Request<kvpb::PutRequest>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        self.unary(req, Call::put).await
    }

    async fn cas(
        &self,
        req: Request<kvpb::CasRequest>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        self.unary(req, Call::cas).await
    }

    async fn append(
        &self,
        req: Request<kvpb::AppendRequest>,
    ) -> Result<Response<kvpb::KvResponse>, Status> {
        self.unary(req, Call::append).await
    }

    type StreamStream = super::kv_stream::Replies;

    async fn stream(
        &self,
        req: Request<tonic::Streaming<kvpb::KvCalls>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        Ok(Response::new(super::kv_stream::start(
            self.0.clone(),
            req.into_inner(),
        )))
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
