//! Membership: the refusals of single cores (the rules one message at a
//! time are in `testdata/membership.txt`, `transfer.txt`, `rejoin.txt`,
//! `lost_tail.txt` and `config_change_2015.txt`), then the issue's
//! findings in whole simulated clusters.

use super::*;

/// A vote request to n9 from a candidate that counts n9's `incarnation`.
fn vote_request(term: u64, pre_vote: bool, incarnation: u64) -> Message {
    Message {
        from: id("n2"),
        to: id("n9"),
        term: Term(term),
        body: Body::VoteRequest(VoteRequest {
            last_log_index: LogIndex(99),
            last_log_term: Term(99),
            pre_vote,
            transfer: false,
            incarnation,
        }),
    }
}

fn granted(r: &mut Raft) -> Vec<bool> {
    let rd = r.ready();
    rd.messages
        .iter()
        .chain(&rd.persisted_messages)
        .filter_map(|m| match &m.body {
            Body::VoteResponse(v) => Some(v.granted),
            _ => None,
        })
        .collect()
}

/// Core `n9` with the given initial configuration (no pre-vote or lease).
fn core(initial: Membership, joined: bool) -> Raft {
    let mut cfg = Config::new(id("n9"), vec![]);
    cfg.initial = initial;
    cfg.joined = joined;
    cfg.incarnation = 42;
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    let mut r = Raft::new(cfg, HardState::default(), SnapshotMeta::default(), vec![]);
    r.ready();
    r
}

fn member(name: &str, role: MemberRole, incarnation: u64) -> Member {
    Member {
        id: id(name),
        addr: String::new(),
        role,
        incarnation,
    }
}

#[test]
fn a_node_that_lost_its_data_votes_only_as_its_new_incarnation() {
    // n9 (incarnation 42) joined with an empty disk; the cluster lists n9
    // as a voter under incarnation 7, the one that lost its data.
    let wiped = Membership::new(vec![
        member("n1", MemberRole::Voter, 0),
        member("n2", MemberRole::Voter, 0),
        member("n9", MemberRole::Voter, 7),
    ])
    .unwrap();
    for (what, initial) in [
        ("knowing the configuration", wiped.clone()),
        ("knowing none", Membership::default()),
    ] {
        let mut r = core(initial, true);
        // Asked as incarnation 7, or as one the candidate does not know.
        for inc in [7, 0] {
            r.step(vote_request(5, true, inc));
            r.step(vote_request(5, false, inc));
            assert_eq!(
                granted(&mut r),
                vec![false, false],
                "{what}: voted as {inc}"
            );
        }
        for _ in 0..100 {
            r.tick();
        }
        assert_eq!(r.role(), Role::Follower, "{what}: campaigned");
        assert!(!r.is_voter(), "{what}");
        assert_eq!(
            r.status().awaiting_readd.len(),
            usize::from(what == "knowing the configuration")
        );
        // A candidate that counts incarnation 42 (it promoted n9 after
        // re-adding it) gets its vote, even before n9 has that entry.
        r.step(vote_request(6, false, 42));
        assert_eq!(granted(&mut r), vec![true], "{what}");
    }
    // A node that formed the cluster is its id, whatever incarnation is named.
    let mut founder = core(wiped, false);
    founder.step(vote_request(5, false, 7));
    assert_eq!(granted(&mut founder), vec![true]);
}

#[test]
fn learners_are_never_asked_and_never_campaign() {
    let with_learner = Membership::new(vec![
        member("n1", MemberRole::Voter, 0),
        member("n9", MemberRole::Voter, 0),
        member("n5", MemberRole::Learner, 0),
    ])
    .unwrap();
    let mut candidate = core(with_learner.clone(), false);
    candidate.campaign();
    let rd = candidate.ready();
    let asked: Vec<&NodeId> = rd.persisted_messages.iter().map(|m| &m.to).collect();
    assert_eq!(asked, vec![&id("n1")], "only the other voter is asked");
    // n9 as the learner never campaigns, however long it hears nothing.
    let learner = with_learner
        .with(member("n9", MemberRole::Learner, 0))
        .with(member("n5", MemberRole::Voter, 0));
    let mut r = core(learner, false);
    for _ in 0..100 {
        r.tick();
    }
    assert_eq!(r.role(), Role::Follower);
    assert!(r.ready().persisted_messages.is_empty());
}

#[test]
fn changes_are_refused_with_the_reason() {
    let mut sim = Sim::with_members(sim::ids(4), &sim::ids(3), sim::config(1), 1);
    let leader = elect(&mut sim);
    write_n(&mut sim, 1);
    let other = sim.ids.iter().find(|i| **i != leader).unwrap().clone();
    let r = sim.nodes.get_mut(&other).unwrap().raft.as_mut().unwrap();
    assert!(matches!(
        r.propose_change(ConfChange::Remove { id: id("n1") }),
        Err(ChangeError::NotLeader { leader: Some(_) })
    ));
    let r = sim.nodes.get_mut(&leader).unwrap().raft.as_mut().unwrap();
    let refused = |r: &mut Raft, c: ConfChange| r.propose_change(c).unwrap_err().to_string();
    let add = |who: &str| ConfChange::AddLearner {
        id: id(who),
        addr: "127.0.0.1:1".into(),
    };
    assert!(refused(r, add("n2")).contains("already a member (voter)"));
    assert!(refused(r, ConfChange::Promote { id: id("n4") }).contains("n4 is not a member"));
    assert!(refused(r, ConfChange::Promote { id: id("n2") }).contains("already a voter"));
    assert!(refused(r, ConfChange::Remove { id: id("n7") }).contains("not a member"));
    r.propose_change(add("n4")).unwrap();
    assert!(refused(r, ConfChange::Remove { id: id("n2") }).contains("one change at a time"));
    assert_eq!(
        r.transfer_leadership(&id("n4")),
        Err(ChangeError::NotAVoter { id: id("n4") })
    );
    assert_eq!(
        r.transfer_leadership(&leader),
        Err(ChangeError::AlreadyLeader)
    );

    // A cluster of one cannot lose its last voter.
    let mut single = Sim::new(1, 2);
    let only = elect(&mut single);
    write_n(&mut single, 1);
    let r = single.nodes.get_mut(&only).unwrap().raft.as_mut().unwrap();
    assert_eq!(
        r.propose_change(ConfChange::Remove { id: only.clone() }),
        Err(ChangeError::LastVoter { id: only })
    );
}

/// Proposes `change` at whoever leads until it is applied (by the leader).
pub(super) fn change(sim: &mut Sim, change: ConfChange) -> Result<(), String> {
    for _ in 0..50 {
        if !sim.run_until(1000, |s| s.leader().is_some()) {
            return Err("no leader".into());
        }
        let leader = sim.leader().unwrap();
        let r = sim.nodes.get_mut(&leader).unwrap().raft.as_mut().unwrap();
        match r.propose_change(change.clone()) {
            Ok((index, term)) => {
                sim.process(&leader);
                if sim.run_until(300, |s| {
                    s.raft(&leader).log().applied >= index || s.raft(&leader).term() != term
                }) && sim.raft(&leader).log().term(index) == Some(term)
                    && sim.raft(&leader).log().applied >= index
                {
                    return Ok(());
                }
            }
            Err(ChangeError::NotCaughtUp { .. })
            | Err(ChangeError::TermNotCommitted)
            | Err(ChangeError::ChangeInFlight { .. })
            | Err(ChangeError::NotLeader { .. })
            | Err(ChangeError::TransferInProgress { .. }) => sim.run(5),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("{change:?} never applied"))
}

/// Finding 1 of issue 19: n1 leads, n2 is cut off while writes commit on
/// n1 and n3; n1 and n3 crash, n3's disk is wiped, n3 and n2 come back. The
/// empty n3 must not vote for n2, which lacks the writes. n1's return
/// elects it; n3 is re-added; nothing acknowledged is lost.
#[test]
fn finding_1_a_wiped_node_never_elects_a_leader_without_the_writes() {
    for seed in 0..20 {
        let mut sim = Sim::new(3, seed);
        let n1 = elect(&mut sim);
        let others: Vec<NodeId> = sim.ids.iter().filter(|i| **i != n1).cloned().collect();
        let (n2, n3) = (others[0].clone(), others[1].clone());
        sim.isolate(&n2);
        write_n(&mut sim, 5);
        let written = sim.applied.len();
        sim.crash(&n1);
        sim.wipe(&n3);
        sim.heal();
        let leaderless = sim.run_until(500, |s| s.leader().is_some());
        assert!(
            !leaderless,
            "seed {seed}: n2 and the wiped n3 elected a leader"
        );
        sim.restart(&n1);
        let leader = elect(&mut sim);
        assert_eq!(leader, n1, "seed {seed}: only n1 holds every write");
        let known = sim.run_until(100, |s| s.raft(&n1).status().awaiting_readd == [n3.clone()]);
        assert!(
            known,
            "seed {seed}: the leader does not know n3 lost its data"
        );
        // Re-added: removed, then a learner, then a voter again.
        change(&mut sim, ConfChange::Remove { id: n3.clone() }).unwrap();
        let addr = String::new();
        change(
            &mut sim,
            ConfChange::AddLearner {
                id: n3.clone(),
                addr,
            },
        )
        .unwrap();
        change(&mut sim, ConfChange::Promote { id: n3.clone() }).unwrap();
        assert!(
            sim.run_until(1000, |s| s.raft(&n3).is_voter()),
            "seed {seed}"
        );
        write_n(&mut sim, 2);
        assert!(sim.run_until(2000, |s| s.converged()), "seed {seed}");
        assert!(sim.raft(&n3).log().applied.0 as usize >= written + 2);
        // With n2 down, n1 and the re-added n3 commit.
        sim.crash(&n2);
        write_n(&mut sim, 2);
        assert!(sim.raft(&n1).log().committed.0 as usize >= written + 4);
    }
}

/// Finding 2 of issue 19: a follower restarts with a shorter log than the
/// leader recorded for it; it must catch up while that leader stays, and
/// then the cluster commits with two of three.
#[test]
fn finding_2_a_follower_that_lost_its_tail_catches_up() {
    for seed in 0..20 {
        assert_eq!(
            lost_tail(seed, SeededBugs::default()),
            Ok(()),
            "seed {seed}"
        );
    }
}

/// The seeded bug `ignore-lost-tail` brings finding 2 back.
#[cfg(feature = "bugs")]
#[test]
fn finding_2_comes_back_with_the_seeded_bug() {
    let bugs = SeededBugs {
        ignore_lost_tail: true,
        ..SeededBugs::default()
    };
    for seed in 0..5 {
        assert!(lost_tail(seed, bugs).is_err(), "seed {seed}");
    }
}

fn lost_tail(seed: u64, bugs: SeededBugs) -> Result<(), String> {
    let mut cfg = sim::config(seed);
    cfg.bugs = bugs;
    let mut sim = Sim::with_config(sim::ids(3), cfg, seed);
    let leader = elect(&mut sim);
    let others: Vec<NodeId> = sim.ids.iter().filter(|i| **i != leader).cloned().collect();
    let (a, b) = (others[0].clone(), others[1].clone());
    write_n(&mut sim, 10);
    sim.run(20);
    // Every write is on all three: `a` losing some of them loses nothing
    // committed, and the leader stays.
    sim.crash(&a);
    sim.lose_tail(&a, LogIndex(3));
    sim.restart(&a);
    if !sim.run_until(500, |s| {
        s.raft(&a).log().last_index() == s.raft(&leader).log().last_index()
    }) {
        return Err(format!("{a} never caught up"));
    }
    sim.crash(&b);
    let before = sim.raft(&leader).log().committed;
    let (index, _) = sim
        .propose(&leader, b"two of three")
        .ok_or("the leader changed")?;
    if !sim.run_until(200, |s| s.raft(&leader).log().committed >= index) {
        return Err(format!("nothing committed with {b} down (commit {before})"));
    }
    Ok(())
}

/// A learner counts toward nothing: with one of two voters down, the
/// other and a learner commit nothing; once promoted, it counts.
#[test]
fn learners_never_count() {
    let ids = sim::ids(3);
    let mut sim = Sim::with_members(ids.clone(), &ids[..2], sim::config(4), 4);
    elect(&mut sim);
    change(
        &mut sim,
        ConfChange::AddLearner {
            id: id("n3"),
            addr: String::new(),
        },
    )
    .unwrap();
    write_n(&mut sim, 3);
    assert!(sim.run_until(500, |s| s.converged()));
    let leader = sim.leader().unwrap();
    let voter = ids[..2].iter().find(|i| **i != leader).unwrap().clone();
    sim.crash(&voter);
    let (index, _) = sim.propose(&leader, b"x").unwrap();
    sim.run(50);
    assert!(
        sim.raft(&leader).log().committed < index,
        "a learner counted"
    );
    assert_eq!(
        sim.raft(&id("n3")).log().last_index(),
        index,
        "it has the entry"
    );
    sim.restart(&voter);
    change(&mut sim, ConfChange::Promote { id: id("n3") }).unwrap();
    let leader = sim.leader().unwrap();
    let voter = ids[..2].iter().find(|i| **i != leader).unwrap().clone();
    sim.crash(&voter);
    let (index, _) = sim.propose(&leader, b"y").unwrap();
    assert!(
        sim.run_until(100, |s| s.raft(&leader).log().committed >= index),
        "a promoted learner counts"
    );
}

/// Transfer: the target wins the next term at once, however recently the
/// others heard from the leader.
#[test]
fn transfer_hands_leadership_over_within_an_election_timeout() {
    for seed in 0..20 {
        let mut sim = Sim::new(5, seed);
        let old = elect(&mut sim);
        write_n(&mut sim, 3);
        let to = sim.ids.iter().find(|i| **i != old).unwrap().clone();
        let term = sim.raft(&old).term();
        let r = sim.nodes.get_mut(&old).unwrap().raft.as_mut().unwrap();
        r.transfer_leadership(&to).unwrap();
        sim.process(&old);
        let ok = sim.run_until(10, |s| s.leader().as_ref() == Some(&to));
        assert!(ok, "seed {seed}: {to} did not take over");
        assert_eq!(sim.raft(&to).term(), Term(term.0 + 1), "seed {seed}");
    }
}
