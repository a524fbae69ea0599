//! Leader election: the timer on one core (the rules that take loops or
//! randomness to show; the others are in `testdata/`), then whole clusters.

use super::*;

/// A lone core `n1` in `term` with peers `n2`, `n3` and an empty log, no
/// pre-vote or lease, its first `Ready` taken.
fn core_in(term: u64) -> Raft {
    let mut cfg = Config::new(id("n1"), vec![id("n2"), id("n3")]);
    cfg.election_ticks = 10;
    cfg.heartbeat_ticks = 2;
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    let hs = HardState {
        term: Term(term),
        voted_for: None,
    };
    let mut r = Raft::new(cfg, hs, SnapshotMeta::default(), Vec::new());
    r.ready();
    r
}

fn to_n1(from: &str, term: u64, body: Body) -> Message {
    Message {
        from: id(from),
        to: id("n1"),
        term: Term(term),
        body,
    }
}

/// A vote request from a candidate with an empty log.
fn vote_request(from: &str, term: u64) -> Message {
    let req = VoteRequest {
        last_log_index: LogIndex(0),
        last_log_term: Term(0),
        pre_vote: false,
        transfer: false,
        incarnation: 0,
    };
    to_n1(from, term, Body::VoteRequest(req))
}

fn heartbeat(from: &str, term: u64) -> Message {
    let req = AppendRequest {
        prev_log_index: LogIndex(0),
        prev_log_term: Term(0),
        entries: Vec::new(),
        leader_commit: LogIndex(0),
        read_ctx: 0,
    };
    to_n1(from, term, Body::AppendRequest(req))
}

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
fn granting_a_vote_resets_the_election_timer() {
    let mut r = core_in(1);
    let timeout = r.election_timeout();
    for _ in 0..timeout - 1 {
        r.tick();
    }
    r.step(vote_request("n2", 2));
    r.ready();
    for _ in 0..9 {
        r.tick();
    }
    assert_eq!(r.role(), Role::Follower, "timer restarted at the grant");
}

#[test]
fn valid_append_resets_the_election_timer_and_stale_does_not() {
    let mut r = core_in(3);
    for _ in 0..30 {
        for _ in 0..5 {
            r.tick();
        }
        r.step(heartbeat("n2", 3));
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
        r.step(heartbeat("n3", 2));
    }
    assert_eq!(
        r.role(),
        Role::Candidate,
        "a deposed leader's heartbeats do not count"
    );
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
