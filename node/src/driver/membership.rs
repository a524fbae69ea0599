//! Membership requests in the driver. A change is one configuration
//! entry, or (an add that is not a learner's, a readd) a short plan of
//! them, carried out one after the other by the leader: each entry must
//! commit before the next is appended (the core refuses a second change in
//! flight), a promotion waits until the learner has caught up, and the
//! answer to one until the leader counts the new voter (it has answered
//! under the incarnation its entry names). The
//! plan lives in the leader's memory: if the leader changes, it is
//! abandoned and the operator asks again (each step is visible in the
//! configuration, so it is clear which were done).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use raft::{ChangeError, ConfChange, LogIndex, MemberProgress, MemberRole, NodeId, Role, Term};

use super::Driver;
use crate::mailbox::{MemberAnswer, MemberOp, MemberRefusal, MemberReply};

/// How long a plan may wait for a learner to catch up, or for a transfer.
const PLAN_LIMIT: Duration = Duration::from_secs(60);

/// A membership request under way.
pub(super) struct Plan {
    /// The changes still to make, in order.
    steps: VecDeque<ConfChange>,
    /// The entry of the step in flight: applied at this position or lost.
    pending: Option<(LogIndex, Term)>,
    /// The index of the last entry applied.
    done: LogIndex,
    /// A transfer waits for this node to stop leading instead.
    transfer: Option<NodeId>,
    /// A promoted member: done once the leader counts it (it has answered
    /// under the incarnation its entry names).
    promoted: Option<NodeId>,
    reply: Option<MemberReply>,
    /// What was asked, for messages.
    what: String,
    started: Instant,
}

impl Driver {
    /// An Admin membership request: answered now (a list, a refusal), or
    /// planned and answered when done.
    pub(super) fn handle_member(&mut self, op: MemberOp, reply: MemberReply) {
        if self.raft.role() != Role::Leader {
            let why = self.member_not_leader();
            let _ = reply.send(Err(why));
            return;
        }
        if let Some(plan) = &self.plan {
            let why = format!("another membership change is under way ({})", plan.what);
            let _ = reply.send(Err(MemberRefusal::Refused(why)));
            return;
        }
        let membership = self.raft.membership().clone();
        let what = format!("{op:?}");
        let (steps, transfer) = match op {
            MemberOp::List => {
                let _ = reply.send(Ok(self.member_answer(LogIndex(0))));
                return;
            }
            MemberOp::Add { id, addr, learner } => {
                let mut steps = VecDeque::from([ConfChange::AddLearner {
                    id: id.clone(),
                    addr,
                }]);
                if !learner {
                    steps.push_back(ConfChange::Promote { id });
                }
                (steps, None)
            }
            MemberOp::Remove { id } => (VecDeque::from([ConfChange::Remove { id }]), None),
            MemberOp::Promote { id } => (VecDeque::from([ConfChange::Promote { id }]), None),
            MemberOp::Readd { id } => {
                let Some(m) = membership.get(&id) else {
                    let why = ChangeError::UnknownMember { id }.to_string();
                    let _ = reply.send(Err(MemberRefusal::Refused(why)));
                    return;
                };
                let mut steps = VecDeque::from([
                    ConfChange::Remove { id: id.clone() },
                    ConfChange::AddLearner {
                        id: id.clone(),
                        addr: m.addr.clone(),
                    },
                ]);
                if m.role == MemberRole::Voter {
                    steps.push_back(ConfChange::Promote { id });
                }
                (steps, None)
            }
            MemberOp::Transfer { id } => {
                if let Err(e) = self.raft.transfer_leadership(&id) {
                    let _ = reply.send(Err(MemberRefusal::Refused(e.to_string())));
                    return;
                }
                (VecDeque::new(), Some(id))
            }
        };
        self.plan = Some(Plan {
            steps,
            pending: None,
            done: LogIndex(0),
            transfer,
            promoted: None,
            reply: Some(reply),
            what,
            started: Instant::now(),
        });
        self.advance_plan();
    }

    /// Moves the plan under way on, after each round: the step in flight
    /// applied (or lost), the next one proposed when the core allows.
    pub(super) fn advance_plan(&mut self) {
        let Some(mut plan) = self.plan.take() else {
            return;
        };
        let outcome = self.step_plan(&mut plan);
        match outcome {
            None => self.plan = Some(plan),
            Some(result) => {
                if let Some(reply) = plan.reply.take() {
                    let _ = reply.send(result);
                }
                if plan.steps.is_empty() && plan.pending.is_none() {
                    tracing::info!(node = %self.cfg.id, "membership: {} done", plan.what);
                }
            }
        }
    }

    /// One look at the plan: `None` while it goes on, else its outcome.
    fn step_plan(&mut self, plan: &mut Plan) -> Option<Result<MemberAnswer, MemberRefusal>> {
        if let Some(to) = &plan.transfer {
            if self.raft.role() != Role::Leader {
                return Some(Ok(MemberAnswer {
                    index: LogIndex(0),
                    members: Vec::new(),
                    leader: self.raft.leader().cloned(),
                }));
            }
            if self.raft.transferee().is_none() {
                let why = format!("{to} did not take over within an election timeout");
                return Some(Err(MemberRefusal::Refused(why)));
            }
            return None;
        }
        if let Some((index, term)) = plan.pending {
            if self.applied >= index {
                if self.raft.log().term(index).is_some_and(|t| t != term) {
                    let why = format!("the change at index {index} was lost to another leader");
                    return Some(Err(MemberRefusal::Refused(why)));
                }
                plan.pending = None;
                plan.done = index;
            } else if self.raft.role() != Role::Leader
                && !(self.raft.log().committed >= index
                    && self.raft.log().term(index) == Some(term))
            {
                // (A leader that removed itself steps down once the change
                // commits, maybe before applying it: committed, it is done.)
                let why = format!(
                    "leadership was lost before the change at index {index} committed: it may \
                     or may not take effect (list the members to see)"
                );
                return Some(Err(MemberRefusal::Unknown(why)));
            } else {
                return None;
            }
        }
        let leads = self.raft.role() == Role::Leader;
        let Some(next) = plan.steps.front().cloned() else {
            // Done; a promotion once the leader counts the member (or it
            // no longer leads, or waited long enough: the answer says).
            let counted = plan.promoted.as_ref().is_none_or(|id| {
                let progress = self.raft.member_progress();
                progress.iter().any(|p| p.member.id == *id && !p.rejoining)
            });
            if counted || !leads || plan.started.elapsed() > PLAN_LIMIT {
                return Some(Ok(self.member_answer(plan.done)));
            }
            return None;
        };
        if !leads {
            return Some(Err(self.member_not_leader()));
        }
        let (committed, previous) = (self.raft.log().committed, self.raft.log().config_index());
        match self.raft.propose_change(next.clone()) {
            Ok(at) => {
                self.events.change(at.0, at.1, committed, previous);
                plan.steps.pop_front();
                plan.pending = Some(at);
                if let ConfChange::Promote { id } = next {
                    plan.promoted = Some(id);
                }
                None
            }
            // The core will allow it soon: the previous change commits,
            // the new leader's no-op commits, the learner catches up.
            Err(ChangeError::TermNotCommitted)
            | Err(ChangeError::ChangeInFlight { .. })
            | Err(ChangeError::NotCaughtUp { .. })
                if plan.started.elapsed() < PLAN_LIMIT =>
            {
                None
            }
            Err(e) => {
                let done = if plan.done > LogIndex(0) {
                    format!(" (steps up to index {} were done)", plan.done)
                } else {
                    String::new()
                };
                Some(Err(MemberRefusal::Refused(format!("{e}{done}"))))
            }
        }
    }

    /// The configuration in force, with the leader's view of each member
    /// (none when this node no longer leads: it removed itself).
    fn member_answer(&self, index: LogIndex) -> MemberAnswer {
        let mut members = self.raft.member_progress();
        if members.is_empty() {
            members = self
                .raft
                .membership()
                .members()
                .iter()
                .map(|m| MemberProgress {
                    member: m.clone(),
                    match_index: LogIndex(0),
                    caught_up: false,
                    rejoining: false,
                    incarnation: m.incarnation,
                })
                .collect();
        }
        MemberAnswer {
            index,
            members,
            leader: self.raft.leader().cloned(),
        }
    }

    fn member_not_leader(&self) -> MemberRefusal {
        let leader = self.raft.leader().cloned();
        let addr = leader
            .as_ref()
            .and_then(|l| self.cfg.peer_addr(l, self.raft.membership()))
            .map(str::to_string);
        MemberRefusal::NotLeader { leader, addr }
    }
}
