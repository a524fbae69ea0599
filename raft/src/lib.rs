//! The Raft consensus algorithm (Ongaro and Ousterhout, "In Search of an
//! Understandable Consensus Algorithm", and Ongaro's thesis) as a
//! deterministic state machine: no I/O, no clock, no threads. This crate
//! depends on `bytes` alone, so the compiler holds it to that.
//!
//! Time arrives as [`Raft::tick`], randomness from a seeded [`Rng`], and
//! messages in and out as values. What the caller must persist, send and
//! apply comes back as one [`Ready`] value, whose fields say in which order.
//!
//! - `types`: terms, indexes, entries, hard state.
//! - `message`: what cores say to each other, one type per RPC.
//! - `config`: a core's settings.
//! - `membership`: configurations of voters and learners, and their encoding.
//! - `core`: the state machine itself, by topic: election, replication,
//!   snapshots, ReadIndex, membership changes and leadership transfer.
//! - `log`: the in-memory log and its durable/committed/applied marks.
//! - `progress`: the leader's view of each follower and flow control.
//! - `quorum`: majority arithmetic.
//! - `ready`: the output contract and its ordering rules.
//!
//! Tests: the simulator (`sim`, a cluster over a lossy network, checking
//! safety at every step), the fault sweeps over thousands of seeds, and
//! scripted interactions with golden output in `testdata/` (see
//! `tests/script`).

#![deny(missing_docs)]

mod config;
mod core;
mod log;
mod membership;
mod message;
mod progress;
mod quorum;
mod ready;
mod types;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use config::{Config, SeededBugs};
pub use core::{ChangeError, ConfChange, MemberProgress, NotLeader, Raft, Status};
pub use log::RaftLog;
pub use membership::{Member, MemberRole, Membership};
pub use message::{
    AppendRequest, AppendResponse, Body, Message, SnapshotResponse, VoteRequest, VoteResponse,
};
pub use ready::{ReadState, Ready, Role, RoleChange, SnapshotInstall};
/// The seeded generator behind election timeouts (the workspace's one, from
/// the `splitmix` crate).
pub use splitmix::Rng;
pub use types::{Entry, EntryKind, HardState, LogIndex, NodeId, SnapshotMeta, Term};
