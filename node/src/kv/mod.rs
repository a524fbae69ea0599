//! The replicated key-value state machine.
//!
//! - `command`: the log entry payload (a protobuf `Command`) and its checks.
//! - `state`: values and client sessions; applying a command is deterministic
//!   so every replica computes the same state and the same answers.
//! - `snapshot`: the state machine image written to and read from disk.

pub mod command;
pub mod snapshot;
pub mod state;

pub use command::{Command, CommandError, Op};
pub use state::{Answer, KvState, Outcome};
