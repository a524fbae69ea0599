//! Outbound traffic: one long-lived gRPC channel and one task per peer, so a
//! dead, paused or partitioned peer only ever delays its own messages.
//!
//! Each task takes whatever messages queued up while its previous call was
//! in flight and sends them as one batch, under a deadline. A failed or timed
//! out batch is dropped (Raft retransmits) and reported so the core stops
//! pipelining to that peer.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use proto::raft as pb;
use proto::raft::raft_client::RaftClient;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tonic::transport::{Channel, Endpoint};

use super::convert;
use crate::driver::Event;
use crate::raft::{Body, Message, NodeId};

/// Largest number of messages put in one batch.
const MAX_BATCH: usize = 512;

/// Where the driver hands messages for other nodes.
pub trait Outbox: Send {
    fn send(&mut self, msg: Message);
}

pub struct Peers {
    senders: HashMap<NodeId, UnboundedSender<Message>>,
}

impl Peers {
    /// Starts one sender task per peer on the current tokio runtime.
    pub fn start(
        me: &NodeId,
        cluster_id: &str,
        peers: &[(NodeId, String)],
        rpc_timeout: Duration,
        mailbox: mpsc::Sender<Event>,
    ) -> Peers {
        let mut senders = HashMap::new();
        for (id, addr) in peers {
            let (tx, rx) = unbounded_channel();
            let link = Link {
                me: me.clone(),
                peer: id.clone(),
                cluster_id: cluster_id.to_string(),
                client: RaftClient::new(channel(addr, rpc_timeout)),
                rpc_timeout,
                mailbox: mailbox.clone(),
            };
            tokio::spawn(link.run(rx));
            senders.insert(id.clone(), tx);
        }
        Peers { senders }
    }
}

impl Outbox for Peers {
    fn send(&mut self, msg: Message) {
        if let Some(tx) = self.senders.get(&msg.to) {
            let _ = tx.send(msg);
        }
    }
}

/// A lazily connected channel that reconnects by itself after failures.
fn channel(addr: &str, timeout: Duration) -> Channel {
    let uri = format!("http://{addr}");
    Endpoint::from_shared(uri)
        .expect("peer addresses are validated as HOST:PORT")
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(timeout.max(Duration::from_millis(500)))
        .connect_lazy()
}

struct Link {
    me: NodeId,
    peer: NodeId,
    cluster_id: String,
    client: RaftClient<Channel>,
    rpc_timeout: Duration,
    mailbox: mpsc::Sender<Event>,
}

impl Link {
    async fn run(mut self, mut rx: UnboundedReceiver<Message>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let mut messages = Vec::with_capacity(batch.len());
            for m in &batch {
                match &m.body {
                    Body::InstallSnapshot { .. } => {
                        // Snapshots stream on their own; until a node compacts
                        // there is nothing to stream, so report it as undelivered.
                        let _ = self.mailbox.send(Event::SnapshotSent {
                            peer: self.peer.clone(),
                            delivered: false,
                        });
                    }
                    _ => messages.extend(convert::to_proto(m)),
                }
            }
            if messages.is_empty() {
                continue;
            }
            let mut req = tonic::Request::new(pb::MessageBatch {
                cluster_id: self.cluster_id.clone(),
                from: self.me.0.clone(),
                to: self.peer.0.clone(),
                messages,
            });
            req.set_timeout(self.rpc_timeout);
            let ok = matches!(
                tokio::time::timeout(self.rpc_timeout, self.client.send(req)).await,
                Ok(Ok(_))
            );
            if !ok {
                let _ = self.mailbox.send(Event::Unreachable(self.peer.clone()));
            }
        }
    }
}
