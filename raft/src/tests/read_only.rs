//! ReadIndex rounds in a simulated cluster.

use crate::sim::Sim;

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
