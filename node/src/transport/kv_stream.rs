//! `Kv.Stream`: the four client calls, many at a time, on one stream.
//!
//! A unary call costs an HTTP/2 stream (headers both ways, a task, a
//! write system call and a wake-up on each side) for a few dozen bytes of
//! request. On two cores that overhead, not Raft, is what limits a node.
//! Here one task per stream reads a message of calls, checks them, hands
//! them all to the driver at once ([`submit`]: one wake-up for the batch),
//! and sends every answer that is ready as one message.
//!
//! A call's answer means exactly what the unary call's would: the same
//! checks, the same driver path, the same deadline bounds. Answers go out
//! in the order they come, each naming its call's id.

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use prost::Message as _;
use proto::kv as kvpb;
use proto::kv::kv_call::Op;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::calls::{Call, Pending, bounded_deadline, submit};
use super::shared::Shared;

/// What the service returns: the replies, as the stream's task sends them.
pub type Replies = ReceiverStream<Result<kvpb::KvReplies, Status>>;

/// Calls a stream may have in flight. Past this the task reads no more of
/// the client's messages until answers go out: a client that never waits
/// cannot make the node hold an unbounded number of calls.
pub const MAX_IN_FLIGHT: usize = 8192;
/// Calls one message may carry; a larger message ends the stream with
/// INVALID_ARGUMENT (the bound above would not hold otherwise).
pub const MAX_CALLS_PER_MESSAGE: usize = 4096;
/// A reply message is closed once it holds this many bytes (one reply, a
/// large value, may take it further): well under the 4 MiB a tonic client
/// decodes by default.
pub const MAX_REPLY_BYTES: usize = 1 << 20;

/// Starts the task that serves one stream.
pub fn start(shared: Shared, calls: Streaming<kvpb::KvCalls>) -> Replies {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(serve(shared, calls, tx));
    ReceiverStream::new(rx)
}

/// One call handed to the driver: the id to answer with and how long to wait.
struct Accepted {
    id: u64,
    limit: Duration,
    pending: Pending,
}

async fn answer(a: Accepted) -> kvpb::KvReply {
    reply(a.id, a.pending.response(a.limit).await)
}

fn reply(id: u64, r: Result<kvpb::KvResponse, Status>) -> kvpb::KvReply {
    match r {
        Ok(response) => kvpb::KvReply {
            id,
            code: 0,
            message: String::new(),
            response: Some(response),
        },
        Err(status) => kvpb::KvReply {
            id,
            code: status.code() as i32,
            message: status.message().to_string(),
            response: None,
        },
    }
}

async fn serve(
    shared: Shared,
    mut calls: Streaming<kvpb::KvCalls>,
    out: mpsc::Sender<Result<kvpb::KvReplies, Status>>,
) {
    let mut in_flight = FuturesUnordered::new();
    let mut reading = true;
    loop {
        let mut replies = tokio::select! {
            msg = calls.next(), if reading && in_flight.len() < MAX_IN_FLIGHT => match msg {
                Some(Ok(msg)) => match accept(&shared, msg) {
                    Ok((accepted, refused)) => {
                        in_flight.extend(accepted.into_iter().map(answer));
                        if refused.is_empty() {
                            continue;
                        }
                        refused
                    }
                    Err(status) => {
                        let _ = out.send(Err(status)).await;
                        return;
                    }
                },
                // The client is done sending (or its side broke): answer
                // what is in flight, then end.
                Some(Err(_)) | None => {
                    reading = false;
                    continue;
                }
            },
            Some(first) = in_flight.next(), if !in_flight.is_empty() => vec![first],
            else => return,
        };
        // Whatever else is answered by now goes in the same message.
        let mut bytes: usize = replies.iter().map(|r| r.encoded_len()).sum();
        while bytes < MAX_REPLY_BYTES {
            match in_flight.next().now_or_never() {
                Some(Some(r)) => {
                    bytes += r.encoded_len();
                    replies.push(r);
                }
                _ => break,
            }
        }
        if out.send(Ok(kvpb::KvReplies { replies })).await.is_err() {
            // The client is gone; the driver's answers to the rest go nowhere.
            return;
        }
    }
}

/// Checks a message's calls and hands the good ones to the driver. Returns
/// them, and the answers to the calls refused outright (a bad key, another
/// cluster's id, no operation). An error ends the stream.
fn accept(
    shared: &Shared,
    msg: kvpb::KvCalls,
) -> Result<(Vec<Accepted>, Vec<kvpb::KvReply>), Status> {
    if msg.calls.len() > MAX_CALLS_PER_MESSAGE {
        return Err(Status::invalid_argument(format!(
            "a KvCalls message holds {} calls, the limit is {MAX_CALLS_PER_MESSAGE}",
            msg.calls.len()
        )));
    }
    let mut refused = Vec::new();
    let mut checked = Vec::with_capacity(msg.calls.len());
    let mut slots = Vec::with_capacity(msg.calls.len());
    for c in msg.calls {
        let limit = bounded_deadline(
            (c.timeout_ms > 0).then(|| Duration::from_millis(u64::from(c.timeout_ms))),
        );
        let call = match c.op {
            Some(Op::Get(r)) => Call::get(shared, r),
            Some(Op::Put(r)) => Call::put(shared, r),
            Some(Op::Cas(r)) => Call::cas(shared, r),
            Some(Op::Append(r)) => Call::append(shared, r),
            None => Err(Status::invalid_argument(format!(
                "call {} has no operation (get, put, cas or append)",
                c.id
            ))),
        };
        match call {
            Ok(call) => {
                checked.push(call);
                slots.push((c.id, limit));
            }
            Err(status) => refused.push(reply(c.id, Err(status))),
        }
    }
    if checked.is_empty() {
        return Ok((Vec::new(), refused));
    }
    match submit(shared, checked) {
        Ok(pending) => {
            let accepted = slots
                .into_iter()
                .zip(pending)
                .map(|((id, limit), pending)| Accepted { id, limit, pending })
                .collect();
            Ok((accepted, refused))
        }
        // The driver is gone: nothing was handed over.
        Err(status) => {
            refused.extend(
                slots
                    .into_iter()
                    .map(|(id, _)| reply(id, Err(status.clone()))),
            );
            Ok((Vec::new(), refused))
        }
    }
}
