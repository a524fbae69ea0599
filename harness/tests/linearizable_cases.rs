//! Hand-written histories, one rule each, with the verdict they must get.
//! Format: see `common/mod.rs` (time process type f key value ...).

mod common;

use std::time::{Duration, Instant};

use common::histories::{check, history, lin, lin_options, lin_verdict};
use harness::check::Verdict::{self, Invalid, Unknown, Valid};
use harness::check::linearizable::{self, LinearizableOptions};

fn expect(verdict: Verdict, text: &str) {
    let got = lin(text);
    assert_eq!(got.valid, verdict, "history:\n{text}\nresult: {got:#?}");
}

// --- Real-time order and concurrency ---------------------------------------

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    let with_read = |v: &str| {
        format!(
            "0 0 invoke write x 1
             2 1 invoke read x
             8 1 ok read x {v}
             10 0 ok write x 1"
        )
    };
    expect(Valid, &with_read("nil"));
    expect(Valid, &with_read("1"));
    expect(Invalid, &with_read("2"));
}

#[test]
fn concurrent_writes_may_be_ordered_either_way() {
    let writes = "0 0 invoke write x 1
                  0 1 invoke write x 2
                  10 0 ok write x 1
                  10 1 ok write x 2";
    expect(
        Valid,
        &format!("{writes}\n11 2 invoke read x\n12 2 ok read x 1"),
    );
    expect(
        Valid,
        &format!("{writes}\n11 2 invoke read x\n12 2 ok read x 2"),
    );
    // Once both are done the order is fixed: 1 then 2 cannot be read in turn.
    expect(
        Invalid,
        &format!(
            "{writes}
             11 2 invoke read x
             12 2 ok read x 1
             13 2 invoke read x
             14 2 ok read x 2"
        ),
    );
}

#[test]
fn reads_during_concurrent_writes_cannot_flip_back() {
    // 1, 2, 1 needs the state to go back to 1, but 1 is written once.
    expect(
        Invalid,
        "0 0 invoke write x 1
         0 1 invoke write x 2
         1 2 invoke read x
         2 2 ok read x 1
         3 2 invoke read x
         4 2 ok read x 2
         5 2 invoke read x
         6 2 ok read x 1
         10 0 ok write x 1
         10 1 ok write x 2",
    );
    // Overlapping reads may be ordered among themselves: 2, 1, 1 works.
    expect(
        Valid,
        "0 0 invoke write x 1
         0 1 invoke write x 2
         1 2 invoke read x
         1 3 invoke read x
         1 4 invoke read x
         9 2 ok read x 1
         9 3 ok read x 2
         9 4 ok read x 1
         10 0 ok write x 1
         10 1 ok write x 2",
    );
}

#[test]
fn the_initial_state_is_absent() {
    expect(Valid, "0 0 invoke read x\n1 0 ok read x nil");
    expect(Invalid, "0 0 invoke read x\n1 0 ok read x 0");
}

#[test]
fn a_stale_read_is_invalid() {
    expect(
        Invalid,
        "0 0 invoke write x 1
         1 0 ok write x 1
         2 0 invoke write x 2
         3 0 ok write x 2
         4 1 invoke read x
         5 1 ok read x 1",
    );
}

#[test]
fn a_lost_write_is_invalid() {
    // The write was acknowledged; a read that starts after it sees nothing.
    expect(
        Invalid,
        "0 0 invoke write x 1
         1 0 ok write x 1
         5 1 invoke read x
         6 1 ok read x nil",
    );
    // The same after a cas: the final read still sees the value before it.
    expect(
        Invalid,
        "0 0 invoke write x 1
         1 0 ok write x 1
         2 0 invoke cas x 1->2
         3 0 ok cas x 1->2
         9 1 invoke read x
         10 1 ok read x 1",
    );
}

// --- Equal timestamps ---------------------------------------------------------

#[test]
fn ops_touching_at_one_instant_count_as_concurrent() {
    // The read returns at 5, the instant the write is invoked: either order.
    expect(
        Valid,
        "0 1 invoke read x
         5 1 ok read x 1
         5 0 invoke write x 1
         9 0 ok write x 1",
    );
    // One nanosecond earlier, the read is strictly before the write.
    expect(
        Invalid,
        "0 1 invoke read x
         4 1 ok read x 1
         5 0 invoke write x 1
         9 0 ok write x 1",
    );
    // And the other way round: a write completing when a read starts.
    expect(
        Valid,
        "0 0 invoke write x 1
         5 0 ok write x 1
         5 1 invoke read x
         6 1 ok read x nil",
    );
}

// --- Unknown outcomes (info, no completion) ------------------------------------

#[test]
fn an_info_write_may_be_observed_late() {
    let base = "0 0 invoke write x 1
                1 0 ok write x 1
                2 1 invoke write x 2
                3 1 info write x 2 error=timeout";
    expect(
        Valid,
        &format!("{base}\n100 2 invoke read x\n101 2 ok read x 2"),
    );
    // Not yet at 100, then at 200: it took effect in between.
    expect(
        Valid,
        &format!(
            "{base}
             100 2 invoke read x
             101 2 ok read x 1
             200 2 invoke read x
             201 2 ok read x 2"
        ),
    );
    // Once seen, it cannot be unseen.
    expect(
        Invalid,
        &format!(
            "{base}
             100 2 invoke read x
             101 2 ok read x 2
             200 2 invoke read x
             201 2 ok read x 1"
        ),
    );
}

#[test]
fn an_info_write_may_never_happen() {
    expect(
        Valid,
        "0 0 invoke write x 1
         1 0 ok write x 1
         2 1 invoke write x 2
         3 1 info write x 2
         100 2 invoke read x
         101 2 ok read x 1",
    );
}

#[test]
fn an_info_write_cannot_take_effect_before_its_invocation() {
    expect(
        Invalid,
        "0 2 invoke read x
         1 2 ok read x 2
         2 1 invoke write x 2
         3 1 info write x 2",
    );
}

#[test]
fn an_invocation_without_completion_counts_as_info() {
    expect(
        Valid,
        "0 0 invoke write x 1
         1 0 ok write x 1
         2 1 invoke write x 2
         100 2 invoke read x
         101 2 ok read x 2",
    );
}

#[test]
fn a_pending_cas_may_or_may_not_take_effect() {
    let base = "0 0 invoke write x 1
                1 0 ok write x 1
                2 1 invoke cas x 1->2";
    expect(
        Valid,
        &format!("{base}\n10 2 invoke read x\n11 2 ok read x 2"),
    );
    expect(
        Valid,
        &format!("{base}\n10 2 invoke read x\n11 2 ok read x 1"),
    );
    expect(
        Invalid,
        &format!(
            "{base}
             10 2 invoke read x
             11 2 ok read x 2
             12 2 invoke read x
             13 2 ok read x 1"
        ),
    );
    // It can only apply in a state where the value is 1.
    expect(
        Invalid,
        "0 0 invoke write x 3
         1 0 ok write x 3
         2 1 invoke cas x 1->2
         10 2 invoke read x
         11 2 ok read x 2",
    );
}

#[test]
fn unacknowledged_writes_in_bulk_stay_cheap() {
    // Forty writes that timed out, none ever seen, then a hundred reads:
    // the search must not try subsets of the forty (2^40 of them would
    // exhaust the budget of `lin_options` and make the verdict unknown).
    let mut text = String::from("0 0 invoke write x 0\n1 0 ok write x 0\n");
    for p in 1..=40 {
        text += &format!(
            "{p} {p} invoke write x {p}\n{} {p} info write x {p}\n",
            p + 1
        );
    }
    for i in 0..100 {
        let t = 100 + 2 * i;
        text += &format!("{t} 99 invoke read x\n{} 99 ok read x 0\n", t + 1);
    }
    expect(Valid, &text);
}

#[test]
fn reads_with_unknown_outcome_say_nothing() {
    expect(
        Valid,
        "0 0 invoke read x
         1 0 info read x
         2 1 invoke read x
         3 1 ok read x nil",
    );
}

// --- Failures -------------------------------------------------------------------

#[test]
fn a_failed_write_did_not_happen() {
    expect(
        Invalid,
        "0 0 invoke write x 1
         1 0 ok write x 1
         2 1 invoke write x 2
         3 1 fail write x 2 error=not-leader
         4 2 invoke read x
         5 2 ok read x 2",
    );
}

#[test]
fn a_cas_mismatch_is_a_read_of_another_value() {
    let base = "0 0 invoke write x 1\n1 0 ok write x 1\n";
    // Expected 5, the value was 1: a mismatch is right.
    expect(
        Valid,
        &format!("{base}2 1 invoke cas x 5->2\n3 1 fail cas x 5->2 error=mismatch"),
    );
    // Expected 1 and the value was 1: a mismatch is impossible.
    expect(
        Invalid,
        &format!("{base}2 1 invoke cas x 1->2\n3 1 fail cas x 1->2 error=mismatch"),
    );
    // The value it reports seeing must be the value.
    expect(
        Valid,
        &format!("{base}2 1 invoke cas x 5->2\n3 1 fail cas x 5->2 error=mismatch actual=1"),
    );
    expect(
        Invalid,
        &format!("{base}2 1 invoke cas x 5->2\n3 1 fail cas x 5->2 error=mismatch actual=nil"),
    );
    // Absent is a value too.
    expect(
        Invalid,
        "0 1 invoke cas x nil->2\n1 1 fail cas x nil->2 error=mismatch",
    );
    // Any other failure is no effect and no information.
    expect(
        Valid,
        &format!("{base}2 1 invoke cas x 1->2\n3 1 fail cas x 1->2 error=not-leader"),
    );
}

#[test]
fn a_successful_cas_needs_the_expected_value() {
    let base = "0 0 invoke write x 1\n1 0 ok write x 1\n";
    expect(
        Valid,
        &format!(
            "{base}2 1 invoke cas x 1->2\n3 1 ok cas x 1->2\n4 2 invoke read x\n5 2 ok read x 2"
        ),
    );
    expect(
        Invalid,
        &format!("{base}2 1 invoke cas x 3->2\n3 1 ok cas x 3->2"),
    );
    expect(Valid, "0 1 invoke cas x nil->2\n1 1 ok cas x nil->2");
}

// --- Append model -----------------------------------------------------------------

const TWO_APPENDS: &str = "0 0 invoke append l 1
                           1 0 ok append l 1
                           2 0 invoke append l 2
                           3 0 ok append l 2";

fn after_two_appends(read: &str) -> String {
    format!("{TWO_APPENDS}\n4 1 invoke read l\n5 1 ok read l {read}")
}

#[test]
fn appends_are_read_in_order() {
    expect(Valid, &after_two_appends("[1,2]"));
    expect(Valid, "0 1 invoke read l\n1 1 ok read l nil");
    expect(Valid, "0 1 invoke read l\n1 1 ok read l []");
}

#[test]
fn values_seen_out_of_order_are_invalid() {
    expect(Invalid, &after_two_appends("[2,1]"));
}

#[test]
fn a_duplicated_append_is_invalid() {
    expect(Invalid, &after_two_appends("[1,1,2]"));
    expect(Invalid, &after_two_appends("[1,2,2]"));
}

#[test]
fn a_lost_append_is_invalid() {
    expect(Invalid, &after_two_appends("[1]"));
    expect(Invalid, &after_two_appends("[2]"));
}

#[test]
fn concurrent_appends_may_land_either_way_but_once() {
    let appends = "0 0 invoke append l 1
                   0 1 invoke append l 2
                   10 0 ok append l 1
                   10 1 ok append l 2";
    let read = |t: u64, v: &str| format!("{t} 2 invoke read l\n{} 2 ok read l {v}\n", t + 1);
    expect(Valid, &format!("{appends}\n{}", read(11, "[2,1]")));
    expect(Valid, &format!("{appends}\n{}", read(11, "[1,2]")));
    expect(
        Invalid,
        &format!("{appends}\n{}{}", read(11, "[1,2]"), read(13, "[2,1]")),
    );
}

#[test]
fn an_info_append_may_land_late_or_never() {
    let base = "0 0 invoke append l 1
                1 0 ok append l 1
                2 1 invoke append l 2
                3 1 info append l 2";
    let read = |t: u64, v: &str| format!("{t} 2 invoke read l\n{} 2 ok read l {v}\n", t + 1);
    expect(Valid, &format!("{base}\n{}", read(50, "[1]")));
    expect(
        Valid,
        &format!("{base}\n{}{}", read(50, "[1]"), read(60, "[1,2]")),
    );
    expect(
        Invalid,
        &format!("{base}\n{}{}", read(50, "[1,2]"), read(60, "[1]")),
    );
    // An info append that never shows leaves later appends alone, and may
    // also land after them.
    let info_first = "0 0 invoke append l 1
                      1 0 info append l 1
                      5 1 invoke append l 2
                      6 1 ok append l 2";
    expect(Valid, &format!("{info_first}\n{}", read(7, "[2]")));
    expect(Valid, &format!("{info_first}\n{}", read(7, "[2,1]")));
    expect(Valid, &format!("{info_first}\n{}", read(7, "[1,2]")));
}

#[test]
fn appends_in_a_dead_end_order_are_not_all_tried() {
    // Fourteen concurrent appends, read (by a read as long as them) after
    // seven and (later) after all fourteen, in the reverse of their call
    // order. An order no read shows is a dead end the moment it starts;
    // following it through every order of the other appends would be 14!
    // paths and exhaust the small cache below, making the verdict unknown.
    let mut text = String::from("0 20 invoke read l\n");
    for p in 1..=14 {
        text += &format!("{p} {p} invoke append l {p}\n");
    }
    for p in 1..=14 {
        text += &format!("{} {p} ok append l {p}\n", 50 + p);
    }
    text += "100 20 ok read l [14,13,12,11,10,9,8]\n";
    text += "101 21 invoke read l\n102 21 ok read l [14,13,12,11,10,9,8,7,6,5,4,3,2,1]\n";
    let opts = LinearizableOptions {
        memo_bytes: 1 << 20,
        ..lin_options()
    };
    let r = linearizable::check(&history(&text), &opts);
    assert_eq!(r.valid, Valid, "{r:#?}");
    // With 7 and 8 swapped in the last read the two reads disagree (8 came
    // last in the first): invalid, and decided, not given up on.
    let bad = text.replace(
        "[14,13,12,11,10,9,8,7,6,5,4,3,2,1]",
        "[14,13,12,11,10,9,7,8,6,5,4,3,2,1]",
    );
    let r = linearizable::check(&history(&bad), &opts);
    assert_eq!(r.valid, Invalid, "{r:#?}");
}

// --- Evidence -----------------------------------------------------------------------

#[test]
fn a_failure_names_the_key_the_op_the_prefix_and_a_window() {
    let r = lin("0 0 invoke write x 1
                 1 0 ok write x 1
                 2 1 invoke write x 2
                 3 2 invoke read x
                 4 1 ok write x 2
                 5 2 ok read x 2
                 6 nemesis info start-partition
                 7 0 invoke read x
                 8 0 ok read x 1
                 9 3 invoke write y 1
                 10 3 ok write y 1");
    assert_eq!(r.valid, Invalid);
    assert_eq!(r.keys, 2);
    assert_eq!(r.failures.len(), 1, "only x fails: {r:#?}");
    let f = &r.failures[0];
    assert_eq!(f.key, "x");
    assert_eq!(f.model, "register");
    assert_eq!(f.op.index, 7, "the stale read cannot be linearized");
    assert_eq!(f.op.value, serde_json::json!(1));
    assert_eq!(
        f.prefix,
        vec![0, 2, 3],
        "w1, w2, r2 linearize; r1 cannot follow"
    );
    let window: Vec<u64> = f.window.iter().map(|o| o.index).collect();
    assert!(window.contains(&7) && window.contains(&2), "{window:?}");
    assert_eq!(
        f.explanation,
        "read of x returned 1 at 8 ns, but the only value it could see was 2 (written by op 2 at 4 ns); \
         it missed the acknowledged write op 2 (a lost write, or a stale read)"
    );
}

#[test]
fn the_failure_is_reported_at_the_deepest_point_of_the_search() {
    // The search first tries w1 then w2 and fails at once on the read of 1;
    // the other order gets further: w2, w1, read 1, and fails on the read of 2.
    let r = lin("0 0 invoke write x 1
                 0 1 invoke write x 2
                 10 0 ok write x 1
                 10 1 ok write x 2
                 11 2 invoke read x
                 12 2 ok read x 1
                 13 2 invoke read x
                 14 2 ok read x 2");
    let f = &r.failures[0];
    assert_eq!(f.op.index, 6);
    assert_eq!(f.prefix, vec![1, 0, 4]);
    assert_eq!(
        f.explanation,
        "read of x returned 2 at 14 ns, but the only value it could see was 1 (written by op 0 at 10 ns); \
         it missed the acknowledged write op 0 (a lost write, or a stale read)"
    );
}

#[test]
fn an_explanation_lists_every_value_the_read_could_see() {
    let r = lin("0 0 invoke write x 1
                 0 1 invoke write x 2
                 9 0 ok write x 1
                 9 1 ok write x 2
                 10 2 invoke read x
                 11 2 ok read x 3");
    let f = &r.failures[0];
    assert!(
        f.explanation.contains("the only values it could see were")
            && f.explanation.contains("1 (written by op 0")
            && f.explanation.contains("2 (written by op 1"),
        "{}",
        f.explanation
    );
    assert_eq!(
        f.lost_writes,
        vec![0, 1],
        "both writes were acknowledged before the read"
    );
}

// --- Budgets -------------------------------------------------------------------------

const STALE: &str = "0 0 invoke write x 1
                     1 0 ok write x 1
                     2 0 invoke write x 2
                     3 0 ok write x 2
                     4 1 invoke read x
                     5 1 ok read x 1";

#[test]
fn an_exhausted_time_budget_is_unknown_never_a_verdict() {
    let opts = LinearizableOptions {
        deadline: Instant::now(),
        budget: Duration::ZERO,
        ..lin_options()
    };
    let r = linearizable::check(&history(STALE), &opts);
    assert_eq!(r.valid, Unknown);
    assert!(r.failures.is_empty());
    assert_eq!(r.unknown_keys.len(), 1);
    assert!(r.unknown_keys[0].reason.contains("time budget"), "{r:?}");
}

#[test]
fn an_exhausted_memory_budget_is_unknown() {
    let opts = LinearizableOptions {
        memo_bytes: 0,
        ..lin_options()
    };
    let r = linearizable::check(&history(STALE), &opts);
    assert_eq!(r.valid, Unknown);
    assert!(r.unknown_keys[0].reason.contains("cache"), "{r:?}");
}

// --- Aggregation ----------------------------------------------------------------------

#[test]
fn keys_are_checked_separately_and_any_failure_fails_all() {
    let text = "0 0 invoke write a 1
                1 0 ok write a 1
                2 1 invoke read b
                3 1 ok read b 5
                4 2 invoke read a
                5 2 ok read a 1";
    let r = lin(text);
    assert_eq!(r.valid, Invalid);
    assert_eq!(
        r.failures
            .iter()
            .map(|f| f.key.as_str())
            .collect::<Vec<_>>(),
        vec!["b"]
    );
    assert_eq!(check(text).valid, Invalid);
}

#[test]
fn a_history_where_nothing_succeeded_is_unknown() {
    let results = check(
        "0 0 invoke write x 1
         1 0 info write x 1
         2 1 invoke read x
         3 1 fail read x error=not-leader",
    );
    assert_eq!(results.checkers.linearizable.valid, Valid);
    assert_eq!(results.checkers.stats.valid, Unknown);
    assert_eq!(results.valid, Unknown);
}

#[test]
fn nemesis_ops_are_ignored() {
    assert_eq!(
        lin_verdict(
            "0 nemesis info start-kill
             1 0 invoke write x 1
             2 nemesis info stop-kill
             3 0 ok write x 1"
        ),
        Valid
    );
}

/// Once a key is found invalid the verdict is settled: a search still
/// running stops at the cutoff and says why, instead of using the whole
/// budget (an invalid history can make a search exhaustive).
#[test]
fn a_cutoff_stops_searches_once_the_verdict_is_settled() {
    use harness::check::linearizable::register::{RegisterModel, RegisterOp};
    use harness::check::linearizable::{Cutoff, GiveUp, Limits, SearchOp, SearchResult, search};
    // Twenty concurrent writes and a read nobody wrote: every order fails.
    let mut ops: Vec<SearchOp<RegisterOp>> = (0..20)
        .map(|v| SearchOp {
            call: 0,
            ret: Some(100),
            op: RegisterOp::Write(v),
        })
        .collect();
    ops.push(SearchOp {
        call: 0,
        ret: Some(100),
        op: RegisterOp::Read(Some(99)),
    });
    let cutoff = Cutoff::default();
    cutoff.set_after(std::time::Duration::ZERO);
    let limits = Limits {
        deadline: std::time::Instant::now() + std::time::Duration::from_secs(60),
        memo_bytes: 1 << 30,
        cutoff: Some(&cutoff),
    };
    let started = std::time::Instant::now();
    let r = search(&mut RegisterModel::default(), &ops, &limits);
    assert_eq!(r, SearchResult::Unknown(GiveUp::Cutoff));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
