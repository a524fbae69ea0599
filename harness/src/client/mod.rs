//! Workload clients: each performs one history action against the cluster
//! and says what happened, as Jepsen would record it ([`Outcome`]):
//!
//! - ok: the operation took effect (or the read saw this value);
//! - fail: it certainly did not and will not take effect (a refusal before
//!   anything happened, a cas mismatch, any unsuccessful read);
//! - info: unknown (timeout, connection lost, node stopped mid-request).
//!
//! What a database's client must do is turn an action into a request,
//! send it, and sort the answer into those three; how it finds the node to
//! ask and when it retries is its own business.
//!
//! - `raftkv`: the client of our node ([`Client`]): a home node, not-leader
//!   redirects, retries in doubt under the same session.
//! - `values`: how the workloads' values are stored as bytes.

pub mod raftkv;
pub mod values;

pub use raftkv::Client;

use crate::history::Action;

/// What happened to one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Took effect; for reads, the action now carries the value read.
    Ok(Action),
    /// Did not and will not take effect.
    Fail {
        /// Why, as the history names it (`not-leader`, `mismatch`, ...).
        error: String,
        /// The action; a cas mismatch carries the value the node saw.
        action: Action,
    },
    /// Unknown: it may or may not take effect. Says why, as the history
    /// names it (`timeout`, `unavailable`, ...).
    Info(String),
}
