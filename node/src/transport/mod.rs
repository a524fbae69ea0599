//! The only module that knows tonic.
//!
//! - `convert`: core messages ⇄ protobuf, with checks on what peers send.
//! - `peers`: outbound links, one task and channel per peer.
//! - `services`: the `Raft`, `Kv` and `Admin` gRPC services.

pub mod convert;
pub mod peers;
pub mod services;

pub use peers::{Outbox, Peers};
