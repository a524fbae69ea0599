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
