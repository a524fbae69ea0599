//! Generated protobuf types and gRPC stubs.
//!
//! - [`raft`]: peer-to-peer Raft messages (one-way `Send`, streamed snapshots).
//! - [`kv`]: the client key-value API (`Kv`) and the `Admin` service.

#![allow(clippy::all, clippy::pedantic)]

pub mod raft {
    tonic::include_proto!("raft");
}

pub mod kv {
    tonic::include_proto!("kv");
}
