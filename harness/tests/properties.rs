//! Property tests on histories from the simulated linearizable store
//! (`harness::sim`): with random concurrency, crashes (info) and timeouts
//! they are always valid; with one anomaly planted they are never valid.
//!
//! Each planted anomaly is chosen so that the history is certainly not
//! linearizable (the reason is written next to it); a case where no such
//! spot exists is discarded rather than asserted loosely. A checker that
//! runs out of budget may say unknown, never valid.

mod common;

use std::time::Duration;

use proptest::prelude::*;
use testkit::repeatable;

use harness::check::Verdict;
use harness::check::linearizable::{self, LinearizableOptions};
use harness::history::{Action, History, Op, Operation, Outcome, Value};
use harness::sim::{SimConfig, Simulation, simulate};
use harness::workload::Workload;

fn options() -> LinearizableOptions {
    LinearizableOptions {
        deadline: std::time::Instant::now() + Duration::from_secs(60),
        budget: Duration::from_secs(60),
        memo_bytes: 1 << 28,
        threads: 1,
    }
}

fn config() -> impl Strategy<Value = SimConfig> {
    (
        any::<u64>(),
        20usize..300,
        1usize..4,
        1usize..8,
        0.0f64..0.2,
        0.0f64..0.1,
        0i64..6,
        prop_oneof![Just(Workload::Register), Just(Workload::Append)],
    )
        .prop_map(
            |(seed, ops, keys, concurrency, info_rate, fail_rate, values, workload)| SimConfig {
                seed,
                ops,
                keys,
                concurrency,
                workload,
                info_rate,
                fail_rate,
                values,
                latency_ns: 1000,
                record_effects: true,
            },
        )
}

/// A value no simulated client ever writes or appends.
const NEVER_WRITTEN: i64 = 999_999_999;

/// Replaces the completion of the operation invoked at `invoke_index`.
fn with_completion(ops: &[Op], invoke_index: u64, f: impl FnOnce(&mut Action)) -> History {
    let h = History::new(ops.to_vec()).unwrap();
    let completion = h
        .operations()
        .find(|o| o.index() == invoke_index)
        .and_then(|o| o.completion)
        .map(|c| c.index)
        .expect("a completed operation");
    let mut ops = ops.to_vec();
    let op = ops.iter_mut().find(|o| o.index == completion).unwrap();
    let harness::history::Payload::Client(c) = &mut op.payload else {
        unreachable!()
    };
    f(&mut c.action);
    History::new(ops).unwrap()
}

fn ok_reads<'h>(h: &'h History) -> Vec<Operation<'h>> {
    h.operations()
        .filter(|o| o.f() == harness::history::F::Read && o.outcome() == Outcome::Ok)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { max_global_rejects: 20_000, ..repeatable(200) })]

    #[test]
    fn histories_of_a_linearizable_store_are_valid(cfg in config()) {
        let sim = simulate(&cfg);
        let r = linearizable::check(&sim.history(), &options());
        prop_assert_eq!(r.valid, Verdict::Valid, "seed {} config {:?}: {:#?}", cfg.seed, cfg, r.failures);
    }

    /// A read that returned a value nobody wrote cannot be linearized.
    #[test]
    fn a_read_of_a_value_never_written_is_found(cfg in config(), pick in any::<usize>()) {
        let sim = simulate(&cfg);
        let h = sim.history();
        let reads = ok_reads(&h);
        prop_assume!(!reads.is_empty());
        let target = reads[pick % reads.len()].index();
        let key = reads[pick % reads.len()].key().to_string();
        let corrupted = with_completion(&sim.ops, target, |a| {
            *a = Action::Read(Some(match a {
                Action::Read(Some(Value::List(l))) => {
                    let mut l = l.clone();
                    l.push(NEVER_WRITTEN);
                    Value::List(l)
                }
                _ => Value::Int(NEVER_WRITTEN),
            }));
        });
        let r = linearizable::check(&corrupted, &options());
        prop_assert_ne!(r.valid, Verdict::Valid, "seed {} read {}", cfg.seed, target);
        // The other keys are untouched, so only this key can fail.
        prop_assert!(r.failures.iter().all(|f| f.key == key), "{:#?}", r.failures);
    }

    /// Two reads of lists neither of which is a prefix of the other cannot
    /// both be linearized: the list only grows. Swapping two elements of one
    /// read makes such a pair whenever another read holds both in order.
    #[test]
    fn appends_seen_out_of_order_are_found(cfg in config(), pick in any::<usize>()) {
        let cfg = SimConfig { workload: Workload::Append, ..cfg };
        let sim = simulate(&cfg);
        let h = sim.history();
        let lists: Vec<(u64, &str, Vec<i64>)> = ok_reads(&h)
            .iter()
            .filter_map(|o| match o.read_value() {
                Some(Value::List(l)) => Some((o.index(), o.key().as_str(), l.clone())),
                _ => None,
            })
            .collect();
        let candidates: Vec<(u64, Vec<i64>)> = lists
            .iter()
            .filter(|(_, _, l)| l.len() >= 2)
            .filter_map(|(i, key, l)| {
                let mut swapped = l.clone();
                let n = swapped.len();
                swapped.swap(n - 2, n - 1);
                let incomparable = |other: &Vec<i64>| {
                    !other.starts_with(&swapped) && !swapped.starts_with(other)
                };
                lists
                    .iter()
                    .any(|(j, k, other)| j != i && k == key && incomparable(other))
                    .then_some((*i, swapped))
            })
            .collect();
        prop_assume!(!candidates.is_empty());
        let (target, swapped) = candidates[pick % candidates.len()].clone();
        let corrupted = with_completion(&sim.ops, target, |a| *a = Action::Read(Some(Value::List(swapped))));
        let r = linearizable::check(&corrupted, &options());
        prop_assert_ne!(r.valid, Verdict::Valid, "seed {} read {}", cfg.seed, target);
    }

    /// A store that acknowledges a write W and loses it. Planted where it
    /// must show: a read R invoked after W completed returned W's value,
    /// and no other write or cas (acknowledged, or of unknown outcome, whose
    /// effect might fall in between) overlaps [W invoked, R completed]. Then
    /// every linearization puts W before R with nothing changing the value
    /// in between, so R must return W's value; the lossy store makes it
    /// (and every read that saw W) return the value before W instead, which
    /// differs because every value is written once.
    #[test]
    fn an_acknowledged_write_that_was_lost_is_found(cfg in config(), pick in any::<usize>()) {
        let cfg = SimConfig { workload: Workload::Register, values: 0, info_rate: cfg.info_rate / 4.0, ..cfg };
        let sim = simulate(&cfg);
        let h = sim.history();
        let candidates = lost_write_spots(&h, &sim);
        prop_assume!(!candidates.is_empty());
        let (write, before) = candidates[pick % candidates.len()].clone();
        let written = match h.operations().find(|o| o.index() == write).unwrap().client().action {
            Action::Write(v) => v,
            _ => unreachable!(),
        };
        // Every read that saw the write now sees the value before it.
        let mut ops = sim.ops.clone();
        for op in ops.iter_mut().filter(|o| o.kind == harness::history::OpType::Ok) {
            let harness::history::Payload::Client(c) = &mut op.payload else { continue };
            if c.action == Action::Read(Some(Value::Int(written))) {
                c.action = Action::Read(Some(before.clone()));
            }
        }
        let r = linearizable::check(&History::new(ops).unwrap(), &options());
        prop_assert_ne!(r.valid, Verdict::Valid, "seed {} write {}", cfg.seed, write);
    }
}

/// (invoke index of W, value before W) for every spot where a lost write
/// must show (see the property above).
fn lost_write_spots(h: &History, sim: &Simulation) -> Vec<(u64, Value)> {
    let ops: Vec<Operation<'_>> = h.operations().collect();
    let finish = |o: &Operation<'_>| match o.outcome() {
        Outcome::Ok | Outcome::Fail => o.completion.map_or(u64::MAX, |c| c.time),
        _ => u64::MAX,
    };
    let changes_state = |o: &Operation<'_>| {
        matches!(o.client().action, Action::Write(_) | Action::Cas(_))
            && o.outcome() != Outcome::Fail
    };
    let mut out = Vec::new();
    for w in ops.iter().filter(|o| o.outcome() == Outcome::Ok) {
        let Action::Write(v) = w.client().action else {
            continue;
        };
        let w_done = finish(w);
        let read = ops.iter().find(|r| {
            r.key() == w.key()
                && r.outcome() == Outcome::Ok
                && r.read_value() == Some(&Value::Int(v))
                && r.invoke.time > w_done
                && !ops.iter().any(|x| {
                    x.index() != w.index()
                        && x.key() == w.key()
                        && changes_state(x)
                        && x.invoke.time <= finish(r)
                        && finish(x) >= w.invoke.time
                })
        });
        if read.is_some() {
            let before = sim.effects[&w.index()].before.clone();
            out.push((w.index(), before));
        }
    }
    out
}
