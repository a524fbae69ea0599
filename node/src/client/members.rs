//! Membership calls of the `Admin` service: one request in, a
//! [`MemberReply`] or a [`CallError`] out, as for the `Kv` calls.

use proto::kv as pb;

use super::request::CallError;

/// A membership change to ask of the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// Add `id` at `addr`: a learner, promoted once caught up unless `learner`.
    Add {
        /// The new member.
        id: String,
        /// Where it serves, HOST:PORT.
        addr: String,
        /// Stay a learner.
        learner: bool,
    },
    /// Remove a member.
    Remove(String),
    /// Make a caught-up learner a voter.
    Promote(String),
    /// Remove a member that lost its data and add it back.
    Readd(String),
    /// Hand leadership to a voter.
    Transfer(String),
}

/// What the node answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberReply {
    /// Done: the (last) configuration entry's index (0 for a listing or a
    /// transfer), the configuration in force, and the leader (after a
    /// transfer: the new one, if known).
    Done {
        /// The configuration entry's index.
        index: u64,
        /// Each member, with the leader's view of it.
        members: Vec<pb::Member>,
        /// The leader, if known.
        leader_id: Option<String>,
    },
    /// Not the leader; it names the leader when it knows one.
    NotLeader {
        /// The leader's id.
        leader_id: Option<String>,
        /// Its address.
        leader_addr: Option<String>,
    },
    /// Refused, and why: nothing changed (or as the reason says).
    Refused(String),
}

impl MemberReply {
    /// Reads a response; an unknown status is an error.
    pub(super) fn from_proto(r: pb::MemberResponse) -> Result<MemberReply, CallError> {
        let some = |s: String| (!s.is_empty()).then_some(s);
        match pb::MemberStatus::try_from(r.status) {
            Ok(pb::MemberStatus::Ok) => Ok(MemberReply::Done {
                index: r.index,
                members: r.members,
                leader_id: some(r.leader_id),
            }),
            Ok(pb::MemberStatus::NotLeader) => Ok(MemberReply::NotLeader {
                leader_id: some(r.leader_id),
                leader_addr: some(r.leader_addr),
            }),
            Ok(pb::MemberStatus::Refused) => Ok(MemberReply::Refused(r.error)),
            Err(_) => Err(CallError::from(tonic::Status::unknown(format!(
                "unknown membership status {}",
                r.status
            )))),
        }
    }
}
