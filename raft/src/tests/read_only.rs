//! ReadIndex (§6.4 of the thesis) in simulated clusters.

use super::*;

/// Reads that arrive while a round is in flight wait for it to end and
/// then share the next one: no extra heartbeats meanwhile.
#[test]
fn reads_during_a_round_wait_and_share_the_next() {
    let mut sim = Sim::new(3, 4);
    assert!(sim.run_until(500, |s| s.leader().is_some()));
    let leader = sim.leader().unwrap();
    sim.propose(&leader, b"w");
    sim.run(10);
    let before = sim.messages_in_flight();
    sim.raft_mut(&leader).read_index(1).unwrap();
    sim.process(&leader);
    assert_eq!(
        sim.messages_in_flight() - before,
        1,
        "one heartbeat, to a majority"
    );
    for ctx in 2..6 {
        sim.raft_mut(&leader).read_index(ctx).unwrap();
    }
    sim.process(&leader);
    assert!(!sim.raft(&leader).has_ready());
    assert_eq!(
        sim.messages_in_flight() - before,
        1,
        "no second round while the first is in flight"
    );
    assert!(sim.run_until(50, |s| s.nodes[&leader].reads.len() == 5));
    let reads = &sim.nodes[&leader].reads;
    assert_eq!(reads[0].0, 1);
    // The later reads were confirmed by a later round, at a point no
    // earlier than the first one's.
    assert!(reads[1..].iter().all(|r| r.1 >= reads[0].1));
}

/// Rounds go to the followers that answer; when the one chosen is gone,
/// the periodic heartbeat confirms the round and the other takes over.
#[test]
fn a_round_whose_follower_is_gone_is_confirmed_by_the_next_heartbeat() {
    let mut sim = Sim::new(5, 9);
    assert!(sim.run_until(500, |s| s.leader().is_some()));
    let leader = sim.leader().unwrap();
    sim.propose(&leader, b"w");
    sim.run(20);
    let before = sim.messages_in_flight();
    sim.raft_mut(&leader).read_index(1).unwrap();
    sim.process(&leader);
    assert_eq!(
        sim.messages_in_flight() - before,
        2,
        "two of four followers"
    );
    assert!(sim.run_until(50, |s| s.nodes[&leader].reads.len() == 1));

    // Crash the followers the next round would go to.
    let mut chosen: Vec<_> = sim.raft(&leader).config().peers.clone();
    chosen.sort_by_key(|p| std::cmp::Reverse(sim.raft(&leader).progress()[p].read_acked));
    for p in chosen.iter().take(2) {
        sim.crash(p);
    }
    sim.raft_mut(&leader).read_index(2).unwrap();
    let heartbeat = u64::from(sim.raft(&leader).config().heartbeat_ticks);
    assert!(
        sim.run_until(3 * heartbeat + 5, |s| s.nodes[&leader].reads.len() == 2),
        "the round was not confirmed by the survivors"
    );
    // And the next round goes to the survivors straight away.
    sim.raft_mut(&leader).read_index(3).unwrap();
    assert!(sim.run_until(5, |s| s.nodes[&leader].reads.len() == 3));
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
