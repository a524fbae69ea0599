//! The rules of Figure 2 one message at a time, on a single core.

use super::*;

/// A lone core `n1` with peers `n2`, `n3`, no pre-vote or lease, so the rules
/// of the paper can be checked one by one.
pub(super) fn core_with(term: u64, voted_for: Option<&str>, log: Vec<Entry>) -> Raft {
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

pub(super) fn msg(from: &str, term: u64, body: Body) -> Message {
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

pub(super) fn append(
    from: &str,
    term: u64,
    prev: (u64, u64),
    entries: Vec<Entry>,
    commit: u64,
) -> Message {
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
