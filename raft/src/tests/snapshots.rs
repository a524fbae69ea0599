//! Snapshots and log compaction (§7 of the paper, chapter 5 of the thesis):
//! first the follower's and the leader's rules one message at a time, then
//! whole clusters in which the leader compacts while a follower is away.

use super::rules::{append, core_with, msg};
use super::*;

fn meta(index: u64, term: u64) -> SnapshotMeta {
    SnapshotMeta {
        index: LogIndex(index),
        term: Term(term),
        members: vec![id("n1"), id("n2"), id("n3")],
    }
}

fn install(from: &str, term: u64, index: u64, snap_term: u64) -> Message {
    msg(from, term, Body::InstallSnapshot(meta(index, snap_term)))
}

/// The single snapshot reply in a Ready, with the term it carries. It must
/// wait for persistence: it promises the snapshot is installed.
fn snapshot_reply(rd: &Ready) -> (bool, LogIndex, Term) {
    assert!(rd.messages.is_empty(), "{:?}", rd.messages);
    assert_eq!(
        rd.persisted_messages.len(),
        1,
        "{:?}",
        rd.persisted_messages
    );
    match rd.persisted_messages[0].body {
        Body::SnapshotResponse(SnapshotResponse { accepted, index }) => {
            (accepted, index, rd.persisted_messages[0].term)
        }
        ref b => panic!("not a snapshot reply: {b:?}"),
    }
}

// ---- the follower --------------------------------------------------------

#[test]
fn a_snapshot_beyond_the_log_replaces_it() {
    let mut r = core_with(2, None, log_of(&[1, 1, 2]));
    r.step(install("n2", 2, 10, 2));
    let rd = r.ready();
    assert_eq!(
        rd.snapshot.as_ref().map(|s| s.meta.clone()),
        Some(meta(10, 2))
    );
    assert_eq!(snapshot_reply(&rd), (true, LogIndex(10), Term(2)));
    // Nothing is applied from the log: the image replaces the state machine.
    assert!(rd.committed.is_empty());
    let log = r.log();
    assert_eq!((log.last_index(), log.last_term()), (LogIndex(10), Term(2)));
    assert_eq!((log.committed, log.applied), (LogIndex(10), LogIndex(10)));
    // The old log must go from disk as well.
    assert_eq!(rd.truncate_from, Some(LogIndex(11)));
    assert_eq!(r.status().snapshot_index, LogIndex(10));
}

#[test]
fn an_old_duplicated_or_reordered_snapshot_is_refused() {
    let mut r = core_with(2, None, vec![]);
    r.step(install("n2", 2, 10, 2));
    assert!(r.ready().snapshot.is_some());
    // The same snapshot again (a retransmission): installing it twice
    // would roll back whatever was applied since.
    r.step(install("n2", 2, 10, 2));
    let rd = r.ready();
    assert_eq!(rd.snapshot, None);
    assert_eq!(snapshot_reply(&rd), (false, LogIndex(10), Term(2)));
    // An older one arriving late.
    r.step(install("n2", 2, 6, 1));
    let rd = r.ready();
    assert_eq!(rd.snapshot, None);
    assert_eq!(snapshot_reply(&rd), (false, LogIndex(10), Term(2)));
    // Entries after the snapshot arrive, commit and apply; a snapshot at or
    // below the commit index is still refused.
    r.step(append(
        "n2",
        2,
        (10, 2),
        vec![entry(11, 2), entry(12, 2)],
        12,
    ));
    let rd = r.ready();
    assert_eq!(rd.committed.len(), 2);
    r.step(install("n2", 2, 12, 2));
    let rd = r.ready();
    assert_eq!(rd.snapshot, None);
    assert_eq!(snapshot_reply(&rd), (false, LogIndex(12), Term(2)));
    assert_eq!(r.log().last_index(), LogIndex(12));
    // A newer one is installed.
    r.step(install("n2", 2, 20, 2));
    assert_eq!(r.ready().snapshot.map(|s| s.meta.index), Some(LogIndex(20)));
}

#[test]
fn a_snapshot_the_log_already_holds_commits_and_keeps_what_follows() {
    // We hold (3, term 2) and two entries after it: nothing to install.
    let mut r = core_with(2, None, log_of(&[1, 1, 2, 2, 2]));
    r.step(install("n2", 2, 3, 2));
    let rd = r.ready();
    assert_eq!(rd.snapshot, None);
    assert_eq!(snapshot_reply(&rd), (true, LogIndex(3), Term(2)));
    // The prefix is applied from the log, and the entries after it stay.
    assert_eq!(rd.committed, log_of(&[1, 1, 2]));
    assert_eq!(r.log().last_index(), LogIndex(5));
    assert_eq!(rd.truncate_from, None);
}

#[test]
fn a_snapshot_that_conflicts_with_the_log_replaces_it_and_the_reply_claims_no_more() {
    // Our entry 4 is of term 2, the snapshot's of term 3: entries 4 and 5
    // are stale leftovers, and the reply must not count them as matching.
    let mut r = core_with(3, None, log_of(&[1, 1, 2, 2, 2]));
    r.step(install("n2", 3, 4, 3));
    let rd = r.ready();
    assert_eq!(
        rd.snapshot.as_ref().map(|s| s.meta.clone()),
        Some(meta(4, 3))
    );
    assert_eq!(snapshot_reply(&rd), (true, LogIndex(4), Term(3)));
    assert_eq!(r.log().last_index(), LogIndex(4));
    assert_eq!(r.log().term(LogIndex(5)), None);
    assert_eq!(rd.truncate_from, Some(LogIndex(5)));
}

#[test]
fn a_snapshot_from_a_deposed_leader_is_refused_with_the_current_term() {
    let mut r = core_with(5, None, log_of(&[1, 1]));
    r.step(install("n2", 4, 10, 4));
    let rd = r.ready();
    assert_eq!(rd.snapshot, None);
    let (accepted, _, term) = snapshot_reply(&rd);
    assert!(!accepted);
    assert_eq!(
        term,
        Term(5),
        "the stale leader learns the term and steps down"
    );
    assert_eq!(r.log().last_index(), LogIndex(2));
}

#[test]
fn a_snapshot_from_a_new_term_makes_a_follower_of_the_new_leader() {
    let mut r = core_with(2, Some("n1"), vec![]);
    r.step(install("n3", 4, 8, 3));
    let rd = r.ready();
    assert_eq!(r.term(), Term(4));
    assert_eq!(r.leader(), Some(&id("n3")));
    // The new term is durable before the reply, like the snapshot.
    assert_eq!(rd.hard_state.as_ref().map(|h| h.term), Some(Term(4)));
    assert_eq!(snapshot_reply(&rd), (true, LogIndex(8), Term(4)));
}

// ---- the leader ----------------------------------------------------------

/// n1 leads term 2 over a log of three term-1 entries and its no-op at 4,
/// which n2 has acknowledged; n3 has not answered yet.
fn leader_with_committed_noop() -> Raft {
    let mut r = core_with(1, None, log_of(&[1, 1, 1]));
    for _ in 0..20 {
        r.tick();
    }
    r.step(msg(
        "n2",
        2,
        Body::VoteResponse(VoteResponse {
            granted: true,
            pre_vote: false,
        }),
    ));
    assert_eq!(r.role(), Role::Leader);
    let rd = r.ready();
    let noop = rd.entries.last().unwrap();
    r.on_persisted(noop.index, noop.term);
    r.step(msg("n2", 2, ok_reply(4)));
    assert_eq!(r.ready().committed.len(), 4);
    r
}

fn ok_reply(index: u64) -> Body {
    Body::AppendResponse(AppendResponse {
        success: true,
        index: LogIndex(index),
        conflict_term: Term(0),
        conflict_index: LogIndex(0),
        read_ctx: 0,
        last_log_index: LogIndex(index),
    })
}

fn to_n3(rd: &Ready) -> Vec<Body> {
    rd.messages
        .iter()
        .chain(&rd.persisted_messages)
        .filter(|m| m.to == id("n3"))
        .map(|m| m.body.clone())
        .collect()
}

#[test]
fn the_leader_sends_a_snapshot_for_compacted_entries_then_resumes_the_log() {
    let mut r = leader_with_committed_noop();
    r.compact(meta(4, 2));
    assert_eq!(r.log().first_index(), LogIndex(5));
    // n3 answers the first probe: its log is empty. The entries it needs
    // are gone, so the snapshot goes instead.
    r.step(msg(
        "n3",
        2,
        Body::AppendResponse(AppendResponse {
            success: false,
            index: LogIndex(3),
            conflict_term: Term(0),
            conflict_index: LogIndex(1),
            read_ctx: 0,
            last_log_index: LogIndex(0),
        }),
    ));
    let rd = r.ready();
    assert_eq!(to_n3(&rd), vec![Body::InstallSnapshot(meta(4, 2))]);
    // While the transfer runs, new entries do not go to n3.
    r.propose(Bytes::from_static(b"x")).unwrap();
    let rd = r.ready();
    assert!(to_n3(&rd).is_empty(), "{:?}", to_n3(&rd));
    let last = rd.entries.last().unwrap();
    r.on_persisted(last.index, last.term);
    // Installed: replication resumes right after the snapshot.
    r.step(msg(
        "n3",
        2,
        Body::SnapshotResponse(SnapshotResponse {
            index: LogIndex(4),
            accepted: true,
        }),
    ));
    let rd = r.ready();
    match &to_n3(&rd)[..] {
        [
            Body::AppendRequest(AppendRequest {
                prev_log_index,
                prev_log_term,
                entries,
                ..
            }),
        ] => {
            assert_eq!((*prev_log_index, *prev_log_term), (LogIndex(4), Term(2)));
            assert_eq!(entries.len(), 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_transfer_is_retried() {
    let mut r = leader_with_committed_noop();
    r.compact(meta(4, 2));
    r.step(msg(
        "n3",
        2,
        Body::AppendResponse(AppendResponse {
            success: false,
            index: LogIndex(3),
            conflict_term: Term(0),
            conflict_index: LogIndex(1),
            read_ctx: 0,
            last_log_index: LogIndex(0),
        }),
    ));
    assert_eq!(to_n3(&r.ready()).len(), 1);
    // The transport gave up: the leader probes again, finds the entries
    // still missing and sends the snapshot again.
    r.report_snapshot(&id("n3"), false);
    for _ in 0..2 {
        r.tick();
    }
    let rd = r.ready();
    let bodies = to_n3(&rd);
    assert!(
        bodies
            .iter()
            .any(|b| matches!(b, Body::AppendRequest(AppendRequest { prev_log_index, .. }) if *prev_log_index == LogIndex(4))),
        "{bodies:?}"
    );
    r.step(msg(
        "n3",
        2,
        Body::AppendResponse(AppendResponse {
            success: false,
            index: LogIndex(4),
            conflict_term: Term(0),
            conflict_index: LogIndex(1),
            read_ctx: 0,
            last_log_index: LogIndex(0),
        }),
    ));
    assert_eq!(to_n3(&r.ready()), vec![Body::InstallSnapshot(meta(4, 2))]);
}

#[test]
fn a_late_snapshot_reply_does_not_disturb_the_pipeline() {
    let mut r = leader_with_committed_noop();
    r.step(msg("n3", 2, ok_reply(4)));
    r.ready();
    for i in 0..3 {
        r.propose(Bytes::from(vec![i])).unwrap();
        let rd = r.ready();
        let last = rd.entries.last().unwrap();
        r.on_persisted(last.index, last.term);
    }
    // n3 replicates with appends in flight; a duplicate of an old snapshot
    // reply must not send it back to probing.
    r.step(msg(
        "n3",
        2,
        Body::SnapshotResponse(SnapshotResponse {
            index: LogIndex(2),
            accepted: false,
        }),
    ));
    let n3 = &r.progress()[&id("n3")];
    assert_eq!(n3.state, crate::progress::ProgressState::Replicate);
    assert_eq!(n3.match_index, LogIndex(4));
    assert_eq!(n3.next_index, LogIndex(8));
}

// ---- whole clusters ------------------------------------------------------

#[test]
fn a_follower_cut_off_while_the_leader_compacts_catches_up_by_snapshot_then_log() {
    for seed in 0..10 {
        let mut sim = Sim::new(3, seed);
        sim.compact_every = Some(10);
        let leader = elect(&mut sim);
        let lagger = sim.ids.iter().find(|i| **i != leader).unwrap().clone();
        sim.isolate(&lagger);
        write_n(&mut sim, 45);
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
        let mut sim = Sim::new(3, seed);
        sim.compact_every = Some(10);
        let old = elect(&mut sim);
        let lagger = sim.ids.iter().find(|i| **i != old).unwrap().clone();
        sim.isolate(&lagger);
        write_n(&mut sim, 30);
        let old = sim.leader().unwrap();
        let old_term = sim.raft(&old).term();
        // The snapshot leaves the leader but is still on the wire...
        sim.hold_if = Some(Box::new(|m: &Message| {
            matches!(m.body, Body::InstallSnapshot(_))
        }));
        sim.heal();
        assert!(
            sim.run_until(500, |s| !s.held.is_empty()),
            "seed {seed}: no snapshot sent"
        );
        sim.hold_if = None;
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
        let mut sim = Sim::new(3, seed);
        sim.compact_every = Some(5);
        let leader = elect(&mut sim);
        let lagger = sim.ids.iter().find(|i| **i != leader).unwrap().clone();
        sim.isolate(&lagger);
        write_n(&mut sim, 20);
        sim.hold_if = Some(Box::new(|m: &Message| {
            matches!(m.body, Body::InstallSnapshot(_))
        }));
        sim.heal();
        assert!(sim.run_until(500, |s| !s.held.is_empty()));
        sim.hold_if = None;
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
