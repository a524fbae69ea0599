//! The only module that knows tonic.
//!
//! - `convert`: core messages ⇄ protobuf, with checks on what peers send.
//! - `peers`: outbound links, one task and channel per peer.
//! - `services`: the `Raft` and `Admin` gRPC services, and what every
//!   service shares.
//! - `kv_service`: the client `Kv` service, unary calls.
//! - `kv_stream`: its batched stream (`Kv.Stream`).

pub mod convert;
pub mod kv_service;
pub mod kv_stream;
pub mod peers;
pub mod services;

pub use peers::{Outbox, Peers};
