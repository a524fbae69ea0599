//! Snapshots and log compaction (§7 of the paper, chapter 5 of the thesis)
//! in whole simulated clusters in which the leader compacts while a
//! follower is away. The rules one message at a time are in
//! `testdata/snapshot_*.txt`.

use super::*;

/// Three nodes, one of them (returned) cut off while the others take
/// `writes` writes, compacting every `compact_every` entries.
fn lagging(seed: u64, compact_every: u64, writes: usize) -> (Sim, NodeId) {
    let mut sim = Sim::new(3, seed);
    sim.compact_every = Some(compact_every);
    let leader = elect(&mut sim);
    let lagger = sim.ids.iter().find(|i| **i != leader).unwrap().clone();
    sim.isolate(&lagger);
    write_n(&mut sim, writes);
    (sim, lagger)
}

/// Heals the cut and holds back the snapshot the leader then sends.
fn hold_the_snapshot(sim: &mut Sim) -> bool {
    sim.hold_if = Some(Box::new(|m: &Message| {
        matches!(m.body, Body::InstallSnapshot(_))
    }));
    sim.heal();
    let sent = sim.run_until(500, |s| !s.held.is_empty());
    sim.hold_if = None;
    sent
}

#[test]
fn a_follower_cut_off_while_the_leader_compacts_catches_up_by_snapshot_then_log() {
    for seed in 0..10 {
        let (mut sim, lagger) = lagging(seed, 10, 45);
        let leader = sim.leader().unwrap();
        let compacted = sim.raft(&leader).log().snapshot().index;
        assert!(
            compacted > sim.raft(&lagger).log().last_index(),
            "seed {seed}: the leader compacted past the lagger's log"
        );
        sim.heal();
        assert!(
            sim.run_until(3000, |s| s.converged()),
            "seed {seed}: no catch-up"
        );
        let node = &sim.nodes[&lagger];
        assert_eq!(node.installs, 1, "seed {seed}: one snapshot installed");
        // After the snapshot, the log: the entries past the snapshot's
        // index came by AppendEntries and were applied one by one.
        let installed = sim.raft(&lagger).log().snapshot().index;
        write_n(&mut sim, 3);
        assert!(sim.run_until(1000, |s| s.converged()));
        let applied = sim.raft(&lagger).log().applied;
        assert!(applied >= LogIndex(installed.0 + 3), "seed {seed}");
        assert_eq!(
            sim.nodes[&lagger].installs, 1,
            "seed {seed}: caught up by the log"
        );
        assert_eq!(sim.nodes[&lagger].applied.len() as u64, applied.0);
    }
}

#[test]
fn a_node_restarting_after_compaction_restores_its_snapshot_and_replays_the_rest() {
    let mut sim = Sim::new(3, 17);
    sim.compact_every = Some(7);
    elect(&mut sim);
    write_n(&mut sim, 30);
    for id in sim.ids.clone() {
        assert!(sim.nodes[&id].compactions > 0, "{id} compacted");
        sim.crash(&id);
    }
    for id in sim.ids.clone() {
        sim.restart(&id);
        // The core starts at the snapshot; the state machine is its image.
        let snap = sim.raft(&id).log().snapshot().index;
        assert!(snap > LogIndex(0));
        assert_eq!(sim.nodes[&id].applied.len() as u64, snap.0);
    }
    write_n(&mut sim, 5);
    assert!(sim.run_until(1000, |s| s.converged()));
}

#[test]
fn leader_change_in_the_middle_of_a_snapshot_transfer() {
    for seed in 0..10 {
        let (mut sim, lagger) = lagging(seed, 10, 30);
        let old = sim.leader().unwrap();
        let old_term = sim.raft(&old).term();
        // The snapshot leaves the leader but is still on the wire...
        assert!(hold_the_snapshot(&mut sim), "seed {seed}: no snapshot sent");
        // ...when the leader crashes; the other two elect a new leader.
        sim.crash(&old);
        assert!(
            sim.run_until(2000, |s| s.leader().is_some_and(|l| l != old
                && s.raft(&l).term() > old_term
                && s.raft(&lagger).term() == s.raft(&l).term())),
            "seed {seed}: no new leader"
        );
        // The old leader's transfer completes late: from an older term, it
        // is refused, whatever the lagger holds by now.
        let installs = sim.nodes[&lagger].installs;
        let applied = sim.raft(&lagger).log().applied;
        for m in std::mem::take(&mut sim.held) {
            assert!(m.term < sim.raft(&lagger).term());
            sim.deliver(m);
        }
        assert_eq!(sim.nodes[&lagger].installs, installs, "seed {seed}");
        assert_eq!(sim.raft(&lagger).log().applied, applied, "seed {seed}");
        // The new leader brings the lagger up to date, by snapshot or log.
        sim.restart(&old);
        write_n(&mut sim, 3);
        assert!(
            sim.run_until(3000, |s| s.converged()),
            "seed {seed}: no convergence"
        );
    }
}

#[test]
fn snapshots_duplicated_and_reordered_on_the_wire_are_harmless() {
    // Every snapshot message is delivered twice, the copies far apart.
    for seed in 0..20 {
        let (mut sim, lagger) = lagging(seed, 5, 20);
        assert!(hold_the_snapshot(&mut sim), "seed {seed}: no snapshot sent");
        let first = sim.held.clone();
        for m in first.clone() {
            sim.deliver(m);
        }
        write_n(&mut sim, 12);
        // The old copies arrive again after newer snapshots and entries.
        let applied = sim.raft(&lagger).log().applied;
        for m in first.into_iter().chain(std::mem::take(&mut sim.held)) {
            sim.deliver(m);
        }
        assert!(
            sim.raft(&lagger).log().applied >= applied,
            "seed {seed}: rolled back"
        );
        assert!(sim.run_until(2000, |s| s.converged()), "seed {seed}");
    }
}
