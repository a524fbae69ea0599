//! Client calls between gRPC and the driver, for the unary `Kv` service and
//! its stream alike: checking a request into a [`Call`], handing calls to
//! the driver ([`submit`]), and turning the driver's answers into
//! responses ([`Pending::response`]).

use std::time::Duration;

use bytes::Bytes;
use proto::kv as kvpb;
use raft::{LogIndex, NodeId};
use tokio::sync::oneshot;
use tonic::Status;

use super::shared::{Shared, wait};
use crate::kv::{Answer, Command, Op, Outcome, command::MAX_KEY};
use crate::mailbox::{Event, ReadReply, Refusal, WriteReply};

/// Longest a client request waits when it sets no deadline of its own.
pub const DEFAULT_CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// Longest a client request waits even if it asks for more.
pub const MAX_CLIENT_DEADLINE: Duration = Duration::from_secs(30);

/// A checked client request, ready for the driver.
pub enum Call {
    /// A linearizable read of this key.
    Read(String),
    /// A checked command, in its log encoding.
    Write(Bytes),
}

impl Call {
    /// A `Get`: a read of a valid key.
    pub fn get(shared: &Shared, r: kvpb::GetRequest) -> Result<Call, Status> {
        shared.check_cluster(&r.cluster_id)?;
        check_key(&r.key)?;
        Ok(Call::Read(r.key))
    }

    /// A `Put`: a checked write.
    pub fn put(shared: &Shared, r: kvpb::PutRequest) -> Result<Call, Status> {
        let op = Op::Put { value: r.value };
        Call::write(shared, &r.cluster_id, (r.client_id, r.seq), r.key, op)
    }

    /// A `Cas`: a checked compare-and-set.
    pub fn cas(shared: &Shared, r: kvpb::CasRequest) -> Result<Call, Status> {
        let op = Op::Cas {
            expected: r.expected,
            new: r.new,
        };
        Call::write(shared, &r.cluster_id, (r.client_id, r.seq), r.key, op)
    }

    /// An `Append`: a checked append.
    pub fn append(shared: &Shared, r: kvpb::AppendRequest) -> Result<Call, Status> {
        let op = Op::Append { suffix: r.suffix };
        Call::write(shared, &r.cluster_id, (r.client_id, r.seq), r.key, op)
    }

    /// Checks the command and encodes it for the log, here on a runtime
    /// thread: the driver thread only appends what it is given.
    fn write(
        shared: &Shared,
        cluster_id: &str,
        (client_id, seq): (u64, u64),
        key: String,
        op: Op,
    ) -> Result<Call, Status> {
        shared.check_cluster(cluster_id)?;
        let cmd = Command {
            client_id,
            seq,
            key,
            op,
        };
        cmd.validate()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Call::Write(cmd.encode()))
    }
}

/// Where the driver's answer to a call will arrive.
pub enum Pending {
    /// A read's value, or why there is none.
    Read(oneshot::Receiver<Result<(Option<Bytes>, LogIndex), Refusal>>),
    /// A write's outcome, or why there is none.
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
    let mut writes: Vec<(Bytes, WriteReply)> = Vec::new();
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
            let (command, reply) = writes.pop().expect("one write");
            shared.submit(Event::Propose { command, reply })?;
        }
        _ => shared.submit(Event::ProposeMany(writes))?,
    }
    Ok(pending)
}

/// A client's deadline (`None`: it set none), within the node's bounds.
pub fn bounded_deadline(asked: Option<Duration>) -> Duration {
    asked
        .unwrap_or(DEFAULT_CLIENT_DEADLINE)
        .min(MAX_CLIENT_DEADLINE)
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
        Outcome::Conflict => {
            return Err(Status::invalid_argument(format!(
                "this (client_id, seq) was used before, at index {}, for another command; \
                 nothing was done (a retry must repeat its command exactly)",
                a.index.0
            )));
        }
    };
    Ok(answered(status, a.value, a.index))
}
