//! The Raft core: a deterministic state machine with no I/O.
//!
//! Time arrives as [`Raft::tick`], randomness from a seeded generator, and
//! messages in and out as values. What the caller must persist, send and apply
//! comes back as one [`Ready`] value.

pub mod types;

pub use types::*;
