//! The replicated key-value state machine.
//!
//! - `command`: the log entry payload (a protobuf `Command`) and its checks.
//! - `state`: values and client sessions; applying a command is deterministic
//!   so every replica computes the same state and the same answers.
//! - `snapshot`: the state machine image written to and read from disk.
//! - `digest`: hashes of the state, for comparing replicas from outside.

pub mod command;
pub mod digest;
pub mod snapshot;
pub mod state;

pub use command::{Command, CommandError, Op};
pub use digest::StateDigest;
pub use state::{Answer, KvState, Outcome};

/// Shorthands for the state machine's unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use bytes::Bytes;

    use super::{Command, Op};

    pub fn cmd(client_id: u64, seq: u64, key: &str, op: Op) -> Command {
        Command {
            client_id,
            seq,
            key: key.into(),
            op,
        }
    }

    pub fn b(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }
}
