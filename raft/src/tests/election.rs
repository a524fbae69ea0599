//! Leader election: the randomized timer on one core, then whole clusters.

use super::*;

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
