//! What the clients do: which keys they touch, which operations they issue,
//! and how workers are numbered as processes.
//!
//! - `keys`: a fixed number of active keys, each retired after a number of
//!   operations, so that every key's history stays small enough to check.
//! - `generator`: the next operation for the `register` and `append` workloads.
//! - `processes`: Jepsen's process numbering (a new number after an unknown outcome).

pub mod generator;
pub mod keys;
pub mod processes;

pub use generator::Generator;
pub use keys::KeyPool;
pub use processes::ProcessNumbers;
