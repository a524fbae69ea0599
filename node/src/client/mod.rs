//! Thin clients for one node's `Kv` and `Admin` services. They do not retry
//! or follow redirects: callers decide what an outcome means (the harness
//! records it; tests retry at the leader).
//!
//! - [`NodeClient`]: one unary RPC per call.
//! - [`StreamClient`]: calls of many concurrent callers share one
//!   `Kv.Stream` (see `stream.rs`).
//! - [`Conn`]: either, for callers that let the user pick ([`Api`]).

mod stream;

pub use stream::StreamClient;

use std::time::Duration;

use bytes::Bytes;
use proto::kv as pb;
use proto::kv::admin_client::AdminClient;
use proto::kv::kv_client::KvClient;
use tonic::transport::{Channel, Endpoint};

pub use proto::kv::{KvResponse, StatusResponse};

#[derive(Clone)]
pub struct NodeClient {
    cluster_id: String,
    kv: KvClient<Channel>,
    admin: AdminClient<Channel>,
}

#[derive(Debug, thiserror::Error)]
#[error("bad node address `{addr}`: {reason}")]
pub struct BadAddress {
    pub addr: String,
    pub reason: String,
}

impl NodeClient {
    /// A client for the node at `addr` (HOST:PORT). Connects on first use.
    pub fn new(
        addr: &str,
        cluster_id: &str,
        connect_timeout: Duration,
    ) -> Result<NodeClient, BadAddress> {
        let channel = channel(addr, connect_timeout)?;
        Ok(NodeClient {
            cluster_id: cluster_id.to_string(),
            kv: KvClient::new(channel.clone()),
            admin: AdminClient::new(channel),
        })
    }

    fn req<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(timeout);
        r
    }

    /// Bounds the whole call, connection set-up included, by `timeout`.
    async fn bounded<T>(
        timeout: Duration,
        fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r.map(tonic::Response::into_inner),
            Err(_) => Err(tonic::Status::deadline_exceeded("client timeout")),
        }
    }

    pub async fn get(&mut self, key: &str, timeout: Duration) -> Result<KvResponse, tonic::Status> {
        let msg = request::get(&self.cluster_id, key);
        Self::bounded(timeout, self.kv.get(Self::req(msg, timeout))).await
    }

    pub async fn put(
        &mut self,
        key: &str,
        value: Bytes,
        session: (u64, u64),
        timeout: Duration,
    ) -> Result<KvResponse, tonic::Status> {
        let msg = request::put(&self.cluster_id, key, value, session);
        Self::bounded(timeout, self.kv.put(Self::req(msg, timeout))).await
    }

    pub async fn cas(
        &mut self,
        key: &str,
        expected: Option<Bytes>,
        new: Bytes,
        session: (u64, u64),
        timeout: Duration,
    ) -> Result<KvResponse, tonic::Status> {
        let msg = request::cas(&self.cluster_id, key, expected, new, session);
        Self::bounded(timeout, self.kv.cas(Self::req(msg, timeout))).await
    }

    pub async fn append(
        &mut self,
        key: &str,
        suffix: Bytes,
        session: (u64, u64),
        timeout: Duration,
    ) -> Result<KvResponse, tonic::Status> {
        let msg = request::append(&self.cluster_id, key, suffix, session);
        Self::bounded(timeout, self.kv.append(Self::req(msg, timeout))).await
    }

    pub async fn status(&mut self, timeout: Duration) -> Result<StatusResponse, tonic::Status> {
        let msg = pb::StatusRequest {
            cluster_id: self.cluster_id.clone(),
        };
        Self::bounded(timeout, self.admin.status(Self::req(msg, timeout))).await
    }
}

/// The requests both clients send.
mod request {
    use bytes::Bytes;
    use proto::kv as pb;

    pub fn get(cluster_id: &str, key: &str) -> pb::GetRequest {
        pb::GetRequest {
            cluster_id: cluster_id.to_string(),
            key: key.to_string(),
        }
    }

    pub fn put(cluster_id: &str, key: &str, value: Bytes, session: (u64, u64)) -> pb::PutRequest {
        pb::PutRequest {
            cluster_id: cluster_id.to_string(),
            key: key.to_string(),
            value,
            client_id: session.0,
            seq: session.1,
        }
    }

    pub fn cas(
        cluster_id: &str,
        key: &str,
        expected: Option<Bytes>,
        new: Bytes,
        session: (u64, u64),
    ) -> pb::CasRequest {
        pb::CasRequest {
            cluster_id: cluster_id.to_string(),
            key: key.to_string(),
            expected,
            new,
            client_id: session.0,
            seq: session.1,
        }
    }

    pub fn append(
        cluster_id: &str,
        key: &str,
        suffix: Bytes,
        session: (u64, u64),
    ) -> pb::AppendRequest {
        pb::AppendRequest {
            cluster_id: cluster_id.to_string(),
            key: key.to_string(),
            suffix,
            client_id: session.0,
            seq: session.1,
        }
    }
}

/// A channel to `addr` that connects on first use.
fn channel(addr: &str, connect_timeout: Duration) -> Result<Channel, BadAddress> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| BadAddress {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

/// Which of the node's client APIs to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// One unary RPC per call.
    Unary,
    /// Calls of everyone sharing the connection go together on `Kv.Stream`.
    Stream,
}

impl Api {
    pub fn parse(s: &str) -> Result<Api, String> {
        match s {
            "unary" => Ok(Api::Unary),
            "stream" => Ok(Api::Stream),
            _ => Err(format!("unknown api {s:?}; expected unary or stream")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Api::Unary => "unary",
            Api::Stream => "stream",
        }
    }
}

/// A connection to one node over either API; clones share it.
#[derive(Clone)]
pub enum Conn {
    Unary(Box<NodeClient>),
    Stream(StreamClient),
}

impl Conn {
    /// A connection to `addr` (HOST:PORT); a stream's task runs on the
    /// current tokio runtime.
    pub fn new(
        api: Api,
        addr: &str,
        cluster_id: &str,
        connect_timeout: Duration,
    ) -> Result<Conn, BadAddress> {
        Ok(match api {
            Api::Unary => Conn::Unary(Box::new(NodeClient::new(
                addr,
                cluster_id,
                connect_timeout,
            )?)),
            Api::Stream => Conn::Stream(StreamClient::new(addr, cluster_id, connect_timeout)?),
        })
    }

    pub async fn get(&mut self, key: &str, timeout: Duration) -> Result<KvResponse, tonic::Status> {
        match self {
            Conn::Unary(c) => c.get(key, timeout).await,
            Conn::Stream(c) => c.get(key, timeout).await,
        }
    }

    pub async fn put(
        &mut self,
        key: &str,
        value: Bytes,
        session: (u64, u64),
        timeout: Duration,
    ) -> Result<KvResponse, tonic::Status> {
        match self {
            Conn::Unary(c) => c.put(key, value, session, timeout).await,
            Conn::Stream(c) => c.put(key, value, session, timeout).await,
        }
    }

    pub async fn cas(
        &mut self,
        key: &str,
        expected: Option<Bytes>,
        new: Bytes,
        session: (u64, u64),
        timeout: Duration,
    ) -> Result<KvResponse, tonic::Status> {
        match self {
            Conn::Unary(c) => c.cas(key, expected, new, session, timeout).await,
            Conn::Stream(c) => c.cas(key, expected, new, session, timeout).await,
        }
    }

    pub async fn append(
        &mut self,
        key: &str,
        suffix: Bytes,
        session: (u64, u64),
        timeout: Duration,
    ) -> Result<KvResponse, tonic::Status> {
        match self {
            Conn::Unary(c) => c.append(key, suffix, session, timeout).await,
            Conn::Stream(c) => c.append(key, suffix, session, timeout).await,
        }
    }
}

/// Whether a response is a definite "not the leader" refusal.
pub fn is_not_leader(r: &KvResponse) -> bool {
    r.status == pb::Status::NotLeader as i32
}
