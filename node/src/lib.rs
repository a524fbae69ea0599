//! A Raft key-value node.
//!
//! - [`raft`]: the deterministic, I/O-free Raft core.
//! - [`storage`]: the durable log and hard state (files, fsync, recovery).

pub mod raft;
pub mod storage;
