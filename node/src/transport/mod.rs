//! gRPC: the only module that knows tonic.
//!
//! - `shared`: what every service shares (this node, its cluster, the way
//!   to the driver, and waiting for its answer).
//! - `raft_service`: what peers send (message batches, snapshot streams).
//! - `admin_service`: a node's state, for operators.
//! - `calls`: client requests into checked calls for the driver, and its
//!   answers into responses.
//! - `kv_service`: the client `Kv` service, unary calls.
//! - `kv_stream`: its batched stream (`Kv.Stream`).
//! - `peers`: outbound links, one task and channel per peer.
//! - `convert`: core messages ⇄ protobuf, with checks on what peers send.

pub mod admin_service;
pub mod calls;
pub mod convert;
pub mod kv_service;
pub mod kv_stream;
pub mod peers;
pub mod raft_service;
pub mod shared;

pub use peers::Peers;

/// The largest `Kv` message the node reads, far above the 1 MiB a value may
/// have: a call with a value too big is read whole and refused by the
/// state machine's checks (`INVALID_ARGUMENT`, naming the size and the
/// limit). Below gRPC's default of 4 MiB, tonic refused it as soon as the
/// length prefix arrived, while the client was still sending, and clients
/// saw the stream reset with no status. Above this, tonic still refuses
/// early (`OUT_OF_RANGE`); a node holds at most this much per call in flight.
pub const MAX_KV_MESSAGE: usize = 128 << 20;
