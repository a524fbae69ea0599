//! The Raft core: a deterministic state machine with no I/O.
//!
//! Time arrives as [`Raft::tick`], randomness from a seeded generator, and
//! messages in and out as values. What the caller must persist, send and apply
//! comes back as one [`Ready`] value.
//!
//! - `types`: terms, indexes, entries, hard state.
//! - `message`: what cores say to each other.
//! - `log`: the in-memory log and its durable/committed/applied marks.
//! - `progress`: the leader's view of each follower and flow control.
//! - `quorum`: majority arithmetic.
//! - `ready`: the output contract and its ordering rules.
//! - `core`: the state machine itself.
//! - `rng`: the seeded generator for election timeouts.

mod core;
pub mod log;
mod message;
pub mod progress;
pub mod quorum;
mod ready;
mod rng;
pub mod types;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use self::core::{Config, NotLeader, Raft, SeededBugs, Status};
pub use message::{Body, Message};
pub use ready::{ReadState, Ready, Role, RoleChange, SnapshotInstall};
pub use rng::Rng;
pub use types::*;
