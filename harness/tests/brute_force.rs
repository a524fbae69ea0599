//! The WGL checker against a brute-force reference on thousands of tiny
//! random histories: register, append and string models, keys starting
//! absent or at a given initial value.
//!
//! The reference shares nothing with the checker but the history types: it
//! reads outcomes itself, simulates the models on plain values, and tries
//! every subset of the unknown-outcome operations and every order of the
//! chosen operations that respects real time (`a` must precede `b` iff `a`
//! completed strictly before `b` was invoked).
//!
//! The histories are random, not from a correct store, so about half are
//! invalid. Times are drawn from a small range so equal timestamps are
//! common. Seeds are printed on failure; `BRUTE_FORCE_SEED=N` reruns one,
//! `BRUTE_FORCE_CASES=N` runs more (seeds 0..N).

mod common;

use harness::check::Verdict;
use harness::check::linearizable::{self, InitialValues};
use harness::history::{
    Action, Cas, ClientOp, History, MISMATCH, Op, Outcome, ProcessId, StrOp, Text, Value,
};
use raft::Rng;

/// Register state: absent or a value. Append state: the list. String
/// state: absent or a string.
#[derive(Clone, Debug, PartialEq)]
enum State {
    Reg(Option<i64>),
    List(Vec<i64>),
    Str(Option<String>),
}

/// Which model the random histories exercise.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Register,
    Append,
    Strings,
}

/// What an operation means to the reference.
#[derive(Clone, Debug)]
struct RefOp {
    call: u64,
    /// `None`: may take effect at any time after `call`, or never.
    ret: Option<u64>,
    action: Action,
    /// For an ok read, the value read; for a mismatch, the cas's `actual`.
    observed: Option<Value>,
    mismatch: bool,
}

fn reference_ops(h: &History) -> Vec<RefOp> {
    let mut out = Vec::new();
    for op in h.operations() {
        let action = op.client().action.clone();
        let outcome = op.outcome();
        let ret = op.completion.map(|c| c.time);
        let mismatch = outcome == Outcome::Fail
            && op.error() == Some(MISMATCH)
            && op.f() == harness::history::F::Cas;
        let keep = match (&action, outcome) {
            (Action::Read(_), Outcome::Ok) => true,
            (Action::Read(_), _) => false,
            (_, Outcome::Ok) => true,
            (_, Outcome::Fail) => mismatch,
            (_, Outcome::Info | Outcome::Pending) => true,
        };
        if !keep {
            continue;
        }
        let observed = if mismatch {
            match &op.completion_client().unwrap().action {
                Action::Cas(c) => c.actual.map(|a| a.map_or(Value::Nil, Value::Int)),
                Action::Str(StrOp::Cas { actual, .. }) => {
                    actual.clone().map(|a| a.map_or(Value::Nil, Value::Str))
                }
                _ => None,
            }
        } else {
            op.read_value().cloned()
        };
        out.push(RefOp {
            call: op.invoke.time,
            ret: if outcome.is_indeterminate() {
                None
            } else {
                ret
            },
            action,
            observed,
            mismatch,
        });
    }
    out
}

/// One step of the model; `None` if impossible.
fn apply(state: &State, op: &RefOp) -> Option<State> {
    match (state, &op.action) {
        (State::Reg(v), Action::Read(_)) => {
            let got = match op.observed.as_ref()? {
                Value::Nil => None,
                Value::Int(i) => Some(*i),
                _ => return None,
            };
            (got == *v).then(|| state.clone())
        }
        (State::Reg(_), Action::Write(x)) => Some(State::Reg(Some(*x))),
        (State::Reg(v), Action::Cas(Cas { expected, new, .. })) => {
            if op.mismatch {
                let actual_ok = match &op.observed {
                    None => true,
                    Some(Value::Nil) => v.is_none(),
                    Some(Value::Int(a)) => *v == Some(*a),
                    Some(_) => false,
                };
                (v != expected && actual_ok).then(|| state.clone())
            } else {
                (v == expected).then_some(State::Reg(Some(*new)))
            }
        }
        (State::List(l), Action::Read(_)) => {
            let got: &[i64] = match op.observed.as_ref()? {
                Value::Nil => &[],
                Value::List(g) => g,
                _ => return None,
            };
            (got == l.as_slice()).then(|| state.clone())
        }
        (State::List(l), Action::Append(x)) => {
            let mut l = l.clone();
            l.push(*x);
            Some(State::List(l))
        }
        (State::Str(v), Action::Read(_)) => {
            let got = match op.observed.as_ref()? {
                Value::Nil => None,
                Value::Str(s) => Some(s.to_string()),
                _ => return None,
            };
            (got == *v).then(|| state.clone())
        }
        (State::Str(_), Action::Str(StrOp::Put(s))) => Some(State::Str(Some(s.to_string()))),
        (State::Str(v), Action::Str(StrOp::Append(s))) => {
            let mut now = v.clone().unwrap_or_default();
            now.push_str(s);
            Some(State::Str(Some(now)))
        }
        (State::Str(v), Action::Str(StrOp::Cas { expected, new, .. })) => {
            let expected = expected.as_ref().map(|e| e.to_string());
            if op.mismatch {
                let actual_ok = match &op.observed {
                    None => true,
                    Some(Value::Nil) => v.is_none(),
                    Some(Value::Str(a)) => v.as_deref() == Some(a.as_str()),
                    Some(_) => false,
                };
                (*v != expected && actual_ok).then(|| state.clone())
            } else {
                (*v == expected).then(|| State::Str(Some(new.to_string())))
            }
        }
        _ => None,
    }
}

/// Is there an order of `chosen` ops (all required ones plus the chosen
/// optional ones) that respects real time and the model?
fn orderable(ops: &[RefOp], chosen: &[usize], placed: &mut Vec<bool>, state: &State) -> bool {
    if chosen.iter().all(|&i| placed[i]) {
        return true;
    }
    for &i in chosen {
        if placed[i] {
            continue;
        }
        // Every chosen op that completed before `i` was invoked goes first.
        let ready = chosen
            .iter()
            .all(|&j| placed[j] || j == i || !matches!(ops[j].ret, Some(r) if r < ops[i].call));
        if !ready {
            continue;
        }
        if let Some(next) = apply(state, &ops[i]) {
            placed[i] = true;
            let ok = orderable(ops, chosen, placed, &next);
            placed[i] = false;
            if ok {
                return true;
            }
        }
    }
    false
}

/// `started`: the key starts with a value, so it is never absent and a
/// read that returned nil carries no value (as in Knossos).
fn reference_verdict(h: &History, init: &State, started: bool) -> Verdict {
    let mut ops = reference_ops(h);
    if started {
        ops.retain(|o| !(matches!(o.action, Action::Read(_)) && o.observed == Some(Value::Nil)));
    }
    let optional: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_none()).collect();
    let required: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].ret.is_some()).collect();
    for mask in 0u32..(1 << optional.len()) {
        let mut chosen = required.clone();
        chosen.extend(
            optional
                .iter()
                .enumerate()
                .filter(|(b, _)| mask & (1 << b) != 0)
                .map(|(_, &i)| i),
        );
        if orderable(&ops, &chosen, &mut vec![false; ops.len()], init) {
            return Verdict::Valid;
        }
    }
    Verdict::Invalid
}

/// Strings drawn from a small set, so that reads often match.
fn small_str(rng: &mut Rng) -> Text {
    ["", "a", "b", "ab", "ba", "aa"][rng.below(6) as usize].into()
}

/// The action of one random operation of a history of `kind`. String
/// histories are append-only half the time, which is when the string
/// model prunes states no read extends.
fn random_action(rng: &mut Rng, kind: Kind, token: &mut i64, appends_only: bool) -> Action {
    let small = |rng: &mut Rng| rng.below(3) as i64;
    match kind {
        Kind::Append => {
            if rng.chance(0.5) {
                *token += 1;
                Action::Append(*token)
            } else {
                Action::Read(None)
            }
        }
        Kind::Register => match rng.below(3) {
            0 => Action::Read(None),
            1 => Action::Write(small(rng)),
            _ => Action::cas(
                if rng.chance(0.25) {
                    None
                } else {
                    Some(small(rng))
                },
                small(rng),
            ),
        },
        Kind::Strings => {
            let letter = |rng: &mut Rng| Text::from(["a", "b"][rng.below(2) as usize]);
            match rng.below(if appends_only { 2 } else { 4 }) {
                0 => Action::Read(None),
                1 => Action::Str(StrOp::Append(letter(rng))),
                2 => Action::Str(StrOp::Put(letter(rng))),
                _ => Action::Str(StrOp::Cas {
                    expected: rng.chance(0.75).then(|| small_str(rng)),
                    new: letter(rng),
                    actual: None,
                }),
            }
        }
    }
}

/// A plausible value for a read of a history of `kind`.
fn random_read(rng: &mut Rng, kind: Kind, token: i64) -> Value {
    match kind {
        Kind::Append => {
            // A plausible list: a prefix of a shuffle of the tokens.
            let mut all: Vec<i64> = (1..=token.max(1)).collect();
            for i in (1..all.len()).rev() {
                all.swap(i, rng.below(i as u64 + 1) as usize);
            }
            all.truncate(rng.below(all.len() as u64 + 1) as usize);
            if all.is_empty() && rng.chance(0.5) {
                Value::Nil
            } else {
                Value::List(all)
            }
        }
        Kind::Register if rng.chance(0.25) => Value::Nil,
        Kind::Register => Value::Int(rng.below(3) as i64),
        Kind::Strings if rng.chance(0.2) => Value::Nil,
        Kind::Strings => Value::Str(small_str(rng)),
    }
}

/// What a mismatched cas may report it saw.
fn random_actual(rng: &mut Rng, kind: Kind) -> Value {
    match kind {
        Kind::Strings if rng.chance(0.25) => Value::Nil,
        Kind::Strings => Value::Str(small_str(rng)),
        _ if rng.chance(0.25) => Value::Nil,
        _ => Value::Int(rng.below(3) as i64),
    }
}

/// A random initial value for a history of `kind` (`None`: absent).
fn random_initial(rng: &mut Rng, kind: Kind) -> Option<Value> {
    if rng.chance(0.5) {
        return None;
    }
    Some(match kind {
        Kind::Register => Value::Int(rng.below(3) as i64),
        Kind::Append => Value::List(vec![0]),
        Kind::Strings => Value::Str(["", "a", "b"][rng.below(3) as usize].into()),
    })
}

fn initial_state(kind: Kind, initial: Option<&Value>) -> State {
    match (kind, initial) {
        (Kind::Register, Some(Value::Int(i))) => State::Reg(Some(*i)),
        (Kind::Register, _) => State::Reg(None),
        (Kind::Append, Some(Value::List(l))) => State::List(l.clone()),
        (Kind::Append, _) => State::List(Vec::new()),
        (Kind::Strings, Some(Value::Str(s))) => State::Str(Some(s.to_string())),
        (Kind::Strings, _) => State::Str(None),
    }
}

/// A random tiny history on one key: `n` operations, each by its own
/// process, with random intervals and outcomes, values from a small range.
fn random_history(rng: &mut Rng, kind: Kind) -> History {
    let n = 1 + rng.below(7) as usize;
    let mut events: Vec<(u64, u8, Op)> = Vec::new();
    let mut token = 0i64;
    let appends_only = rng.chance(0.5);
    for p in 0..n as u64 {
        let call = rng.below(10);
        let ret = call + rng.below(5);
        let action = random_action(rng, kind, &mut token, appends_only);
        let body = ClientOp::new(ProcessId(p), "k", action.clone());
        events.push((call, 0, Op::invoke(call, body.clone())));
        let roll = rng.below(20);
        let completion = match roll {
            0..=11 => {
                let mut done = body.clone();
                if let Action::Read(_) = action {
                    done.action = Action::Read(Some(random_read(rng, kind, token)));
                }
                Some(Op::ok(ret, done))
            }
            12..=14 => {
                let mut done = body.clone();
                let reports = rng.chance(0.5);
                let error = match &mut done.action {
                    Action::Cas(c) if rng.chance(0.7) => {
                        if reports {
                            c.actual = Some(match random_actual(rng, kind) {
                                Value::Int(i) => Some(i),
                                _ => None,
                            });
                        }
                        MISMATCH
                    }
                    Action::Str(StrOp::Cas { actual, .. }) if rng.chance(0.7) => {
                        if reports {
                            *actual = Some(match random_actual(rng, kind) {
                                Value::Str(s) => Some(s),
                                _ => None,
                            });
                        }
                        MISMATCH
                    }
                    _ => "not-leader",
                };
                Some(Op::fail(ret, done, error))
            }
            15..=17 => Some(Op::info(ret, body.clone(), "timeout")),
            _ => None,
        };
        if let Some(c) = completion {
            events.push((ret, 1, c));
        }
    }
    events.sort_by_key(|e| (e.0, e.1));
    let ops = events
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, mut op))| {
            op.index = i as u32;
            op
        })
        .collect();
    History::new(ops).expect("well-formed")
}

fn agree_on_random_histories(kind: Kind, cases: u64) {
    let cases = match std::env::var("BRUTE_FORCE_CASES") {
        Ok(s) => s.parse().expect("BRUTE_FORCE_CASES is a number"),
        Err(_) => cases,
    };
    let (start, count) = match std::env::var("BRUTE_FORCE_SEED") {
        Ok(s) => (s.parse().expect("BRUTE_FORCE_SEED is a number"), 1),
        Err(_) => (0, cases),
    };
    let salt = match kind {
        Kind::Register => 0,
        Kind::Append => 0x00a9_9e4d,
        Kind::Strings => 0x5791_46ab,
    };
    let mut verdicts = [0usize; 2];
    for seed in start..start + count {
        let mut rng = Rng::new(seed ^ salt);
        let h = random_history(&mut rng, kind);
        // The first half of the seeds start absent (as the checks before
        // initial values did), the second half maybe not.
        let initial = if seed % 2 == 0 {
            None
        } else {
            random_initial(&mut rng, kind)
        };
        let want = reference_verdict(
            &h,
            &initial_state(kind, initial.as_ref()),
            initial.is_some(),
        );
        let init = InitialValues {
            all: initial.clone(),
            ..InitialValues::default()
        };
        let got = linearizable::check_with(&h, &common::histories::lin_options(), &init);
        assert_eq!(
            got.valid,
            want,
            "seed {seed} (rerun with BRUTE_FORCE_SEED={seed}), {kind:?}, initial {initial:?}\nhistory: {:#?}\nresult: {got:#?}",
            h.ops()
        );
        verdicts[usize::from(want == Verdict::Valid)] += 1;
    }
    if count > 1 {
        // Both verdicts must be well represented, or the test proves little.
        assert!(
            verdicts[0] > count as usize / 5 && verdicts[1] > count as usize / 5,
            "invalid/valid = {verdicts:?}"
        );
    }
}

#[test]
fn register_agrees_with_brute_force() {
    agree_on_random_histories(Kind::Register, 5000);
}

#[test]
fn append_agrees_with_brute_force() {
    agree_on_random_histories(Kind::Append, 5000);
}

#[test]
fn strings_agree_with_brute_force() {
    agree_on_random_histories(Kind::Strings, 5000);
}

/// The order the search returns for a valid history is a real
/// linearization: replaying it through the reference model succeeds and it
/// respects real time.
#[test]
fn valid_orders_found_are_real_linearizations() {
    use harness::check::linearizable::register::{RegisterModel, RegisterOp};
    use harness::check::linearizable::{Limits, SearchOp, SearchResult, search};
    let mut checked = 0;
    for seed in 0..3000u64 {
        let mut rng = Rng::new(seed);
        let n = 1 + rng.below(8) as usize;
        let ops: Vec<SearchOp<RegisterOp>> = (0..n)
            .map(|_| {
                let call = rng.below(10);
                let ret = (!rng.chance(0.2)).then(|| call + rng.below(5));
                let v = rng.below(3) as i64;
                let op = match rng.below(3) {
                    0 => RegisterOp::Read(rng.chance(0.8).then_some(v)),
                    1 => RegisterOp::Write(v),
                    _ => RegisterOp::Cas {
                        expected: Some(rng.below(3) as i64),
                        new: v,
                    },
                };
                SearchOp { call, ret, op }
            })
            .collect();
        let limits = Limits::new(
            std::time::Instant::now() + std::time::Duration::from_secs(10),
            1 << 24,
        );
        let SearchResult::Valid(order) = search(&mut RegisterModel::default(), &ops, &limits)
        else {
            continue;
        };
        checked += 1;
        // Every required op is in the order, each op at most once.
        let mut seen = vec![false; n];
        for &i in &order {
            assert!(!seen[i], "seed {seed}: op {i} twice");
            seen[i] = true;
        }
        for (i, op) in ops.iter().enumerate() {
            assert!(
                op.ret.is_none() || seen[i],
                "seed {seed}: required op {i} missing"
            );
        }
        // Real time: no op in the order completed before an earlier one began.
        for (a, &i) in order.iter().enumerate() {
            for &j in &order[a + 1..] {
                assert!(
                    !matches!(ops[j].ret, Some(r) if r < ops[i].call),
                    "seed {seed}: {j} completed before {i} was invoked but is ordered after it"
                );
            }
        }
        // The model accepts the order.
        let mut state: Option<i64> = None;
        for &i in &order {
            state = match ops[i].op {
                RegisterOp::Read(v) => {
                    assert_eq!(v, state, "seed {seed}: read {i}");
                    state
                }
                RegisterOp::Write(v) => Some(v),
                RegisterOp::Cas { expected, new } => {
                    assert_eq!(expected, state, "seed {seed}: cas {i}");
                    Some(new)
                }
                RegisterOp::Mismatch { .. } => unreachable!(),
            };
        }
    }
    assert!(checked > 500, "only {checked} valid histories");
}
