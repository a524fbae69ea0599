//! Membership requests of the Admin service, and the driver's answers.

use raft::{LogIndex, MemberProgress, NodeId};
use tokio::sync::oneshot;

/// What an operator asks of the cluster's membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberOp {
    /// The configuration, with the leader's view of each member.
    List,
    /// Add a learner; unless `learner`, promote it once caught up.
    Add {
        /// The new member.
        id: NodeId,
        /// Where it serves.
        addr: String,
        /// Stay a learner.
        learner: bool,
    },
    /// Remove a member (the leader too: it hands over and steps down).
    Remove {
        /// The member.
        id: NodeId,
    },
    /// Make a caught-up learner a voter.
    Promote {
        /// The learner.
        id: NodeId,
    },
    /// Remove a member that lost its data and add it back (see the proto).
    Readd {
        /// The member.
        id: NodeId,
    },
    /// Hand leadership to a voter.
    Transfer {
        /// The voter.
        id: NodeId,
    },
}

/// A membership request done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberAnswer {
    /// The index of the (last) configuration entry of the change; 0 for a
    /// list or a transfer.
    pub index: LogIndex,
    /// The configuration in force on the leader, each member with the
    /// leader's view of it (empty after a transfer: this node no longer leads).
    pub members: Vec<MemberProgress>,
    /// The leader after a transfer, if known.
    pub leader: Option<NodeId>,
}

/// Why a membership request was not done. For `NotLeader` and `Refused`
/// nothing changed, except where the message says which steps of a readd
/// or add were done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberRefusal {
    /// This node does not lead.
    NotLeader {
        /// The leader it knows of.
        leader: Option<NodeId>,
        /// Its client address, if known.
        addr: Option<String>,
    },
    /// Refused, and why.
    Refused(String),
    /// Not known to have taken effect nor not to: why.
    Unknown(String),
}

/// Where a membership request's outcome goes.
pub type MemberReply = oneshot::Sender<Result<MemberAnswer, MemberRefusal>>;
