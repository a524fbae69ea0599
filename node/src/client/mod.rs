//! Clients of one node's `Kv` and `Admin` services. They do not retry or
//! follow redirects: callers decide what an outcome means (the harness
//! records it; tests retry at the leader).
//!
//! Every call is one [`Request`] in and a [`Reply`] or a [`CallError`]
//! out, whichever API carries it:
//!
//! - [`NodeClient`] (`unary.rs`): one unary RPC per call; also the
//!   `Admin` status.
//! - [`StreamClient`] (`stream.rs`): the calls of many concurrent callers
//!   share one `Kv.Stream`.
//! - [`Conn`]: either, for callers that let the user pick ([`Api`]).
//! - `request.rs`: the request, the reply and the errors, and how they
//!   travel as protobuf.
//! - `members.rs`: membership changes ([`NodeClient::members`],
//!   [`NodeClient::change_members`]).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use node::client::{Api, Conn, Reply, Session};
//!
//! let conn = Conn::new(Api::Unary, "127.0.0.1:7001", "raftkv", Duration::from_millis(500))?;
//! // Update 1 of client 7: sent again after a lost answer, it is applied once.
//! let put = Session::new(7, 1).put("color", "blue");
//! match conn.call(put, Duration::from_secs(1)).await {
//!     Ok(Reply::Done { index, .. }) => println!("applied at {index}"),
//!     Ok(Reply::NotLeader { leader_addr, .. }) => println!("ask {leader_addr:?}"),
//!     Ok(Reply::Mismatch { .. }) => unreachable!("only a cas mismatches"),
//!     Err(e) if e.kind.is_refusal() => println!("refused: {e}"),
//!     Err(e) => println!("unknown outcome: {e}"),
//! }
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod members;
mod request;
mod stream;
mod unary;

pub use members::{MemberChange, MemberReply};
pub use proto::kv::{Member, StatusResponse};
pub use request::{CallError, ErrorKind, Reply, Request, Session};
pub use stream::StreamClient;
pub use unary::NodeClient;

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// An address that is not HOST:PORT.
#[derive(Debug, thiserror::Error)]
#[error("bad node address `{addr}`: {reason}")]
pub struct BadAddress {
    /// The address as given.
    pub addr: String,
    /// What is wrong with it.
    pub reason: String,
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
    /// Parses the name used on the command line: `unary` or `stream`.
    pub fn parse(s: &str) -> Result<Api, String> {
        match s {
            "unary" => Ok(Api::Unary),
            "stream" => Ok(Api::Stream),
            _ => Err(format!("unknown api {s:?}; expected unary or stream")),
        }
    }

    /// The name used on the command line and in reports.
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
    /// Unary calls (boxed: the clients differ much in size).
    Unary(Box<NodeClient>),
    /// Calls on a shared `Kv.Stream`.
    Stream(StreamClient),
}

impl Conn {
    /// A connection to `addr` (HOST:PORT); a stream's task runs on the
    /// current tokio runtime. Connects on first use.
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

    /// Sends `request` and waits for the answer at most `timeout`.
    pub async fn call(&self, request: Request, timeout: Duration) -> Result<Reply, CallError> {
        match self {
            Conn::Unary(c) => c.call(request, timeout).await,
            Conn::Stream(c) => c.call(request, timeout).await,
        }
    }
}
