//! Outbound traffic: one long-lived gRPC channel and one task per peer, so a
//! dead, paused or partitioned peer only ever delays its own messages.
//!
//! Each task takes whatever messages queued up while its previous call was
//! in flight and sends them as one batch, under a deadline. A failed or timed
//! out batch is dropped (Raft retransmits) and reported so the core stops
//! pipelining to that peer.
//!
//! An InstallSnapshot does not go in a batch: the link streams the current
//! snapshot file in chunks of [`SNAPSHOT_CHUNK`] bytes over the
//! client-streaming `InstallSnapshot` RPC, in a task of its own so the
//! peer's other messages keep flowing, one transfer per peer at a time, and
//! reports the outcome to the driver ([`Event::SnapshotSent`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use proto::raft as pb;
use proto::raft::raft_client::RaftClient;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tonic::transport::{Channel, Endpoint};

use super::convert;
use crate::mailbox::{Event, Outbox};
use crate::storage::snapshot;
use raft::{Body, Message, NodeId, Term};

/// Largest number of messages put in one batch.
const MAX_BATCH: usize = 512;
/// Bytes of snapshot file per InstallSnapshot chunk: a multi-megabyte state
/// never travels as one giant message.
pub const SNAPSHOT_CHUNK: usize = 1 << 20;
/// After a failed transfer, wait this long before the leader may try again,
/// so a dead peer does not make it re-read the snapshot every heartbeat.
const SNAPSHOT_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The links to every peer: the driver's [`Outbox`]. Links are added as
/// members join ([`Outbox::reach`]); one is never removed (a removed
/// member gets nothing more, as the core sends it nothing).
pub struct Peers {
    me: NodeId,
    cluster_id: String,
    rpc_timeout: Duration,
    snapshot_path: PathBuf,
    mailbox: mpsc::Sender<Event>,
    runtime: tokio::runtime::Handle,
    senders: HashMap<NodeId, (String, UnboundedSender<Message>)>,
}

impl Peers {
    /// Starts one sender task per peer on the current tokio runtime.
    pub fn start(
        me: &NodeId,
        cluster_id: &str,
        peers: &[(NodeId, String)],
        rpc_timeout: Duration,
        snapshot_path: PathBuf,
        mailbox: mpsc::Sender<Event>,
    ) -> Peers {
        let mut links = Peers {
            me: me.clone(),
            cluster_id: cluster_id.to_string(),
            rpc_timeout,
            snapshot_path,
            mailbox,
            runtime: tokio::runtime::Handle::current(),
            senders: HashMap::new(),
        };
        for (id, addr) in peers {
            links.reach(id, addr);
        }
        links
    }
}

impl Outbox for Peers {
    fn send(&mut self, msg: Message) {
        if let Some((_, tx)) = self.senders.get(&msg.to) {
            let _ = tx.send(msg);
        }
    }

    fn reach(&mut self, peer: &NodeId, addr: &str) {
        if *peer == self.me || self.senders.get(peer).is_some_and(|(a, _)| a == addr) {
            return;
        }
        // Called from the driver thread: the channel needs the runtime.
        let _runtime = self.runtime.enter();
        let Some(channel) = channel(addr, self.rpc_timeout) else {
            tracing::warn!(%peer, addr, "not an address a link can use: {peer} is unreachable");
            return;
        };
        // A new address replaces the link (the old task ends with its channel).
        let (tx, rx) = unbounded_channel();
        let link = Link {
            me: self.me.clone(),
            peer: peer.clone(),
            cluster_id: self.cluster_id.clone(),
            client: RaftClient::new(channel),
            rpc_timeout: self.rpc_timeout,
            mailbox: self.mailbox.clone(),
            snapshot_path: self.snapshot_path.clone(),
            transferring: Arc::new(AtomicBool::new(false)),
            failed_transfers: Arc::new(AtomicU32::new(0)),
        };
        tokio::spawn(link.run(rx));
        self.senders.insert(peer.clone(), (addr.to_string(), tx));
    }
}

/// A lazily connected channel that reconnects by itself after failures;
/// `None` for an address that is no URI authority.
fn channel(addr: &str, timeout: Duration) -> Option<Channel> {
    let uri = format!("http://{addr}");
    let endpoint = Endpoint::from_shared(uri).ok()?;
    Some(
        endpoint
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(timeout.max(Duration::from_millis(500)))
            .connect_lazy(),
    )
}

struct Link {
    me: NodeId,
    peer: NodeId,
    cluster_id: String,
    client: RaftClient<Channel>,
    rpc_timeout: Duration,
    mailbox: mpsc::Sender<Event>,
    /// The snapshot file this node keeps (`DIR/snapshot`).
    snapshot_path: PathBuf,
    /// Set while a snapshot transfer to this peer is under way.
    transferring: Arc<AtomicBool>,
    /// Transfers failed in a row, so a peer that is down is not reported
    /// in the log every time the leader tries again.
    failed_transfers: Arc<AtomicU32>,
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
                    Body::InstallSnapshot(_) => {
                        // A transfer under way will report; the core asks
                        // again only after hearing of it (or timing out).
                        if !self.transferring.swap(true, Ordering::AcqRel) {
                            tokio::spawn(self.transfer(m.term));
                        }
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

impl Link {
    /// Streams the current snapshot file to the peer, then reports.
    fn transfer(&self, term: Term) -> impl Future<Output = ()> + Send + 'static {
        let mut client = self.client.clone();
        let header = ChunkHeader {
            cluster_id: self.cluster_id.clone(),
            from: self.me.0.clone(),
            to: self.peer.0.clone(),
            term,
        };
        let path = self.snapshot_path.clone();
        let peer = self.peer.clone();
        let mailbox = self.mailbox.clone();
        let transferring = self.transferring.clone();
        let failures = self.failed_transfers.clone();
        let rpc_timeout = self.rpc_timeout;
        async move {
            let result = stream_snapshot(&mut client, &header, &path, rpc_timeout).await;
            match &result {
                Ok(bytes) => {
                    failures.store(0, Ordering::Relaxed);
                    tracing::info!(%peer, bytes, "snapshot sent");
                }
                Err(e) => {
                    let n = failures.fetch_add(1, Ordering::Relaxed);
                    if n.is_multiple_of(20) {
                        tracing::warn!(%peer, failed_in_a_row = n + 1, "snapshot transfer failed: {e}");
                    }
                    tokio::time::sleep(SNAPSHOT_RETRY_PAUSE).await;
                }
            }
            transferring.store(false, Ordering::Release);
            let _ = mailbox.send(Event::SnapshotSent {
                peer,
                delivered: result.is_ok(),
            });
        }
    }
}

/// What every chunk of one transfer repeats.
struct ChunkHeader {
    cluster_id: String,
    from: String,
    to: String,
    /// The leader's term when it decided to send: the follower checks it.
    term: Term,
}

/// Reads and checks the snapshot file (it may be newer than the one the
/// core asked for, which is as good: the follower reports what it got) and
/// streams it. Returns the bytes sent.
async fn stream_snapshot(
    client: &mut RaftClient<Channel>,
    header: &ChunkHeader,
    path: &Path,
    rpc_timeout: Duration,
) -> Result<usize, String> {
    let owned = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || snapshot::read(&owned))
        .await
        .map_err(|e| format!("reading the snapshot: {e}"))?
        .map_err(|e| e.to_string())?;
    let snap = read.ok_or_else(|| format!("{} does not exist", path.display()))?;
    let file = snap.file().clone();
    let members: Vec<String> = snap
        .meta
        .membership
        .members()
        .iter()
        .map(|m| m.id.0.clone())
        .collect();
    let mut chunks = Vec::with_capacity(file.len() / SNAPSHOT_CHUNK + 1);
    let mut offset = 0;
    loop {
        let end = (offset + SNAPSHOT_CHUNK).min(file.len());
        chunks.push(pb::SnapshotChunk {
            cluster_id: header.cluster_id.clone(),
            from: header.from.clone(),
            to: header.to.clone(),
            term: header.term.0,
            snapshot_index: snap.meta.index.0,
            snapshot_term: snap.meta.term.0,
            offset: offset as u64,
            data: file.slice(offset..end),
            done: end == file.len(),
            members: members.clone(),
        });
        if end == file.len() {
            break;
        }
        offset = end;
    }
    // Generous: a deadline for the whole stream, growing with its size.
    let limit = rpc_timeout * 4 + Duration::from_secs(5 + (file.len() >> 20) as u64);
    let mut req = tonic::Request::new(tokio_stream::iter(chunks));
    req.set_timeout(limit);
    match tokio::time::timeout(limit, client.install_snapshot(req)).await {
        Ok(Ok(_)) => Ok(file.len()),
        Ok(Err(status)) => Err(format!("{}: {}", status.code(), status.message())),
        Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
    }
}
