//! Scenario tests of the core. First the rules of Figure 2 one message at a
//! time on a single core, then whole clusters in the simulator.

use bytes::Bytes;

use super::rng::Rng;
use super::sim::{Durable, Faults, Sim};
use super::*;

/// ReadIndex (§6.4 of the thesis): in `tests/read_only.rs`.
mod read_only;
/// Snapshots and compaction (§7): in `tests/snapshots.rs`.
mod snapshots;

fn id(s: &str) -> NodeId {
    NodeId::new(s)
}

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index: LogIndex(index),
        term: Term(term),
        kind: EntryKind::Normal,
        data: Bytes::from(format!("{index}@{term}")),
    }
}

fn log_of(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &t)| entry(i as u64 + 1, t))
        .collect()
}

/// A lone core `n1` with peers `n2`, `n3`, no pre-vote or lease, so the rules
/// of the paper can be checked one by one.
fn core_with(term: u64, voted_for: Option<&str>, log: Vec<Entry>) -> Raft {
    let mut cfg = Config::new(id("n1"), vec![id("n2"), id("n3")]);
    cfg.election_ticks = 10;
    cfg.heartbeat_ticks = 2;
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    let hs = HardState {
        term: Term(term),
        voted_for: voted_for.map(id),
    };
    let mut r = Raft::new(cfg, hs, SnapshotMeta::default(), log);
    r.ready();
    r
}

fn msg(from: &str, term: u64, body: Body) -> Message {
    Message {
        from: id(from),
        to: id("n1"),
        term: Term(term),
        body,
    }
}

fn vote_req(from: &str, term: u64, last_index: u64, last_term: u64) -> Message {
    msg(
        from,
        term,
        Body::VoteRequest(VoteRequest {
            last_log_index: LogIndex(last_index),
            last_log_term: Term(last_term),
            pre_vote: false,
        }),
    )
}

fn append(from: &str, term: u64, prev: (u64, u64), entries: Vec<Entry>, commit: u64) -> Message {
    msg(
        from,
        term,
        Body::AppendRequest(AppendRequest {
            prev_log_index: LogIndex(prev.0),
            prev_log_term: Term(prev.1),
            entries,
            leader_commit: LogIndex(commit),
            read_ctx: 0,
        }),
    )
}

/// The single vote reply in a Ready, with the term it carries.
fn vote_reply(rd: &Ready) -> (bool, Term) {
    let all: Vec<&Message> = rd.messages.iter().chain(&rd.persisted_messages).collect();
    assert_eq!(all.len(), 1, "one reply expected: {all:?}");
    match all[0].body {
        Body::VoteResponse(VoteResponse { granted, .. }) => (granted, all[0].term),
        ref b => panic!("not a vote reply: {b:?}"),
    }
}

fn append_reply(rd: &Ready) -> (bool, LogIndex, Term, LogIndex) {
    let all: Vec<&Message> = rd.messages.iter().chain(&rd.persisted_messages).collect();
    assert_eq!(all.len(), 1, "one reply expected: {all:?}");
    match all[0].body {
        Body::AppendResponse(AppendResponse {
            success,
            index,
            conflict_term,
            conflict_index,
            ..
        }) => (success, index, conflict_term, conflict_index),
        ref b => panic!("not an append reply: {b:?}"),
    }
}

// ---- Figure 2, one rule at a time ---------------------------------------

#[test]
fn election_timeout_is_randomized_in_t_to_2t() {
    let mut seen = std::collections::HashSet::new();
    for seed in 0..200 {
        let mut cfg = Config::new(id("n1"), vec![id("n2"), id("n3")]);
        cfg.election_ticks = 10;
        cfg.pre_vote = false;
        cfg.seed = seed;
        let mut r = Raft::new(cfg, HardState::default(), SnapshotMeta::default(), vec![]);
        let mut ticks = 0;
        while r.role() != Role::Candidate {
            r.tick();
            ticks += 1;
            assert!(ticks < 100);
        }
        assert!((10..20).contains(&ticks), "timeout {ticks} outside [T, 2T)");
        seen.insert(ticks);
    }
    assert!(seen.len() >= 8, "timeouts barely vary: {seen:?}");
}

#[test]
fn vote_refused_for_a_lower_term_and_reply_carries_voter_term() {
    let mut r = core_with(5, None, vec![]);
    r.step(vote_req("n2", 4, 9, 4));
    assert_eq!(vote_reply(&r.ready()), (false, Term(5)));
}

#[test]
fn higher_term_makes_follower_and_clears_vote() {
    let mut r = core_with(5, Some("n3"), vec![]);
    r.step(vote_req("n2", 6, 0, 0));
    assert_eq!(r.term(), Term(6));
    let rd = r.ready();
    // The vote for n3 was in term 5; in term 6 the node is free to vote for n2.
    assert_eq!(vote_reply(&rd), (true, Term(6)));
    assert_eq!(rd.hard_state.unwrap().voted_for, Some(id("n2")));
}

#[test]
fn one_vote_per_term() {
    let mut r = core_with(2, None, vec![]);
    r.step(vote_req("n2", 2, 0, 0));
    assert!(vote_reply(&r.ready()).0);
    r.step(vote_req("n3", 2, 0, 0));
    assert!(
        !vote_reply(&r.ready()).0,
        "second candidate in the same term"
    );
    // Asking again (a retried request) gets the same answer.
    r.step(vote_req("n2", 2, 0, 0));
    assert!(vote_reply(&r.ready()).0);
}

#[test]
fn vote_only_for_an_up_to_date_log() {
    // Our log ends at (index 3, term 2).
    for (last_index, last_term, granted) in [
        (3, 2, true),
        (9, 2, true),
        (1, 3, true),
        (2, 2, false),
        (9, 1, false),
    ] {
        let mut r = core_with(2, None, log_of(&[1, 2, 2]));
        r.step(vote_req("n2", 3, last_index, last_term));
        assert_eq!(
            vote_reply(&r.ready()).0,
            granted,
            "candidate log ({last_index}, {last_term})"
        );
    }
}

#[test]
fn granted_vote_is_persisted_before_the_reply_leaves() {
    let mut r = core_with(1, None, vec![]);
    r.step(vote_req("n2", 2, 0, 0));
    let rd = r.ready();
    assert!(
        rd.messages.is_empty(),
        "nothing may leave before the vote is durable"
    );
    assert_eq!(rd.persisted_messages.len(), 1);
    assert_eq!(
        rd.hard_state,
        Some(HardState {
            term: Term(2),
            voted_for: Some(id("n2"))
        })
    );
}

#[test]
fn granting_a_vote_resets_the_election_timer() {
    let mut r = core_with(1, None, vec![]);
    let timeout = r.election_timeout();
    for _ in 0..timeout - 1 {
        r.tick();
    }
    r.step(vote_req("n2", 2, 0, 0));
    r.ready();
    for _ in 0..9 {
        r.tick();
    }
    assert_eq!(r.role(), Role::Follower, "timer restarted at the grant");
}

#[test]
fn valid_append_resets_the_election_timer_and_stale_does_not() {
    let mut r = core_with(3, None, vec![]);
    for _ in 0..30 {
        for _ in 0..5 {
            r.tick();
        }
        r.step(append("n2", 3, (0, 0), vec![], 0));
        r.ready();
    }
    assert_eq!(
        r.role(),
        Role::Follower,
        "heartbeats from the leader keep it a follower"
    );
    for _ in 0..30 {
        for _ in 0..5 {
            r.tick();
        }
        r.step(append("n3", 2, (0, 0), vec![], 0));
    }
    assert_eq!(
        r.role(),
        Role::Candidate,
        "a deposed leader's heartbeats do not count"
    );
}

#[test]
fn append_rejects_a_missing_prev_entry_with_a_hint() {
    let mut r = core_with(3, None, log_of(&[1, 1, 2, 2, 2]));
    // Our log is shorter than prev: hint is our last index + 1.
    r.step(append("n2", 3, (9, 3), vec![], 0));
    assert_eq!(
        append_reply(&r.ready()),
        (false, LogIndex(9), Term(0), LogIndex(6))
    );
    // Our entry at prev has another term: hint is that term and its first index.
    r.step(append("n2", 3, (5, 3), vec![], 0));
    assert_eq!(
        append_reply(&r.ready()),
        (false, LogIndex(5), Term(2), LogIndex(3))
    );
}

#[test]
fn append_truncates_a_conflicting_suffix() {
    let mut r = core_with(3, None, log_of(&[1, 1, 2, 2, 2]));
    r.step(append("n2", 3, (2, 1), vec![entry(3, 3)], 3));
    let rd = r.ready();
    assert!(append_reply(&rd).0);
    assert_eq!(rd.truncate_from, Some(LogIndex(3)));
    assert_eq!(rd.entries, vec![entry(3, 3)]);
    assert_eq!(r.log().last_index(), LogIndex(3));
    assert_eq!(r.log().committed, LogIndex(3));
    // The reply promises the entries are stored: it waits for persistence.
    assert!(rd.messages.is_empty());
}

#[test]
fn follower_commit_never_passes_the_last_new_entry() {
    let mut r = core_with(3, None, log_of(&[1, 1, 1, 1]));
    // Entries 3 and 4 here may be stale leftovers: the request proves only up to 2.
    r.step(append("n2", 3, (1, 1), vec![entry(2, 1)], 4));
    r.ready();
    assert_eq!(r.log().committed, LogIndex(2));
}

#[test]
fn leader_steps_down_on_a_higher_term_in_a_reply() {
    let mut r = core_with(1, None, vec![]);
    for _ in 0..20 {
        r.tick();
    }
    assert_eq!(r.role(), Role::Candidate);
    let term = r.term().0;
    r.step(msg(
        "n2",
        term,
        Body::VoteResponse(VoteResponse {
            granted: true,
            pre_vote: false,
        }),
    ));
    assert_eq!(r.role(), Role::Leader);
    r.ready();
    r.step(msg(
        "n3",
        term + 5,
        Body::AppendResponse(AppendResponse {
            success: false,
            index: LogIndex(0),
            conflict_term: Term(0),
            conflict_index: LogIndex(0),
            read_ctx: 0,
            last_log_index: LogIndex(0),
        }),
    ));
    assert_eq!(r.role(), Role::Follower);
    assert_eq!(r.term(), Term(term + 5));
}

#[test]
fn new_leader_appends_a_noop_and_heartbeats_are_empty_appends() {
    let mut r = core_with(1, None, log_of(&[1]));
    for _ in 0..20 {
        r.tick();
    }
    let term = r.term().0;
    r.step(msg(
        "n2",
        term,
        Body::VoteResponse(VoteResponse {
            granted: true,
            pre_vote: false,
        }),
    ));
    let rd = r.ready();
    assert_eq!(rd.entries.len(), 1);
    assert_eq!(rd.entries[0].kind, EntryKind::Noop);
    assert_eq!(rd.entries[0].term, Term(term));
    for _ in 0..2 {
        r.tick();
    }
    let rd = r.ready();
    let heartbeats: Vec<_> = rd
        .messages
        .iter()
        .filter(|m| matches!(&m.body, Body::AppendRequest(AppendRequest { entries, .. }) if entries.is_empty()))
        .collect();
    assert_eq!(heartbeats.len(), 2, "{:?}", rd.messages);
}

#[test]
fn leader_counts_its_own_entry_only_once_durable() {
    let mut cfg = Config::new(id("solo"), vec![]);
    cfg.election_ticks = 5;
    let mut r = Raft::new(cfg, HardState::default(), SnapshotMeta::default(), vec![]);
    for _ in 0..10 {
        r.tick();
    }
    assert_eq!(r.role(), Role::Leader);
    let rd = r.ready();
    let noop = rd.entries.last().unwrap().clone();
    assert_eq!(
        r.log().committed,
        LogIndex(0),
        "not committed before the write is durable"
    );
    r.on_persisted(noop.index, noop.term);
    let rd = r.ready();
    assert_eq!(rd.committed, vec![noop]);
}

#[test]
fn figure_8_old_term_entry_on_a_majority_is_not_committed() {
    // Leader of term 4 holding (2, term 2) from an earlier leader, plus its no-op at 3.
    let mut r = core_with(3, None, log_of(&[1, 2]));
    for _ in 0..20 {
        r.tick();
    }
    assert_eq!(r.term(), Term(4));
    r.step(msg(
        "n2",
        4,
        Body::VoteResponse(VoteResponse {
            granted: true,
            pre_vote: false,
        }),
    ));
    assert_eq!(r.role(), Role::Leader);
    let rd = r.ready();
    r.on_persisted(rd.entries[0].index, rd.entries[0].term);
    let ok = |index: u64| {
        Body::AppendResponse(AppendResponse {
            success: true,
            index: LogIndex(index),
            conflict_term: Term(0),
            conflict_index: LogIndex(0),
            read_ctx: 0,
            last_log_index: LogIndex(index),
        })
    };
    // n2 stores up to 2: index 2 is now on a majority (n1, n2), but it is from term 2.
    r.step(msg("n2", 4, ok(2)));
    assert_eq!(
        r.log().committed,
        LogIndex(0),
        "Figure 8: never count replicas of an old term"
    );
    // Once the term-4 entry is on a majority, everything before it commits too.
    r.step(msg("n2", 4, ok(3)));
    assert_eq!(r.log().committed, LogIndex(3));
}

#[test]
fn pipelined_replies_out_of_order_and_twice() {
    let mut r = core_with(1, None, vec![]);
    for _ in 0..20 {
        r.tick();
    }
    let term = r.term().0;
    r.step(msg(
        "n2",
        term,
        Body::VoteResponse(VoteResponse {
            granted: true,
            pre_vote: false,
        }),
    ));
    let rd = r.ready();
    r.on_persisted(rd.entries[0].index, rd.entries[0].term);
    let ok = |index: u64| {
        Body::AppendResponse(AppendResponse {
            success: true,
            index: LogIndex(index),
            conflict_term: Term(0),
            conflict_index: LogIndex(0),
            read_ctx: 0,
            last_log_index: LogIndex(index),
        })
    };
    r.step(msg("n2", term, ok(1)));
    for i in 0..5 {
        r.propose(Bytes::from(vec![i])).unwrap();
        let rd = r.ready();
        let last = rd.entries.last().unwrap();
        r.on_persisted(last.index, last.term);
    }
    // Five appends in flight to n2 (indexes 2..=6): replies come back shuffled and duplicated.
    for i in [4, 2, 6, 6, 3, 5, 2] {
        r.step(msg("n2", term, ok(i)));
    }
    assert_eq!(r.log().committed, LogIndex(6));
    // A stale rejection of an old request must not send n2 back to probing.
    r.step(msg(
        "n2",
        term,
        Body::AppendResponse(AppendResponse {
            success: false,
            index: LogIndex(3),
            conflict_term: Term(0),
            conflict_index: LogIndex(2),
            read_ctx: 0,
            last_log_index: LogIndex(1),
        }),
    ));
    r.ready();
    r.propose(Bytes::from_static(b"x")).unwrap();
    let rd = r.ready();
    let to_n2: Vec<_> = rd.messages.iter().filter(|m| m.to == id("n2")).collect();
    assert!(
        matches!(&to_n2[0].body, Body::AppendRequest(AppendRequest { prev_log_index, entries, .. }) if *prev_log_index == LogIndex(6) && entries.len() == 1),
        "{to_n2:?}"
    );
}

// ---- whole clusters ------------------------------------------------------

fn elect(sim: &mut Sim) -> NodeId {
    assert!(
        sim.run_until(500, |s| s.leader().is_some()),
        "no leader elected"
    );
    sim.leader().unwrap()
}

/// Proposes at the current leader until `n` proposals are applied by it.
fn write_n(sim: &mut Sim, n: usize) {
    for i in 0..n {
        let ok = sim.run_until(2000, |s| s.leader().is_some());
        assert!(ok, "no leader to write to");
        let leader = sim.leader().unwrap();
        let data = format!("w{i}-{}", sim.now);
        sim.propose(&leader, data.as_bytes());
        let want = Bytes::from(data);
        sim.run_until(200, |s| s.applied.values().any(|(_, d)| *d == want));
    }
}

#[test]
fn one_leader_is_elected_in_a_quiet_cluster() {
    for n in [1, 3, 5] {
        for seed in 0..20 {
            let mut sim = Sim::new(n, seed);
            let leader = elect(&mut sim);
            // Within a few timeouts (T = 10 ticks) and everyone agrees.
            assert!(sim.now < 60, "took {} ticks", sim.now);
            sim.run(30);
            let term = sim.raft(&leader).term();
            for id in sim.ids.clone() {
                assert_eq!(sim.raft(&id).leader(), Some(&leader), "seed {seed}");
                assert_eq!(sim.raft(&id).term(), term);
            }
        }
    }
}

#[test]
fn no_election_while_the_leader_is_healthy() {
    let mut sim = Sim::new(5, 3);
    let leader = elect(&mut sim);
    let term = sim.raft(&leader).term();
    for _ in 0..50 {
        sim.run(40);
        write_n(&mut sim, 1);
    }
    assert_eq!(sim.leader(), Some(leader.clone()));
    for id in sim.ids.clone() {
        assert_eq!(sim.raft(&id).term(), term, "{id} changed term");
    }
}

#[test]
fn reelection_after_the_leader_is_cut_off() {
    for seed in 0..20 {
        let mut sim = Sim::new(5, seed);
        let old = elect(&mut sim);
        let old_term = sim.raft(&old).term();
        write_n(&mut sim, 3);
        sim.isolate(&old);
        let ok = sim.run_until(300, |s| {
            s.ids.iter().any(|i| {
                *i != old && s.raft(i).role() == Role::Leader && s.raft(i).term() > old_term
            })
        });
        assert!(ok, "seed {seed}: the majority did not elect a new leader");
        // Check-quorum: the cut-off leader notices it lost its majority.
        sim.run(30);
        assert_ne!(sim.raft(&old).role(), Role::Leader, "seed {seed}");
        // It rejoins without disturbing the new leader (pre-vote).
        let new = sim.leader().unwrap();
        let term = sim.raft(&new).term();
        sim.heal();
        sim.run(100);
        assert_eq!(sim.leader(), Some(new));
        assert_eq!(
            sim.raft(&old).term(),
            term,
            "seed {seed}: rejoined in the leader's term"
        );
    }
}

#[test]
fn a_follower_far_behind_catches_up() {
    let mut sim = Sim::new(3, 11);
    let leader = elect(&mut sim);
    let lagger = sim.ids.iter().find(|i| **i != leader).unwrap().clone();
    sim.crash(&lagger);
    write_n(&mut sim, 300);
    sim.restart(&lagger);
    let ok = sim.run_until(2000, |s| s.converged());
    assert!(ok, "lagging follower did not catch up");
    assert!(sim.raft(&lagger).log().applied >= LogIndex(301));
}

#[test]
fn a_follower_with_a_divergent_log_is_repaired_a_term_at_a_time() {
    // n3 holds a long suffix of uncommitted entries from old terms that must go.
    let mut sim = Sim::new(3, 5);
    let good = Durable {
        hard_state: HardState {
            term: Term(6),
            voted_for: None,
        },
        snapshot: SnapshotMeta::default(),
        log: log_of(&[1, 1, 6, 6, 6]),
    };
    let stale = Durable {
        hard_state: HardState {
            term: Term(5),
            voted_for: None,
        },
        snapshot: SnapshotMeta::default(),
        log: log_of(&[1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 5]),
    };
    sim.set_durable(&id("n1"), good.clone());
    sim.set_durable(&id("n2"), good);
    sim.set_durable(&id("n3"), stale);
    sim.isolate(&id("n3"));
    let leader = elect(&mut sim);
    assert_ne!(leader, id("n3"));
    sim.heal();
    assert!(sim.run_until(500, |s| s.converged()));
    let n3 = sim.raft(&id("n3")).log();
    assert_eq!(n3.term(LogIndex(3)), Some(Term(6)));
    assert_eq!(n3.last_index(), sim.raft(&leader).log().last_index());
}

#[test]
fn figure_8_scenario_in_a_cluster() {
    figure_8_scenario(super::SeededBugs::default());
}

fn figure_8_scenario(bugs: super::SeededBugs) {
    // Figure 8 (c): n1 or n2 leads term 4 with (2, term 2) from term 2 and
    // n5 holds (2, term 3) from its short leadership in term 3.
    let ids: Vec<NodeId> = (1..=5).map(|i| NodeId(format!("n{i}"))).collect();
    let mut cfg = Config::new(ids[0].clone(), vec![]);
    cfg.bugs = bugs;
    cfg.election_ticks = 10;
    cfg.heartbeat_ticks = 2;
    // One entry per AppendEntries, so index 2 can arrive without index 3.
    cfg.max_append_bytes = 1;
    let mut sim = Sim::with_config(ids, cfg, 8);
    let d = |term: u64, vote: Option<&str>, terms: &[u64]| Durable {
        hard_state: HardState {
            term: Term(term),
            voted_for: vote.map(id),
        },
        snapshot: SnapshotMeta::default(),
        log: log_of(terms),
    };
    sim.set_durable(&id("n1"), d(2, Some("n1"), &[1, 2]));
    sim.set_durable(&id("n2"), d(2, Some("n1"), &[1, 2]));
    sim.set_durable(&id("n3"), d(3, Some("n5"), &[1]));
    sim.set_durable(&id("n4"), d(3, Some("n5"), &[1]));
    sim.set_durable(&id("n5"), d(3, Some("n5"), &[1, 3]));
    sim.isolate(&id("n5"));
    // The new leader's own entry (index 3) never reaches n3 and n4.
    sim.drop_if = Some(Box::new(|m: &Message| {
        (m.to == NodeId::new("n3") || m.to == NodeId::new("n4"))
            && matches!(&m.body, Body::AppendRequest(AppendRequest { entries, .. }) if entries.iter().any(|e| e.index == LogIndex(3)))
    }));
    let leader = elect(&mut sim);
    assert!(leader == id("n1") || leader == id("n2"));
    assert_eq!(sim.raft(&leader).term(), Term(4));
    let ok = sim.run_until(300, |s| {
        s.raft(&id("n3")).log().term(LogIndex(2)) == Some(Term(2))
    });
    assert!(ok, "index 2 of term 2 reaches n3: now on a majority");
    sim.run(50);
    assert!(
        sim.raft(&leader).log().committed < LogIndex(2),
        "Figure 8: the leader must not commit an old-term entry by counting replicas"
    );
    // (d): both term-4 holders crash; n5 wins with n3 and n4 and overwrites index 2.
    sim.crash(&id("n1"));
    sim.crash(&id("n2"));
    sim.heal();
    sim.drop_if = None;
    let ok = sim.run_until(1000, |s| {
        s.leader() == Some(NodeId::new("n5")) && s.applied.contains_key(&LogIndex(2))
    });
    assert!(ok, "n5 leads and commits");
    assert_eq!(
        sim.applied[&LogIndex(2)].0,
        Term(3),
        "index 2 is n5's entry everywhere"
    );
    // The crashed nodes come back and take n5's log; the sim checks nobody applies (2, term 2).
    sim.restart(&id("n1"));
    sim.restart(&id("n2"));
    assert!(sim.run_until(1000, |s| s.converged()));
}

#[test]
fn read_index_needs_a_live_majority() {
    let mut sim = Sim::new(3, 21);
    let leader = elect(&mut sim);
    write_n(&mut sim, 2);
    assert!(sim.read_index(&leader, 1));
    assert!(sim.run_until(20, |s| s.nodes[&leader].reads.iter().any(|r| r.0 == 1)));
    let (_, index) = sim.nodes[&leader].reads[0];
    assert_eq!(index, sim.raft(&leader).log().committed);

    // Cut off, the leader can no longer prove it leads: the read never
    // succeeds, and fails when check-quorum deposes it.
    sim.isolate(&leader);
    assert!(sim.read_index(&leader, 2));
    sim.run(100);
    assert!(!sim.nodes[&leader].reads.iter().any(|r| r.0 == 2));
    assert!(sim.nodes[&leader].failed_reads.contains(&2));
    // Followers refuse to serve reads at all.
    let follower = sim.ids.iter().find(|i| **i != leader).unwrap().clone();
    sim.heal();
    sim.run(100);
    if sim.raft(&follower).role() != Role::Leader {
        assert!(!sim.read_index(&follower, 3));
    }
}

#[test]
fn reads_arriving_together_share_one_round() {
    let mut sim = Sim::new(3, 4);
    let leader = elect(&mut sim);
    write_n(&mut sim, 1);
    sim.run(5);
    let before = sim.messages_in_flight();
    for ctx in 10..20 {
        sim.raft_mut(&leader).read_index(ctx).unwrap();
    }
    sim.process(&leader);
    // Ten reads, one heartbeat: the leader and one follower are a majority.
    assert_eq!(sim.messages_in_flight() - before, 1);
    sim.run(3);
    let reads = &sim.nodes[&leader].reads;
    assert_eq!(reads.len(), 10);
    assert!(reads.iter().all(|r| r.1 == reads[0].1));
}

#[test]
fn a_new_leader_serves_reads_only_after_committing_in_its_term() {
    let mut sim = Sim::new(3, 2);
    let leader = elect(&mut sim);
    write_n(&mut sim, 3);
    sim.crash(&leader);
    let ok = sim.run_until(500, |s| s.leader().is_some());
    assert!(ok);
    let new = sim.leader().unwrap();
    // Ask at once: the read point must cover every write the old leader acknowledged.
    assert!(sim.read_index(&new, 7));
    assert!(sim.run_until(100, |s| !s.nodes[&new].reads.is_empty()));
    let (_, index) = sim.nodes[&new].reads[0];
    assert!(
        index >= LogIndex(4),
        "read index {index} misses earlier writes"
    );
}

/// Random faults on a random schedule; the simulator asserts safety at
/// every step, and at the end the cluster must heal and agree. Returns how
/// many snapshots were installed from a leader.
fn chaos(seed: u64, nodes: usize, ticks: u64) -> u64 {
    chaos_with(seed, nodes, ticks, super::SeededBugs::default())
}

fn chaos_with(seed: u64, nodes: usize, ticks: u64, bugs: super::SeededBugs) -> u64 {
    let mut sim = Sim::with_bugs(nodes, seed, bugs);
    sim.faults = Faults::lossy();
    // Three seeds in four compact (§7), often enough that crashed and
    // partitioned nodes must catch up by InstallSnapshot.
    sim.compact_every = compaction_for(seed);
    let mut rng = Rng::new(seed ^ 0xdead_beef);
    let mut proposed = 0u64;
    for t in 0..ticks {
        sim.step();
        let roll = rng.below(1000);
        let target = sim.ids[rng.below(nodes as u64) as usize].clone();
        match roll {
            0..=9 if sim.is_up(&target) => sim.crash(&target),
            10..=29 if !sim.is_up(&target) => sim.restart(&target),
            30..=34 => {
                let mut a = Vec::new();
                let mut b = Vec::new();
                for id in sim.ids.clone() {
                    if rng.below(2) == 0 {
                        a.push(id)
                    } else {
                        b.push(id)
                    }
                }
                sim.partition(&[a, b]);
            }
            35..=44 => sim.heal(),
            45..=299 if sim.is_up(&target) => {
                proposed += 1;
                let data = format!("s{seed}-t{t}-{proposed}");
                sim.propose(&target, data.as_bytes());
            }
            _ => {}
        }
    }
    // Heal everything; the cluster must elect a leader, commit and converge.
    sim.heal();
    sim.faults = Faults::none();
    for id in sim.ids.clone() {
        if !sim.is_up(&id) {
            sim.restart(&id);
        }
    }
    // Like a client, retry at whoever leads until the write is applied: a
    // proposal to a leader that is about to be deposed may be lost.
    let mut ok = false;
    for _ in 0..30 {
        let leader = elect(&mut sim);
        sim.propose(&leader, b"final");
        if sim.run_until(100, |s| {
            s.applied.values().any(|(_, d)| d.as_ref() == b"final")
        }) {
            ok = sim.run_until(3000, |s| s.converged());
            break;
        }
    }
    let leader = elect(&mut sim);
    if !ok && std::env::var("RAFT_SIM_DEBUG").is_ok() {
        for id in sim.ids.clone() {
            eprintln!("{id}: {:?}", sim.raft(&id).status());
            eprintln!("    {:?}", sim.raft(&id).progress());
        }
    }
    assert!(ok, "seed {seed}: did not converge after healing");
    // Logs never diverge at a committed index (where both still hold it),
    // and state machines never diverge at all.
    let reference = sim.raft(&leader).log();
    for id in sim.ids.clone() {
        let log = sim.raft(&id).log();
        for i in 1..=log.committed.0 {
            if let (Some(a), Some(b)) = (log.term(LogIndex(i)), reference.term(LogIndex(i))) {
                assert_eq!(a, b, "seed {seed}: {id} at {i}");
            }
        }
        let applied = &sim.nodes[&id].applied;
        assert_eq!(
            applied[..],
            sim.nodes[&leader].applied[..applied.len()],
            "seed {seed}: {id}"
        );
    }
    sim.nodes.values().map(|n| n.installs).sum()
}

/// No compaction for one seed in four; otherwise every 3 to 24 entries.
fn compaction_for(seed: u64) -> Option<u64> {
    (!seed.is_multiple_of(4)).then_some(3 + (seed / 4) % 22)
}

#[test]
fn safety_under_random_faults_over_many_seeds() {
    // RAFT_SIM_SEEDS=N widens the sweep; a failing seed is named in the panic.
    let seeds: u64 = std::env::var("RAFT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let start: u64 = std::env::var("RAFT_SIM_SEED_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut installs = 0;
    for seed in start..start + seeds {
        let nodes = if seed % 2 == 0 { 3 } else { 5 };
        match std::panic::catch_unwind(|| chaos(seed, nodes, 400)) {
            Ok(n) => installs += n,
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!(
                    "seed {seed} ({nodes} nodes) failed: {msg}\nrerun: RAFT_SIM_SEED_START={seed} RAFT_SIM_SEEDS=1"
                );
            }
        }
    }
    eprintln!("{seeds} seeds: {installs} snapshots installed from a leader");
    if seeds >= 200 {
        assert!(installs > 0, "the sweep never exercised InstallSnapshot");
    }
}

#[test]
fn safety_without_pre_vote_or_check_quorum() {
    // The plain algorithm of the paper must be safe on its own.
    for seed in 0..300 {
        let ids: Vec<NodeId> = (1..=5).map(|i| NodeId(format!("n{i}"))).collect();
        let mut cfg = Config::new(ids[0].clone(), vec![]);
        cfg.election_ticks = 10;
        cfg.heartbeat_ticks = 2;
        cfg.pre_vote = false;
        cfg.check_quorum = false;
        cfg.seed = seed;
        let mut sim = Sim::with_config(ids, cfg, seed);
        sim.faults = Faults::lossy();
        sim.compact_every = compaction_for(seed);
        let mut rng = Rng::new(seed);
        for t in 0..400 {
            sim.step();
            let target = sim.ids[rng.below(5) as usize].clone();
            match rng.below(100) {
                0 if sim.is_up(&target) => sim.crash(&target),
                1..=3 if !sim.is_up(&target) => sim.restart(&target),
                4 => sim.isolate(&target),
                5 | 6 => sim.heal(),
                7..=30 if sim.is_up(&target) => {
                    sim.propose(&target, format!("{seed}/{t}").as_bytes());
                }
                _ => {}
            }
        }
    }
}

/// The simulator's safety checks against the core's seeded bugs: how many
/// seeds of the chaos sweep it takes to expose each (evidence for the
/// harness self-test, which must find them from outside).
#[cfg(feature = "bugs")]
#[test]
fn the_chaos_sweep_exposes_the_cores_seeded_bugs() {
    use super::SeededBugs;
    let seeds: u64 = std::env::var("RAFT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let cases = [
        (
            "vote-any-log",
            SeededBugs {
                vote_any_log: true,
                ..SeededBugs::default()
            },
        ),
        (
            "commit-old-term",
            SeededBugs {
                commit_old_term: true,
                ..SeededBugs::default()
            },
        ),
    ];
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut found = Vec::new();
    for (name, bugs) in cases {
        let failing = (0..seeds)
            .filter(|&seed| {
                let nodes = if seed % 2 == 0 { 3 } else { 5 };
                std::panic::catch_unwind(|| chaos_with(seed, nodes, 400, bugs)).is_err()
            })
            .count();
        found.push((name, failing));
    }
    // Figure 8 needs index 2 to reach a follower without the new leader's
    // own entry: a scripted schedule (one entry per message, one message
    // dropped) shows the bug is real where random faults never do.
    let figure_8 = std::panic::catch_unwind(|| {
        figure_8_scenario(SeededBugs {
            commit_old_term: true,
            ..SeededBugs::default()
        })
    });
    std::panic::set_hook(quiet);
    for (name, failing) in &found {
        eprintln!("{name}: the safety checks failed on {failing} of {seeds} seeds");
    }
    assert!(found[0].1 > 0, "vote-any-log was never caught: {found:?}");
    assert!(
        figure_8.is_err(),
        "commit-old-term survived the Figure 8 schedule"
    );
}
