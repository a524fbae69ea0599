//! Leader election (§5.2): the election timer, campaigns with and without
//! pre-vote (§9.6 of the thesis), RequestVote on both ends, and the role
//! changes.
//!
//! Every rule for granting a vote is in [`Raft::handle_vote_request`], in
//! the order of Figure 2 (and of "Building a Raft, part 3", which walks
//! through them): refuse an older term; step down for a newer one; vote
//! once per term; and only for a log at least as up-to-date as ours. The
//! leader lease of check-quorum and the pre-vote are additions, each where
//! it takes effect; so is membership: a candidate asks and counts only the
//! voters of its own configuration, only a voter of its own configuration
//! campaigns, and a node that lost its data votes only for a candidate
//! that names its new incarnation (rule 5). A node votes whatever its own
//! configuration says of it (§4.1): a learner just promoted may not have
//! the entry yet, and the candidate's configuration is what counts.

use bytes::Bytes;

use super::{Raft, State};
use crate::progress::Progress;
use crate::quorum::{self, VoteResult};
use crate::ready::RoleChange;
use crate::{Body, Entry, EntryKind, Message, NodeId, Term, VoteRequest, VoteResponse};

impl Raft {
    /// Starts an election now, as the election timer does when it fires
    /// (with a pre-vote first if configured). A leader stays leader; a node
    /// that is not a voter (a learner, a node waiting to be re-added, one
    /// outside the configuration) never campaigns.
    pub fn campaign(&mut self) {
        match self.state {
            State::Leader => {}
            _ if !self.is_voter() => self.reset_election_timer(),
            _ if self.cfg.pre_vote => self.become_pre_candidate(),
            _ => self.become_candidate(false),
        }
    }

    /// RequestVote, the voter's side (Figure 2), for a real vote and for a
    /// pre-vote: every rule about granting one is here.
    pub(super) fn handle_vote_request(&mut self, from: NodeId, term: Term, req: VoteRequest) {
        let VoteRequest {
            last_log_index,
            last_log_term,
            pre_vote,
            transfer,
            incarnation,
        } = req;

        // 1. Reply false if term < currentTerm: the candidate is behind the
        //    cluster. The reply carries our term, so it steps down.
        if term < self.term {
            self.reply_vote(from, false, pre_vote, self.term);
            return;
        }

        // The leader lease (check-quorum): while we hear from a leader, a
        // candidate can only disrupt it. Its request of a newer term is
        // ignored, its term not even adopted; a pre-vote is refused below.
        // Unless the leader itself sent the candidate (TimeoutNow, §3.10).
        let in_lease = self.in_lease() && !transfer;

        // 2. A newer term: become a follower in it, which forgets the vote
        //    of the old term. Not for a pre-vote, which changes nothing here.
        if term > self.term && !pre_vote {
            if in_lease {
                return;
            }
            self.become_follower(term, None);
        }

        // 3. Vote once per term: only if we have not voted in this term, or
        //    voted for this very candidate (its request was retried), and
        //    know of no leader of it.
        let free = self.voted_for.as_ref().is_none_or(|v| *v == from) && self.leader.is_none();

        // 4. Only for a log at least as up-to-date as ours (§5.4.1): the
        //    later last term wins; with the same last term, the longer log.
        let up_to_date = (last_log_term, last_log_index)
            >= (self.log.last_term(), self.log.last_index())
            || self.cfg.bugs.vote_any_log();

        // 5. A node that joined with an empty disk votes only as the
        //    incarnation the candidate counts: never in place of the one
        //    that lost its data (which may have voted in this very term).
        let voter = !self.cfg.joined || incarnation == self.cfg.incarnation;

        if pre_vote {
            // Granted if the real election of the next term could be won
            // here: the candidate's term is ahead of ours, its log is up to
            // date, and no leader is heard from. Rule 3 waits for that
            // election. A granted pre-vote carries the candidate's
            // prospective term so it is not mistaken for a stale reply.
            let granted = term > self.term && up_to_date && !in_lease && voter;
            let reply_term = if granted { term } else { self.term };
            self.reply_vote(from, granted, true, reply_term);
            return;
        }
        let granted = free && up_to_date && voter;
        if granted {
            self.voted_for = Some(from.clone());
            self.hard_state_dirty = true;
            // Granting a vote resets the election timer (Figure 2).
            self.election_elapsed = 0;
        }
        self.reply_vote(from, granted, false, self.term);
    }

    /// Heard from a leader recently enough that an election now would only disrupt it.
    fn in_lease(&self) -> bool {
        self.cfg.check_quorum
            && self.leader.is_some()
            && self.election_elapsed < self.cfg.election_ticks
    }

    fn reply_vote(&mut self, to: NodeId, granted: bool, pre_vote: bool, term: Term) {
        self.msgs.push(Message {
            from: self.cfg.id.clone(),
            to,
            term,
            body: Body::VoteResponse(VoteResponse { granted, pre_vote }),
        });
    }

    /// Counts the votes of the campaign under way, pre-vote or real.
    pub(super) fn handle_vote_response(&mut self, from: NodeId, resp: VoteResponse) {
        let VoteResponse { granted, pre_vote } = resp;
        let campaigning = match self.state {
            State::PreCandidate => pre_vote,
            State::Candidate => !pre_vote,
            _ => false,
        };
        if !campaigning {
            return;
        }
        self.votes.insert(from, granted);
        self.tally(pre_vote);
    }

    /// Counts the votes of the configuration's voters, and acts on the result.
    fn tally(&mut self, pre_vote: bool) {
        let membership = self.log.membership();
        let counted = |granted: bool| {
            self.votes
                .iter()
                .filter(|(id, g)| **g == granted && membership.is_voter(id))
                .count()
        };
        let (yes, no) = (counted(true), counted(false));
        match quorum::vote_result(yes, no, membership.voter_count()) {
            VoteResult::Won if pre_vote => self.become_candidate(false),
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    // ---- role changes ------------------------------------------------------

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.hard_state_dirty = true;
        }
        if self.state == State::Leader {
            self.fail_reads();
        }
        self.state = State::Follower;
        self.leader = leader;
        self.progress.clear();
        self.votes.clear();
        self.transferee = None;
        self.leaving = false;
        self.transfer_campaign = false;
        self.reset_election_timer();
        self.report_role();
    }

    fn become_pre_candidate(&mut self) {
        self.state = State::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.cfg.id.clone(), true);
        self.reset_election_timer();
        self.request_votes(Term(self.term.0 + 1), true);
        self.tally(true);
    }

    /// A real campaign; `transfer` when the leader asked for it (TimeoutNow).
    pub(super) fn become_candidate(&mut self, transfer: bool) {
        self.transfer_campaign = transfer;
        self.state = State::Candidate;
        self.term = Term(self.term.0 + 1);
        self.voted_for = Some(self.cfg.id.clone());
        self.hard_state_dirty = true;
        self.leader = None;
        // Seeded bug `prevote-votes-leak` (canonical/raft#196, etcd-io/etcd#8346):
        // "the pre-candidate phase just cleared the map", so its grants,
        // asked for the same term, count as votes.
        if !self.cfg.bugs.prevote_votes_leak() {
            self.votes.clear();
        }
        self.votes.insert(self.cfg.id.clone(), true);
        self.reset_election_timer();
        self.report_role();
        self.request_votes(self.term, false);
        self.tally(false);
    }

    /// Asks every other voter of the configuration, naming the incarnation
    /// it counts (learners are never asked).
    fn request_votes(&mut self, term: Term, pre_vote: bool) {
        let voters: Vec<(NodeId, u64)> = self
            .log
            .membership()
            .members()
            .iter()
            .filter(|m| m.role == crate::MemberRole::Voter && m.id != self.cfg.id)
            .map(|m| (m.id.clone(), m.incarnation))
            .collect();
        for (peer, incarnation) in voters {
            let body = Body::VoteRequest(VoteRequest {
                last_log_index: self.log.last_index(),
                last_log_term: self.log.last_term(),
                pre_vote,
                transfer: self.transfer_campaign && !pre_vote,
                incarnation,
            });
            self.msgs.push(Message {
                from: self.cfg.id.clone(),
                to: peer,
                term,
                body,
            });
        }
    }

    fn become_leader(&mut self) {
        self.state = State::Leader;
        self.leader = Some(self.cfg.id.clone());
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.transfer_campaign = false;
        let next = self.log.last_index().next();
        // Every member but this node, learners included: they get the log too.
        self.progress = self
            .log
            .membership()
            .members()
            .iter()
            .filter(|m| m.id != self.cfg.id)
            .map(|m| (m.id.clone(), Progress::new(next)))
            .collect();
        self.report_role();
        // §8: a no-op of the new term lets the leader commit, and so learn
        // which earlier entries are committed.
        self.log.append(Entry {
            index: next,
            term: self.term,
            kind: EntryKind::Noop,
            data: Bytes::new(),
        });
        self.needs_broadcast = true;
    }

    /// A new timeout drawn from [T, 2T), so that candidates rarely collide.
    pub(super) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let t = self.cfg.election_ticks.max(1);
        self.randomized_timeout = t + self.rng.below(u64::from(t)) as u32;
    }

    fn report_role(&mut self) {
        let now = (self.role(), self.term);
        if now != self.last_reported {
            self.last_reported = now;
            self.role_changes.push(RoleChange {
                role: now.0,
                term: now.1,
            });
        }
    }
}
