//! Log replication in whole simulated clusters: catching up from far
//! behind, and the paper's Figure 8 (the rules one message at a time, and
//! the repair of a divergent log, are in `testdata/`).

use super::*;

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
fn figure_8_scenario_in_a_cluster() {
    figure_8(SeededBugs::default()).unwrap();
}

/// Figure 8 of the paper played in the simulator. An error names what went
/// wrong: a safety property that broke, or a step that did not happen.
pub(super) fn figure_8(bugs: SeededBugs) -> Result<(), String> {
    let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
    // Figure 8 (c): n1 or n2 leads term 4 with (2, term 2) from term 2 and
    // n5 holds (2, term 3) from its short leadership in term 3.
    let mut cfg = sim::config(8);
    cfg.bugs = bugs;
    // One entry per AppendEntries, so index 2 can arrive without index 3.
    cfg.max_append_bytes = 1;
    let mut sim = Sim::with_config(sim::ids(5), cfg, 8);
    sim.record_violations = true;
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
            && matches!(&m.body, Body::AppendRequest(a) if a.entries.iter().any(|e| e.index == LogIndex(3)))
    }));
    check(sim.run_until(500, |s| s.leader().is_some()), "no leader")?;
    let leader = sim.leader().unwrap();
    check(
        (leader == id("n1") || leader == id("n2")) && sim.raft(&leader).term() == Term(4),
        "n1 or n2 leads term 4",
    )?;
    let ok = sim.run_until(300, |s| {
        s.raft(&id("n3")).log().term(LogIndex(2)) == Some(Term(2))
    });
    check(ok, "index 2 of term 2 reaches n3: now on a majority")?;
    sim.run(50);
    check(
        sim.raft(&leader).log().committed < LogIndex(2),
        "Figure 8: the leader must not commit an old-term entry by counting replicas",
    )?;
    // (d): both term-4 holders crash; n5 wins with n3 and n4 and overwrites index 2.
    sim.crash(&id("n1"));
    sim.crash(&id("n2"));
    sim.heal();
    sim.drop_if = None;
    let ok = sim.run_until(1000, |s| {
        s.leader() == Some(NodeId::new("n5")) && s.applied.contains_key(&LogIndex(2))
    });
    check(ok, "n5 leads and commits")?;
    check(
        sim.applied[&LogIndex(2)].0 == Term(3),
        "index 2 is n5's entry everywhere",
    )?;
    // The crashed nodes come back and take n5's log; the sim checks nobody applies (2, term 2).
    sim.restart(&id("n1"));
    sim.restart(&id("n2"));
    check(sim.run_until(1000, |s| s.converged()), "all converge")?;
    sim.violation.map_or(Ok(()), Err)
}
