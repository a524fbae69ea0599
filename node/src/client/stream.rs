//! A client whose calls share one `Kv.Stream` to a node: what many
//! concurrent callers in one process use so that a call costs a few dozen
//! bytes in a shared message instead of an HTTP/2 stream of its own.
//!
//! One task owns the stream. Callers hand it their calls; it sends every
//! call that is waiting as one message, and completes each caller's call
//! when the reply naming its id comes back. If the stream breaks, every
//! call without a reply fails as UNAVAILABLE (unknown outcome, as a unary
//! call cut off), and the next call opens a new stream.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use proto::kv as pb;
use proto::kv::kv_call::Op;
use proto::kv::kv_client::KvClient;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use super::request::{CallError, Reply, Request, reply};
use super::{BadAddress, channel};

/// Calls in one message, at most (the node refuses more).
const MAX_CALLS: usize = 1024;
/// A message is closed once its calls take this many bytes.
const MAX_BYTES: usize = 1 << 20;

/// What the stream task hands back: the node's answer or why there is none.
type Answer = Result<pb::KvResponse, Status>;

struct Outgoing {
    op: Op,
    timeout: Duration,
    reply: oneshot::Sender<Answer>,
}

/// A handle on the stream task; clones share the stream.
#[derive(Clone)]
pub struct StreamClient {
    cluster_id: String,
    calls: mpsc::UnboundedSender<Outgoing>,
}

impl StreamClient {
    /// A client for the node at `addr` (HOST:PORT); its task runs on the
    /// current tokio runtime until every handle is dropped. Connects on
    /// first use.
    pub fn new(
        addr: &str,
        cluster_id: &str,
        connect_timeout: Duration,
    ) -> Result<StreamClient, BadAddress> {
        let kv = KvClient::new(channel(addr, connect_timeout)?).max_decoding_message_size(64 << 20);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(kv, rx, connect_timeout));
        Ok(StreamClient {
            cluster_id: cluster_id.to_string(),
            calls: tx,
        })
    }

    /// Sends `request` on the shared stream and waits for the answer at
    /// most `timeout`, which also travels with the call as its deadline.
    pub async fn call(&self, request: Request, timeout: Duration) -> Result<Reply, CallError> {
        reply(self.send(request.into_op(&self.cluster_id), timeout).await)
    }

    async fn send(&self, op: Op, timeout: Duration) -> Answer {
        let (tx, rx) = oneshot::channel();
        self.calls
            .send(Outgoing {
                op,
                timeout,
                reply: tx,
            })
            .map_err(|_| Status::unavailable("the stream client has stopped"))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(Status::unavailable(
                "the stream client stopped before an answer; outcome unknown",
            )),
            Err(_) => Err(Status::deadline_exceeded("client timeout")),
        }
    }
}

/// An open stream: where calls go and where replies come from.
///
/// The outgoing side is unbounded so that the task never waits to send
/// while replies wait to be read (with both sides' buffers full, the node
/// would wait for us to read and we for it to read). What it holds is
/// bounded by the callers, each of which waits for its answer.
struct Link {
    send: mpsc::UnboundedSender<pb::KvCalls>,
    replies: Streaming<pb::KvReplies>,
}

async fn run(
    mut kv: KvClient<Channel>,
    mut calls: mpsc::UnboundedReceiver<Outgoing>,
    connect_timeout: Duration,
) {
    let mut waiting: HashMap<u64, oneshot::Sender<Answer>> = HashMap::new();
    let mut next_id: u64 = 1;
    let mut link: Option<Link> = None;
    loop {
        tokio::select! {
            first = calls.recv() => {
                let Some(first) = first else { return };
                let mut batch = vec![first];
                let mut bytes = batch[0].op.encoded_len();
                while batch.len() < MAX_CALLS && bytes < MAX_BYTES {
                    match calls.try_recv() {
                        Ok(o) => {
                            bytes += o.op.encoded_len();
                            batch.push(o);
                        }
                        Err(_) => break,
                    }
                }
                if link.is_none() {
                    match open(&mut kv, connect_timeout).await {
                        Ok(l) => link = Some(l),
                        Err(status) => {
                            for o in batch {
                                let _ = o.reply.send(Err(status.clone()));
                            }
                            continue;
                        }
                    }
                }
                let mut msg = pb::KvCalls { calls: Vec::with_capacity(batch.len()) };
                for o in batch {
                    let id = next_id;
                    next_id += 1;
                    waiting.insert(id, o.reply);
                    let timeout_ms = o.timeout.as_millis().clamp(1, u128::from(u32::MAX)) as u32;
                    msg.calls.push(pb::KvCall { id, timeout_ms, op: Some(o.op) });
                }
                let sent = match &link {
                    Some(l) => l.send.send(msg).is_ok(),
                    None => false,
                };
                if !sent {
                    broken(&mut waiting, &mut link, "the stream to the node closed");
                }
            }
            r = async { link.as_mut().expect("guarded").replies.next().await }, if link.is_some() => {
                match r {
                    Some(Ok(msg)) => {
                        for r in msg.replies {
                            if let Some(tx) = waiting.remove(&r.id) {
                                let _ = tx.send(answer(r));
                            }
                        }
                    }
                    Some(Err(status)) => {
                        broken(&mut waiting, &mut link, &format!("the stream to the node broke: {}", status.message()));
                    }
                    None => broken(&mut waiting, &mut link, "the node ended the stream"),
                }
            }
        }
    }
}

async fn open(kv: &mut KvClient<Channel>, timeout: Duration) -> Result<Link, Status> {
    let (send, rx) = mpsc::unbounded_channel();
    match tokio::time::timeout(timeout, kv.stream(UnboundedReceiverStream::new(rx))).await {
        Ok(Ok(response)) => Ok(Link {
            send,
            replies: response.into_inner(),
        }),
        Ok(Err(status)) => Err(status),
        Err(_) => Err(Status::unavailable(format!(
            "no stream to the node within {} ms",
            timeout.as_millis()
        ))),
    }
}

/// The stream is gone: calls without a reply may or may not take effect.
fn broken(waiting: &mut HashMap<u64, oneshot::Sender<Answer>>, link: &mut Option<Link>, why: &str) {
    *link = None;
    for (_, tx) in waiting.drain() {
        let _ = tx.send(Err(Status::unavailable(format!("{why}; outcome unknown"))));
    }
}

fn answer(r: pb::KvReply) -> Answer {
    if r.code == 0 {
        r.response
            .ok_or_else(|| Status::internal("the node replied OK without a response"))
    } else {
        Err(Status::new(Code::from(r.code), r.message))
    }
}
