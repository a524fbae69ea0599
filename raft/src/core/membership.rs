//! Membership changes (chapter 4 of the thesis) and leadership transfer
//! (§3.10).
//!
//! - One server at a time (§4.2): a change adds a learner, promotes a
//!   learner to voter, or removes a member; any two configurations one
//!   change apart have overlapping majorities.
//! - A configuration takes effect where it is appended, committed or not
//!   (§4.1); the log cuts it off again with a conflicting tail. So the
//!   leader counts a new voter the moment it appends the change, and a
//!   follower knows its own role from its own log.
//! - A leader appends a change only once an entry of its own term has
//!   committed, and only one change is ever uncommitted: the fix of the
//!   single-server bug Ongaro reported on raft-dev in 2015. Without the
//!   first rule a leader of term t+1 may append a change that conflicts
//!   with an uncommitted change of term t, and the two configurations need
//!   not overlap (`testdata/config_change_2015.txt`).
//! - Learners receive the log and never vote, count or campaign; one is
//!   promoted only when caught up ([`Config::promote_within`]).
//! - A node that lost its data comes back under a new incarnation and
//!   says so (`AppendResponse::rejoining`): the leader counts it nowhere
//!   until it has been removed and added again under that incarnation.
//! - Transfer: the leader stops taking proposals, brings the target up to
//!   date and sends it TimeoutNow; the target campaigns at once, and voters
//!   grant it their vote despite the leader lease. A leader whose own
//!   removal has committed hands over the same way and steps down.

use std::fmt;

use bytes::Bytes;

use super::{Raft, State};
use crate::progress::ProgressState;
use crate::{Body, Entry, EntryKind, LogIndex, Member, MemberRole, NodeId, Term};

/// One configuration change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfChange {
    /// Add a node that receives the log but does not vote.
    AddLearner {
        /// Its id.
        id: NodeId,
        /// Where it serves.
        addr: String,
    },
    /// Make a caught-up learner a voter.
    Promote {
        /// The learner.
        id: NodeId,
    },
    /// Remove a member, voter or learner (the leader itself included).
    Remove {
        /// The member.
        id: NodeId,
    },
}

/// Why a configuration change or a transfer was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeError {
    /// Only the leader changes the configuration.
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// The leader has not yet committed an entry of its own term: its log
    /// may still lack a change an earlier leader committed.
    TermNotCommitted,
    /// Another change is not yet committed.
    ChangeInFlight {
        /// Where it is in the log.
        index: LogIndex,
    },
    /// The leader is handing its leadership over.
    TransferInProgress {
        /// To whom.
        to: NodeId,
    },
    /// The node is already a member.
    AlreadyMember {
        /// The node.
        id: NodeId,
        /// What it is.
        role: MemberRole,
    },
    /// The node is not a member.
    UnknownMember {
        /// The node.
        id: NodeId,
    },
    /// Only a learner can be promoted.
    NotALearner {
        /// The voter.
        id: NodeId,
    },
    /// The learner's log is too far behind the leader's to promote it.
    NotCaughtUp {
        /// The learner.
        id: NodeId,
        /// Where its log is known to match the leader's.
        matched: LogIndex,
        /// The leader's last index.
        last: LogIndex,
    },
    /// Removing this voter would leave none.
    LastVoter {
        /// The voter.
        id: NodeId,
    },
    /// A transfer's target must be a voter that counts (not one waiting to
    /// be re-added).
    NotAVoter {
        /// The node.
        id: NodeId,
    },
    /// A transfer to the leader itself.
    AlreadyLeader,
    /// Removing this voter would leave a configuration whose majority
    /// needs voters that lost their data: nothing could commit again, not
    /// even their re-adding.
    WouldLoseQuorum {
        /// The voter to remove.
        id: NodeId,
        /// The voters waiting to be re-added.
        awaiting: Vec<NodeId>,
    },
}

impl fmt::Display for ChangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeError::NotLeader { leader: Some(l) } => write!(f, "not the leader; {l} is"),
            ChangeError::NotLeader { leader: None } => {
                write!(f, "not the leader, and no leader is known")
            }
            ChangeError::TermNotCommitted => write!(
                f,
                "the leader has not committed an entry of its term yet; try again shortly"
            ),
            ChangeError::ChangeInFlight { index } => write!(
                f,
                "a configuration change (index {index}) is not committed yet; one change at a time"
            ),
            ChangeError::TransferInProgress { to } => {
                write!(f, "leadership is being handed to {to}")
            }
            ChangeError::AlreadyMember { id, role } => {
                write!(f, "{id} is already a member ({})", role.as_str())
            }
            ChangeError::UnknownMember { id } => write!(f, "{id} is not a member"),
            ChangeError::NotALearner { id } => write!(f, "{id} is already a voter"),
            ChangeError::NotCaughtUp { id, matched, last } => write!(
                f,
                "{id} is not caught up: its log matches to index {matched}, the leader's ends at {last}"
            ),
            ChangeError::LastVoter { id } => {
                write!(f, "{id} is the last voter; a cluster needs one")
            }
            ChangeError::NotAVoter { id } => write!(
                f,
                "{id} is not a voter that counts (a learner, not a member, or waiting to be re-added)"
            ),
            ChangeError::AlreadyLeader => write!(f, "this node is already the leader"),
            ChangeError::WouldLoseQuorum { id, awaiting } => {
                let names: Vec<&str> = awaiting.iter().map(NodeId::as_str).collect();
                write!(
                    f,
                    "removing {id} would leave no majority able to commit: {} must be re-added first",
                    names.join(", ")
                )
            }
        }
    }
}

impl std::error::Error for ChangeError {}

/// What a leader knows of one member, for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberProgress {
    /// The member, as the configuration lists it.
    pub member: Member,
    /// Where its log is known to match the leader's (the leader: its last index).
    pub match_index: LogIndex,
    /// Within [`Config::promote_within`](crate::Config::promote_within)
    /// entries of the leader, and replicating.
    pub caught_up: bool,
    /// It lost its data and waits to be removed and added again.
    pub rejoining: bool,
    /// The incarnation its answers carry (0: none yet).
    pub incarnation: u64,
}

impl Raft {
    /// Appends a configuration change if this node leads, it has
    /// committed an entry of its term, and no other change is uncommitted.
    /// Like [`Raft::propose`], the position identifies the change: it took
    /// effect if that entry is applied there.
    pub fn propose_change(&mut self, change: ConfChange) -> Result<(LogIndex, Term), ChangeError> {
        self.check_can_change()?;
        let current = self.log.membership().clone();
        let next = match change {
            ConfChange::AddLearner { id, addr } => {
                if let Some(m) = current.get(&id) {
                    return Err(ChangeError::AlreadyMember { id, role: m.role });
                }
                current.with(Member {
                    id,
                    addr,
                    role: MemberRole::Learner,
                    incarnation: 0,
                })
            }
            ConfChange::Promote { id } => {
                let m = current
                    .get(&id)
                    .ok_or_else(|| ChangeError::UnknownMember { id: id.clone() })?;
                if m.role == MemberRole::Voter {
                    return Err(ChangeError::NotALearner { id });
                }
                let last = self.log.last_index();
                let pr = self.progress.get(&id);
                let matched = pr.map_or(LogIndex(0), |p| p.match_index);
                if !pr.is_some_and(|p| self.caught_up(p.match_index, p.state)) {
                    return Err(ChangeError::NotCaughtUp { id, matched, last });
                }
                // Name the incarnation that caught up: a node that joined
                // counts itself a voter only where it is named.
                let incarnation = pr.map_or(0, |p| p.incarnation);
                current.with(Member {
                    role: MemberRole::Voter,
                    incarnation,
                    ..m.clone()
                })
            }
            ConfChange::Remove { id } => {
                let m = current
                    .get(&id)
                    .ok_or_else(|| ChangeError::UnknownMember { id: id.clone() })?;
                if m.role == MemberRole::Voter && current.voter_count() == 1 {
                    return Err(ChangeError::LastVoter { id });
                }
                let next = current.without(&id);
                let voters = next.voters_ids();
                let counted = voters.iter().filter(|v| self.counts(v)).count();
                if counted < crate::quorum::majority(voters.len()) {
                    let awaiting = self.awaiting_readd();
                    return Err(ChangeError::WouldLoseQuorum { id, awaiting });
                }
                next
            }
        };
        let index = self.log.last_index().next();
        self.log.append(Entry {
            index,
            term: self.term,
            kind: EntryKind::Config,
            data: Bytes::from(next.encode()),
        });
        self.needs_broadcast = true;
        // §4.1: the new configuration is in force from here on.
        self.after_log_change();
        Ok((index, self.term))
    }

    fn check_can_change(&self) -> Result<(), ChangeError> {
        if self.state != State::Leader {
            return Err(ChangeError::NotLeader {
                leader: self.leader.clone(),
            });
        }
        if let Some(to) = &self.transferee {
            return Err(ChangeError::TransferInProgress { to: to.clone() });
        }
        if !self.committed_in_current_term() && !self.cfg.bugs.config_before_noop() {
            return Err(ChangeError::TermNotCommitted);
        }
        let index = self.log.config_index();
        if index > self.log.committed {
            return Err(ChangeError::ChangeInFlight { index });
        }
        Ok(())
    }

    fn caught_up(&self, matched: LogIndex, state: ProgressState) -> bool {
        state == ProgressState::Replicate
            && matched.0 + self.cfg.promote_within >= self.log.last_index().0
    }

    /// Hands leadership to voter `to` (§3.10): no more proposals here; once
    /// `to`'s log is as long as ours it gets TimeoutNow and campaigns at
    /// once. Given up after an election timeout without success.
    pub fn transfer_leadership(&mut self, to: &NodeId) -> Result<(), ChangeError> {
        if self.state != State::Leader {
            return Err(ChangeError::NotLeader {
                leader: self.leader.clone(),
            });
        }
        if *to == self.cfg.id {
            return Err(ChangeError::AlreadyLeader);
        }
        if let Some(t) = &self.transferee {
            return Err(ChangeError::TransferInProgress { to: t.clone() });
        }
        if !self.counts(to) {
            return Err(ChangeError::NotAVoter { id: to.clone() });
        }
        self.start_transfer(to.clone());
        Ok(())
    }

    fn start_transfer(&mut self, to: NodeId) {
        self.transferee = Some(to.clone());
        self.transfer_elapsed = 0;
        self.timeout_now_sent = false;
        self.maybe_send_timeout_now(&to);
        self.send_appends(&to);
    }

    /// Sends TimeoutNow to the transferee, once, when its log is as long as ours.
    pub(super) fn maybe_send_timeout_now(&mut self, peer: &NodeId) {
        if self.transferee.as_ref() != Some(peer) || self.timeout_now_sent {
            return;
        }
        if self.progress[peer].match_index == self.log.last_index() {
            self.timeout_now_sent = true;
            self.send(peer.clone(), Body::TimeoutNow);
        }
    }

    /// The leader's clock for a transfer: one election timeout, then give
    /// up (or, leaving the cluster, step down all the same).
    pub(super) fn tick_transfer(&mut self) {
        if self.transferee.is_none() {
            return;
        }
        self.transfer_elapsed += 1;
        if self.transfer_elapsed >= self.cfg.election_ticks {
            if self.leaving {
                self.become_follower(self.term, None);
            } else {
                self.transferee = None;
            }
        }
    }

    /// A leader that committed a configuration without itself hands over to
    /// the voter furthest along, and steps down (§4.2.2).
    pub(super) fn maybe_leave(&mut self) {
        if self.state != State::Leader
            || self.leaving
            || self.is_voter()
            || self.log.config_index() > self.log.committed
        {
            return;
        }
        self.leaving = true;
        let best = self
            .log
            .membership()
            .voters_ids()
            .into_iter()
            .filter(|v| self.counts(v))
            .max_by_key(|v| self.progress[v].match_index);
        match best {
            Some(to) => {
                self.transferee = None;
                self.start_transfer(to);
            }
            None => self.become_follower(self.term, None),
        }
    }

    /// TimeoutNow from the leader of our term: campaign now, without a
    /// pre-vote, if we are a voter.
    pub(super) fn handle_timeout_now(&mut self, from: NodeId) {
        if self.state == State::Leader || !self.is_voter() || self.leader.as_ref() != Some(&from) {
            return;
        }
        self.become_candidate(true);
    }

    /// Called after the log changed: if the configuration in force changed,
    /// the leader tracks exactly its members, and a candidate that is no
    /// longer a voter gives up.
    pub(super) fn after_log_change(&mut self) {
        if self.log.config_version() == self.seen_config_version {
            return;
        }
        self.seen_config_version = self.log.config_version();
        if *self.log.membership() == self.seen_membership {
            return;
        }
        let membership = self.log.membership().clone();
        self.seen_membership = membership.clone();
        self.membership_changed = true;
        match self.state {
            State::Leader => {
                let next = self.log.last_index().next();
                self.progress.retain(|id, _| membership.contains(id));
                for m in membership.members() {
                    if m.id != self.cfg.id && !self.progress.contains_key(&m.id) {
                        self.progress
                            .insert(m.id.clone(), crate::progress::Progress::new(next));
                    }
                }
                if self
                    .transferee
                    .as_ref()
                    .is_some_and(|t| !membership.is_voter(t))
                {
                    self.transferee = None;
                }
            }
            State::Candidate | State::PreCandidate if !self.is_voter() => {
                self.become_follower(self.term, None);
            }
            _ => {}
        }
    }

    /// Whether the leader counts `id` toward majorities: a voter of the
    /// configuration in force that did not say it lost its data (itself:
    /// if it is a voter).
    pub(super) fn counts(&self, id: &NodeId) -> bool {
        if *id == self.cfg.id {
            return self.is_voter();
        }
        self.log.membership().is_voter(id) && self.progress.get(id).is_some_and(|p| !p.rejoining)
    }

    /// Whether the voters counted for which `acked` holds are a majority of
    /// the configuration's voters.
    pub(super) fn quorum_of(&self, acked: impl Fn(&NodeId) -> bool) -> bool {
        let voters = self.log.membership().voters_ids();
        let yes = voters.iter().filter(|v| self.counts(v) && acked(v)).count();
        !voters.is_empty() && yes >= crate::quorum::majority(voters.len())
    }

    /// This node lost its data and is not a member under its new
    /// incarnation (see [`Config::joined`](crate::Config::joined)).
    pub(super) fn rejoining(&self) -> bool {
        self.cfg.joined && self.own_role().is_none()
    }

    /// Voters known to have lost their data: those whose answers say so
    /// (a leader), and this node if the configuration lists its id as a
    /// voter under another incarnation.
    pub(super) fn awaiting_readd(&self) -> Vec<NodeId> {
        let mut out: Vec<NodeId> = match self.state {
            State::Leader => self
                .log
                .membership()
                .voters_ids()
                .into_iter()
                .filter(|v| self.progress.get(v).is_some_and(|p| p.rejoining))
                .collect(),
            _ => Vec::new(),
        };
        if self.rejoining() && self.log.membership().is_voter(&self.cfg.id) {
            out.push(self.cfg.id.clone());
        }
        out
    }

    /// The leader's view of every member (empty unless leading).
    pub fn member_progress(&self) -> Vec<MemberProgress> {
        if self.state != State::Leader {
            return Vec::new();
        }
        self.log
            .membership()
            .members()
            .iter()
            .map(|m| match self.progress.get(&m.id) {
                Some(p) => MemberProgress {
                    member: m.clone(),
                    match_index: p.match_index,
                    caught_up: self.caught_up(p.match_index, p.state),
                    rejoining: p.rejoining,
                    incarnation: p.incarnation,
                },
                None => MemberProgress {
                    member: m.clone(),
                    match_index: self.log.last_index(),
                    caught_up: true,
                    rejoining: false,
                    incarnation: self.cfg.incarnation,
                },
            })
            .collect()
    }

    /// The voter this leader is handing over to, if any.
    pub fn transferee(&self) -> Option<&NodeId> {
        self.transferee.as_ref()
    }
}
