//! What can go wrong, each in one line that names what and where.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum NetlabError {
    /// Namespaces cannot run here; the reason names the missing tool,
    /// privilege or kernel feature (see [`crate::check`]).
    #[error("network namespaces unavailable: {0}")]
    Unavailable(String),
    #[error("enter_private_netns must run before any thread starts (the process has {0} threads)")]
    NotSingleThreaded(usize),
    #[error("unshare(CLONE_NEWNET) refused: {0}")]
    Unshare(std::io::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("`{command}` in {place} failed: {detail}")]
    Tool {
        command: String,
        place: String,
        detail: String,
    },
    #[error("node id {0:?} is given twice")]
    DuplicateNode(String),
    #[error("empty node id")]
    EmptyNodeId,
    #[error("a network holds 1 to {max} nodes, not {n}")]
    NodeCount { n: usize, max: usize },
    #[error("no node {0:?} in the network")]
    UnknownNode(String),
    #[error("no link {from} -> {to}: both must be distinct nodes of the network")]
    UnknownLink { from: String, to: String },
    #[error("invalid packet faults: {0}")]
    InvalidFaults(String),
}
