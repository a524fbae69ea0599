//! Availability: a system that stops answering is broken even if all it
//! ever answered was right. Two rules, both on the history alone:
//!
//! - **Fault-free stretches.** From the nemesis operations, the times when
//!   some fault was in force (a `start-X` until its `stop-X`, a node that
//!   exited on its own until the final `recover`). In each stretch between
//!   them, after a [`GRACE`] for the cluster to elect, restart and let
//!   timed-out requests end, that is at least [`MIN_STRETCH`] long (long
//!   ones in windows of 5 s),
//!   operations must succeed (ok, or a cas that definitely found another
//!   value) at no less than [`MIN_SHARE`] of the reference rate: the
//!   offered rate (`--rate`), or with no limit (0) the best stretch of the
//!   run. A history without its `run.json` is not judged.
//! - **After the final recovery.** Once `recover` healed everything, every
//!   key's final read must succeed, the last within [`RECOVERY_BOUND`].
//!
//! The thresholds were set on the correct node (README, "Seeded bugs"):
//! wide enough that its slowest stretches on a busy machine pass, tight
//! enough that a collapse to a tenth of the rate does not.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::check::Verdict;
use crate::history::op::Payload;
use crate::history::{History, Outcome};

/// After a fault ends, how long before the stretch is judged: an election
/// (at most two timeouts), a restart, and a client deadline (≤ 2 s).
pub const GRACE_NS: u64 = 3_000_000_000;
/// The same, in seconds, for messages.
pub const GRACE: f64 = GRACE_NS as f64 / 1e9;
/// The shortest stretch judged, in seconds (after its grace).
pub const MIN_STRETCH: f64 = 2.0;
/// Long stretches are judged in windows of this many ns.
pub const WINDOW_NS: u64 = 5_000_000_000;
/// The share of the reference rate a fault-free stretch must reach.
pub const MIN_SHARE: f64 = 0.5;
/// Seconds from the final `recover` by which every final read must be done.
pub const RECOVERY_BOUND: f64 = 20.0;
/// Final reads are made by process numbers from here on (the workers never
/// reach them: `run::workers::final_reads`).
const FINAL_READ_PROCESS: u64 = 1_000_000_000;

/// The `availability` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AvailabilityResult {
    /// Invalid when a fault-free stretch, or the recovery, fell below the bound.
    pub valid: Verdict,
    /// Set when there was nothing to judge (no times, no stretch long enough).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Successes per second every stretch is held to (a share of it).
    pub reference_per_s: f64,
    /// Where the reference comes from: `offered rate` or `best stretch`.
    pub reference: String,
    /// Every fault-free stretch judged.
    pub stretches: Vec<Stretch>,
    /// Stretches below the bound, and a recovery that did not complete.
    pub violations: Vec<AvailabilityViolation>,
}

impl Default for AvailabilityResult {
    fn default() -> Self {
        AvailabilityResult {
            valid: Verdict::Valid,
            skipped: Some("not checked".into()),
            reference_per_s: 0.0,
            reference: String::new(),
            stretches: Vec::new(),
            violations: Vec::new(),
        }
    }
}

/// A judged stretch with no fault in force, in seconds of history time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stretch {
    /// Where the stretch starts, in seconds of history time.
    pub from_s: f64,
    /// Where it ends.
    pub to_s: f64,
    /// Operations that succeeded per second in it.
    pub ok_per_s: f64,
}

/// A collapse.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AvailabilityViolation {
    /// `stretch` or `recovery`.
    pub kind: String,
    /// Where the collapse starts, in seconds of history time.
    pub from_s: f64,
    /// Where it ends.
    pub to_s: f64,
    /// What was reached (successes per second; for recovery, final reads done).
    pub got: f64,
    /// What was required.
    pub wanted: f64,
    /// In words.
    pub explanation: String,
}

/// For a history without its run's options (a plain history file, another
/// tool's): how fast it should have gone is unknown, so nothing is judged.
pub fn not_judged() -> AvailabilityResult {
    skipped("no run.json: the offered rate is unknown")
}

/// Judges `history`; `offered` is the run's `--rate` (0: as fast as
/// possible, judged against the run's best stretch).
pub fn check(history: &History, offered: f64) -> AvailabilityResult {
    let offered = Some(offered);
    let ops = history.ops();
    let (Some(first), Some(last)) = (ops.first(), ops.last()) else {
        return skipped("an empty history");
    };
    if first.time == 0 && last.time == 0 {
        return skipped("the history has no times");
    }
    let recover_at = ops.iter().find_map(|o| match &o.payload {
        Payload::Nemesis(n) if n.f == "recover" => Some(o.time),
        _ => None,
    });
    let load_end = recover_at.unwrap_or(last.time);
    let faults = fault_intervals(history, load_end);

    // Successes by completion time (final reads apart).
    let mut successes: Vec<u64> = Vec::new();
    let mut final_reads: BTreeMap<String, (bool, u64)> = BTreeMap::new();
    let mut keys: BTreeSet<String> = BTreeSet::new();
    let mut load_start = u64::MAX;
    for op in history.operations() {
        let client = op.client();
        keys.insert(client.key.as_str().to_string());
        let done = op.completion.map(|c| c.time);
        let ok = op.outcome() == Outcome::Ok
            || (op.outcome() == Outcome::Fail
                && op.completion_client().is_some_and(|c| c.is_mismatch()));
        if client.process.0 >= FINAL_READ_PROCESS {
            let e = final_reads
                .entry(client.key.as_str().to_string())
                .or_insert((false, 0));
            if ok {
                *e = (true, done.unwrap_or(0));
            }
            continue;
        }
        load_start = load_start.min(op.invoke.time);
        if ok && let Some(t) = done {
            successes.push(t);
        }
    }
    successes.sort_unstable();
    if load_start == u64::MAX {
        return skipped("no client operations");
    }

    // Fault-free stretches: gaps between fault intervals, from the first
    // invocation (itself given a grace, for connections) to the end of load.
    let mut stretches = Vec::new();
    let mut cursor = load_start;
    for &(from, to) in faults.iter().chain(std::iter::once(&(load_end, load_end))) {
        let begin = cursor.saturating_add(GRACE_NS);
        if from > begin && secs(from - begin) >= MIN_STRETCH {
            for (a, b) in windows(begin, from) {
                let n = count_between(&successes, a, b);
                stretches.push(Stretch {
                    from_s: secs(a),
                    to_s: secs(b),
                    ok_per_s: n as f64 / secs(b - a),
                });
            }
        }
        cursor = cursor.max(to);
    }

    let best = stretches.iter().map(|s| s.ok_per_s).fold(0.0, f64::max);
    let (reference_per_s, reference) = match offered {
        Some(r) if r > 0.0 => (r, "offered rate".to_string()),
        _ => (best, "best stretch".to_string()),
    };
    let wanted = MIN_SHARE * reference_per_s;
    let mut violations: Vec<AvailabilityViolation> = stretches
        .iter()
        .filter(|s| s.ok_per_s < wanted)
        .map(|s| AvailabilityViolation {
            kind: "stretch".into(),
            from_s: s.from_s,
            to_s: s.to_s,
            got: s.ok_per_s,
            wanted,
            explanation: format!(
                "no fault in force from {:.1} s to {:.1} s (after {GRACE:.0} s of grace), \
                 but only {:.1} ops/s succeeded: below {:.0}% of the {reference} ({:.1} ops/s)",
                s.from_s,
                s.to_s,
                s.ok_per_s,
                MIN_SHARE * 100.0,
                reference_per_s
            ),
        })
        .collect();

    if let Some(r) = recover_at {
        let missed: Vec<&String> = keys
            .iter()
            .filter(|k| !final_reads.get(*k).is_some_and(|(ok, _)| *ok))
            .collect();
        let last_done = final_reads
            .values()
            .filter(|(ok, _)| *ok)
            .map(|(_, t)| *t)
            .max()
            .unwrap_or(r);
        let took = secs(last_done.saturating_sub(r));
        if !missed.is_empty() {
            let some: Vec<&str> = missed.iter().take(5).map(|k| k.as_str()).collect();
            violations.push(AvailabilityViolation {
                kind: "recovery".into(),
                from_s: secs(r),
                to_s: secs(last.time),
                got: (keys.len() - missed.len()) as f64,
                wanted: keys.len() as f64,
                explanation: format!(
                    "after every fault was healed at {:.1} s, the final read of {} of {} keys \
                     never succeeded (e.g. {})",
                    secs(r),
                    missed.len(),
                    keys.len(),
                    some.join(", ")
                ),
            });
        } else if took > RECOVERY_BOUND {
            violations.push(AvailabilityViolation {
                kind: "recovery".into(),
                from_s: secs(r),
                to_s: secs(last_done),
                got: took,
                wanted: RECOVERY_BOUND,
                explanation: format!(
                    "after every fault was healed at {:.1} s, the final reads took {took:.1} s \
                     (bound {RECOVERY_BOUND:.0} s)",
                    secs(r)
                ),
            });
        }
    }

    let skipped_why = (stretches.is_empty() && recover_at.is_none())
        .then(|| "no fault-free stretch long enough to judge".to_string());
    AvailabilityResult {
        valid: if violations.is_empty() {
            Verdict::Valid
        } else {
            Verdict::Invalid
        },
        skipped: skipped_why,
        reference_per_s,
        reference,
        stretches,
        violations,
    }
}

fn skipped(why: &str) -> AvailabilityResult {
    AvailabilityResult {
        skipped: Some(why.into()),
        ..AvailabilityResult::default()
    }
}

/// A long stretch in windows of [`WINDOW_NS`] (a short tail joins the
/// last), so a collapse half-way through a quiet run is not averaged away.
fn windows(from: u64, to: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut a = from;
    while to - a >= 2 * WINDOW_NS {
        out.push((a, a + WINDOW_NS));
        a += WINDOW_NS;
    }
    if to - a > WINDOW_NS && secs(to - a - WINDOW_NS) >= MIN_STRETCH {
        out.push((a, a + WINDOW_NS));
        a += WINDOW_NS;
    }
    out.push((a, to));
    out
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn count_between(sorted: &[u64], from: u64, to: u64) -> usize {
    sorted.partition_point(|&t| t < to) - sorted.partition_point(|&t| t < from)
}

/// When some fault was in force, merged and sorted, up to `load_end`: each
/// `start-X` until the next `stop-X` (or the end), each `node-exited` until
/// the end, each one-shot nemesis step as an instant.
pub(crate) fn fault_intervals(history: &History, load_end: u64) -> Vec<(u64, u64)> {
    let mut open: BTreeMap<String, u64> = BTreeMap::new();
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for op in history.nemesis_ops() {
        let Payload::Nemesis(n) = &op.payload else {
            continue;
        };
        if op.time > load_end {
            break;
        }
        if let Some(kind) = n.f.strip_prefix("start-") {
            open.entry(kind.to_string()).or_insert(op.time);
        } else if let Some(kind) = n.f.strip_prefix("stop-") {
            let from = open.remove(kind).unwrap_or(op.time);
            spans.push((from, op.time));
        } else if n.f == "node-exited" {
            spans.push((op.time, load_end));
        } else if n.f != "recover" {
            spans.push((op.time, op.time));
        }
    }
    spans.extend(open.into_values().map(|from| (from, load_end)));
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (from, to) in spans {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::op::{Action, ClientOp, Op, ProcessId};

    const S: u64 = 1_000_000_000;

    /// A history: `per_s` successful writes a second from 0 to `until` s,
    /// except at `slow_per_s` between `slow.0` and `slow.1`; nemesis ops as given.
    fn history(until: u64, per_s: u64, slow: (u64, u64, u64), nemesis: &[(u64, &str)]) -> History {
        let mut ops = Vec::new();
        let mut p = 0;
        for sec in 0..until {
            let n = if (slow.0..slow.1).contains(&sec) {
                slow.2
            } else {
                per_s
            };
            for i in 0..n {
                let t = sec * S + i * (S / n.max(1));
                let c = ClientOp::new(ProcessId(p % 10), "k", Action::Write(1));
                ops.push(Op::invoke(t, c.clone()));
                ops.push(Op::ok(t + 1000, c));
                p += 1;
            }
        }
        for (t, f) in nemesis {
            ops.push(Op::nemesis(*t * S, *f, serde_json::json!({})));
        }
        ops.sort_by_key(|o| o.time);
        History::numbered(ops).unwrap()
    }

    #[test]
    fn a_steady_run_is_valid_and_a_collapse_without_faults_is_not() {
        let h = history(30, 100, (0, 0, 0), &[]);
        let r = check(&h, 100.0);
        assert_eq!(r.valid, Verdict::Valid, "{r:?}");
        assert_eq!(r.stretches.len(), 5, "{r:?}");
        let h = history(30, 100, (10, 30, 5), &[]);
        let r = check(&h, 100.0);
        assert_eq!(r.valid, Verdict::Invalid, "{r:?}");
        assert!(r.violations[0].explanation.contains("ops/s"), "{r:?}");
    }

    #[test]
    fn a_collapse_while_a_fault_is_in_force_is_allowed_but_not_after_its_grace() {
        let faults = [(10, "start-partition"), (20, "stop-partition")];
        let h = history(30, 100, (10, 22, 0), &faults);
        assert_eq!(check(&h, 100.0).valid, Verdict::Valid);
        let h = history(30, 100, (10, 30, 2), &faults);
        let r = check(&h, 100.0);
        assert_eq!(r.valid, Verdict::Invalid, "{r:?}");
        assert!((r.violations[0].from_s - 23.0).abs() < 0.01, "{r:?}");
    }

    #[test]
    fn a_node_that_exited_counts_as_a_fault_until_the_end() {
        let h = history(30, 100, (10, 30, 0), &[(9, "node-exited")]);
        assert_eq!(check(&h, 100.0).valid, Verdict::Valid);
    }

    #[test]
    fn final_reads_that_never_succeed_are_a_recovery_violation() {
        let mut ops = history(10, 50, (0, 0, 0), &[]).into_ops();
        ops.push(Op::nemesis(11 * S, "recover", serde_json::json!({})));
        let c = ClientOp::new(ProcessId(FINAL_READ_PROCESS), "k", Action::Read(None));
        ops.push(Op::invoke(12 * S, c.clone()));
        ops.push(Op::fail(13 * S, c, "timeout"));
        let r = check(&History::numbered(ops).unwrap(), 50.0);
        assert_eq!(r.valid, Verdict::Invalid, "{r:?}");
        assert_eq!(r.violations[0].kind, "recovery");
    }
}
