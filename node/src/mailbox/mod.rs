//! What the transport and the driver hand each other: the driver's inbox
//! ([`Event`], and [`ReadQueue`] for reads), its answers to clients
//! ([`replies`]), and its outbox to peers ([`Outbox`]). The transport and the
//! driver both depend on this module, never on each other.
//!
//! - [`replies`]: answers to clients, and the task that delivers them.
//! - [`reads`]: the queue reads take to the driver.
//! - [`members`]: membership requests and their answers.

pub mod members;
pub mod reads;
pub mod replies;

use bytes::Bytes;
use raft::{Message, NodeId, Status};
use tokio::sync::oneshot;

use crate::kv::KvState;
use crate::storage::Snapshot;

pub use members::{MemberAnswer, MemberOp, MemberRefusal, MemberReply};
pub use reads::ReadQueue;
pub use replies::{ReadReply, Refusal, Replier, Reply, WriteReply};

/// Everything the driver is told, in the order it arrives.
pub enum Event {
    /// Messages from a peer, as one batch came in.
    Peers(Vec<Message>),
    /// A batch to this peer could not be delivered.
    Unreachable(NodeId),
    /// A snapshot transfer to this peer ended.
    SnapshotSent {
        /// The peer it went to.
        peer: NodeId,
        /// Whether the peer acknowledged all of it.
        delivered: bool,
    },
    /// A leader streamed in a snapshot, already checked and decoded: `msg`
    /// is its InstallSnapshot for the core, which decides whether `state`
    /// replaces the state machine.
    SnapshotReceived {
        /// The InstallSnapshot message, for the core.
        msg: Message,
        /// The file as received, to keep if the core accepts it.
        snapshot: Snapshot,
        /// Its image, decoded.
        state: Box<KvState>,
    },
    /// A client's write: a checked command in its log encoding
    /// ([`Command::encode`](crate::kv::Command::encode)), and where to answer.
    Propose {
        /// The log entry's data.
        command: Bytes,
        /// Where the outcome goes.
        reply: WriteReply,
    },
    /// Writes that arrived together (a batch of a client stream).
    ProposeMany(Vec<(Bytes, WriteReply)>),
    /// Reads were put in the [`ReadQueue`].
    ReadsQueued,
    /// The Admin service asks for the node's state.
    Status {
        /// Where the answer goes.
        reply: oneshot::Sender<NodeStatus>,
    },
    /// The Admin service asks for a membership change or listing.
    Member {
        /// What to do.
        op: MemberOp,
        /// Where the outcome goes.
        reply: MemberReply,
    },
    /// The Admin service asks for this replica's own applied state.
    LocalDump {
        /// Where the answer goes.
        reply: oneshot::Sender<LocalState>,
    },
    /// Stop after this round.
    Shutdown,
}

/// This replica's applied state, as `Admin.LocalDump` reports it.
pub struct LocalState {
    /// The last index applied.
    pub applied: raft::LogIndex,
    /// The commit index the core knows.
    pub commit: raft::LogIndex,
    /// The current term.
    pub term: raft::Term,
    /// The state's digest.
    pub digest: crate::kv::StateDigest,
    /// Every key holding a value, sorted.
    pub values: Vec<(String, Bytes)>,
}

/// A node's state, as the Admin service reports it.
pub struct NodeStatus {
    /// The core's view.
    pub raft: Status,
    /// The cluster this node belongs to.
    pub cluster_id: String,
    /// How it came into its cluster (founder, joined).
    pub standing: &'static str,
}

/// Where the driver hands messages for other nodes.
pub trait Outbox: Send {
    /// Sends `msg` to `msg.to`, or drops it: Raft retransmits what matters.
    fn send(&mut self, msg: Message);

    /// From now on `peer` is reached at `addr` (a member added, or moved).
    fn reach(&mut self, peer: &NodeId, addr: &str);
}
