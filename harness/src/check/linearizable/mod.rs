//! The linearizability checker.
//!
//! - [`model`]: what a model is ([`Model`]), and a state interner.
//! - [`register`], [`append`] and [`strings`]: the models (a register of
//!   integers; a list of integers that appends extend; a string that puts
//!   set and appends extend). A key's operations say which it is.
//! - [`initial`]: what keys hold before the history begins.
//! - [`search`](mod@search): the WGL search for one key, generic over the model.
//! - [`report`]: the evidence of a failure, in `results.json` and in words.
//! - This file: splits the history by key (linearizability is compositional:
//!   a history is linearizable iff each key's is), turns each key's
//!   operations into model operations, and checks keys in parallel.
//!
//! Semantics of outcomes: an `ok` operation happened between its invocation
//! and completion; a `fail` did not happen and is dropped, except a cas that
//! failed with `mismatch`, which is a read that saw something other than
//! `expected`; an `info` operation, or one without completion, may happen
//! at any time after its invocation, or never (a read with an unknown
//! outcome says nothing and is dropped).

pub mod append;
pub mod initial;
pub mod model;
pub mod register;
pub mod report;
pub mod search;
pub mod strings;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use initial::InitialValues;
pub use model::{Model, StateId};
pub use report::{Failure, OpSummary};
pub use search::{Cutoff, GiveUp, Limits, SearchOp, SearchResult, search};

use crate::check::Verdict;
use crate::history::hash::FastMap;
use crate::history::{Action, History, Key, Operation, Outcome, StrOp, Value};
use append::{AppendModel, AppendOp};
use register::{RegisterModel, RegisterOp};
use strings::StrModel;

/// How the checker may spend time and memory.
#[derive(Clone, Copy, Debug)]
pub struct LinearizableOptions {
    /// Keys not finished by then are unknown.
    pub deadline: Instant,
    /// The budget the deadline came from, for messages.
    pub budget: Duration,
    /// Approximate cap on the search caches of all threads together.
    pub memo_bytes: usize,
    /// Keys searched at once, each on its own thread (at least 1; never
    /// more than there are keys).
    pub threads: usize,
}

/// Once a key is found invalid, how much longer the other keys are
/// searched: the verdict is settled, and more evidence is not worth the
/// whole budget (an invalid history makes some searches exhaustive).
const AFTER_INVALID: Duration = Duration::from_secs(2);

/// The `linearizable` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinearizableResult {
    /// Invalid if some key failed; else unknown if some key was not
    /// decided; else valid.
    pub valid: Verdict,
    /// Keys checked.
    pub keys: usize,
    /// Client operations in the history.
    pub ops: usize,
    /// One per key that cannot be linearized, by key.
    pub failures: Vec<Failure>,
    /// The keys not decided in time or memory, by key.
    pub unknown_keys: Vec<UnknownKey>,
    /// Wall time of the check.
    pub elapsed_ms: u64,
}

/// A key the checker could not decide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownKey {
    /// The key.
    pub key: String,
    /// Which limit stopped its search, in words.
    pub reason: String,
}

/// The verdict for one key.
#[derive(Clone, Debug)]
enum KeyVerdict {
    Valid,
    /// Boxed: a failure is large and rare.
    Invalid(Box<Failure>),
    /// Why the search gave up.
    Unknown(String),
}

/// Checks every key of `history`, every key starting absent.
pub fn check(history: &History, opts: &LinearizableOptions) -> LinearizableResult {
    check_with(history, opts, &InitialValues::default())
}

/// Checks every key of `history`, keys starting as `initial` says.
pub fn check_with(
    history: &History,
    opts: &LinearizableOptions,
    initial: &InitialValues,
) -> LinearizableResult {
    let started = Instant::now();
    let mut keys = split_by_key(history);
    // Big keys first, so that no thread is left with a big one at the end.
    keys.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let threads = opts.threads.clamp(1, keys.len().max(1));
    let cutoff = Cutoff::default();
    let limits = Limits {
        deadline: opts.deadline,
        memo_bytes: opts.memo_bytes / threads,
        cutoff: Some(&cutoff),
    };
    let next = AtomicUsize::new(0);
    let verdicts: Mutex<Vec<(usize, KeyVerdict)>> = Mutex::new(Vec::with_capacity(keys.len()));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((key, ops)) = keys.get(i) else {
                        break;
                    };
                    let verdict =
                        check_key(key, ops, &limits, opts.budget, initial.of(key.as_str()));
                    if let KeyVerdict::Invalid(_) = verdict {
                        cutoff.set_after(AFTER_INVALID);
                    }
                    verdicts
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, verdict));
                }
            });
        }
    });
    let mut verdicts = verdicts.into_inner().unwrap_or_else(|e| e.into_inner());
    verdicts.sort_by(|a, b| keys[a.0].0.cmp(keys[b.0].0));
    let mut failures = Vec::new();
    let mut unknown_keys = Vec::new();
    for (i, verdict) in verdicts {
        match verdict {
            KeyVerdict::Valid => {}
            KeyVerdict::Invalid(f) => failures.push(*f),
            KeyVerdict::Unknown(reason) => unknown_keys.push(UnknownKey {
                key: keys[i].0.to_string(),
                reason,
            }),
        }
    }
    let valid = if !failures.is_empty() {
        Verdict::Invalid
    } else if !unknown_keys.is_empty() {
        Verdict::Unknown
    } else {
        Verdict::Valid
    };
    LinearizableResult {
        valid,
        keys: keys.len(),
        ops: history.operation_count(),
        failures,
        unknown_keys,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// The operations of each key, in invocation order. Readers share one
/// allocation per key (per reading thread), so operations are grouped by
/// that address first (cheap), then groups of equal keys are merged.
fn split_by_key(history: &History) -> Vec<(&Key, Vec<Operation<'_>>)> {
    let mut by_addr: FastMap<usize, usize> = FastMap::default();
    let mut groups: Vec<(&Key, Vec<Operation<'_>>)> = Vec::new();
    for op in history.operations() {
        let key = op.key();
        let i = *by_addr.entry(key.addr()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(op);
    }
    let mut by_name: FastMap<&Key, usize> = FastMap::default();
    let mut keys: Vec<(&Key, Vec<Operation<'_>>)> = Vec::with_capacity(groups.len());
    for (key, ops) in groups {
        match by_name.get(key) {
            Some(&i) => keys[i].1.extend(ops),
            None => {
                by_name.insert(key, keys.len());
                keys.push((key, ops));
            }
        }
    }
    for (_, ops) in &mut keys {
        // Merged groups interleave: back to invocation order.
        if !ops.is_sorted_by_key(Operation::index) {
            ops.sort_by_key(Operation::index);
        }
    }
    keys
}

/// Which model a key's operations call for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ModelKind {
    /// Integers: write, cas, integer reads.
    Register,
    /// Lists of integers: append, list reads.
    List,
    /// Strings: writes (puts), appends and cas of strings, string reads.
    Str,
}

impl ModelKind {
    /// The name `results.json` gives the model (`failures[].model`).
    fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::List => "append",
            ModelKind::Str => "string",
        }
    }

    /// What the key holds, in words.
    fn holds(self) -> &'static str {
        match self {
            ModelKind::Register => "integers (a register)",
            ModelKind::List => "lists of integers (appends)",
            ModelKind::Str => "strings",
        }
    }

    /// Whether a key of this kind can start as `v`.
    fn fits(self, v: &Value) -> bool {
        matches!(
            (self, v),
            (_, Value::Nil)
                | (ModelKind::Register, Value::Int(_))
                | (ModelKind::List, Value::List(_))
                | (ModelKind::Str, Value::Str(_))
        )
    }

    /// The model of a key's operations; with none that tells (only reads
    /// that saw nothing), the initial value's, else a register.
    fn of(ops: &[Operation<'_>], initial: Option<&Value>) -> ModelKind {
        let told = ops
            .iter()
            .find_map(|o| match (&o.client().action, o.read_value()) {
                (Action::Str(_), _) | (_, Some(Value::Str(_))) => Some(ModelKind::Str),
                (Action::Append(_), _) | (_, Some(Value::List(_))) => Some(ModelKind::List),
                (Action::Write(_) | Action::Cas(_), _) | (_, Some(Value::Int(_))) => {
                    Some(ModelKind::Register)
                }
                _ => None,
            });
        told.unwrap_or(match initial {
            Some(Value::List(_)) => ModelKind::List,
            Some(Value::Str(_)) => ModelKind::Str,
            _ => ModelKind::Register,
        })
    }
}

/// Checks the initial values against the keys of `history`: an explicit
/// value must fit its key's model (a convention applies only where it
/// fits). Returns warnings (values for keys the history does not have).
pub fn check_initial(history: &History, initial: &InitialValues) -> Result<Vec<String>, String> {
    if initial.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_key: HashMap<&str, Vec<Operation<'_>>> = HashMap::new();
    for op in history.operations() {
        by_key.entry(op.key().as_str()).or_default().push(op);
    }
    let mut keys: Vec<&&str> = by_key.keys().collect();
    keys.sort();
    for key in keys {
        let Some(v) = initial.of(key) else { continue };
        let kind = ModelKind::of(&by_key[*key], Some(v));
        let named = initial.keys.contains_key(*key);
        if !kind.fits(v) && (named || initial.convention.is_none()) {
            return Err(format!(
                "--initial-value: key {key:?} holds {}, so it cannot start as {v}",
                kind.holds()
            ));
        }
    }
    Ok(initial
        .keys
        .keys()
        .filter(|k| !by_key.contains_key(k.as_str()))
        .map(|k| format!("--initial-value {k}=...: the history has no key {k:?}"))
        .collect())
}

/// Checks the operations of one key with the model they call for, the key
/// starting as `initial` (`None`: absent). An initial value that does not
/// fit the model is ignored (see [`check_initial`]). With an initial value,
/// reads that returned nil say nothing (the key is never absent).
fn check_key(
    key: &Key,
    ops: &[Operation<'_>],
    limits: &Limits,
    budget: Duration,
    initial: Option<&Value>,
) -> KeyVerdict {
    let kind = ModelKind::of(ops, initial);
    let initial = initial.filter(|v| kind.fits(v));
    let verdict = check_key_as(kind, key, ops, limits, budget, initial);
    match verdict {
        // A history that reads a value before any write may come from a
        // system whose keys start with one.
        KeyVerdict::Invalid(mut f)
            if initial.is_none() && f.explanation.contains("absent (initial state)") =>
        {
            f.explanation.push_str(
                "; keys start absent: if this system's start with a value, give it with --initial-value",
            );
            KeyVerdict::Invalid(f)
        }
        v => v,
    }
}

fn check_key_as(
    kind: ModelKind,
    key: &Key,
    ops: &[Operation<'_>],
    limits: &Limits,
    budget: Duration,
    initial: Option<&Value>,
) -> KeyVerdict {
    let name = kind.name();
    // A key that starts with a value never becomes absent (no operation
    // deletes), so a read that returned nil did not see "absent": as in
    // Knossos, whose registers always hold a value, it carries no value.
    let skip_nil = initial.is_some();
    let ops_kept: Vec<Operation<'_>>;
    let ops = if skip_nil {
        ops_kept = ops
            .iter()
            .filter(|o| o.read_value() != Some(&Value::Nil))
            .copied()
            .collect();
        &ops_kept[..]
    } else {
        ops
    };
    match kind {
        ModelKind::List => {
            let list = match initial {
                Some(Value::List(l)) => l.as_slice(),
                _ => &[],
            };
            check_with_model(
                AppendModel::starting_with(list),
                name,
                key,
                ops,
                limits,
                budget,
                append_op,
            )
        }
        ModelKind::Str => {
            let text = match initial {
                Some(Value::Str(s)) => Some(s.as_str()),
                _ => None,
            };
            check_with_model(StrModel::new(text), name, key, ops, limits, budget, str_op)
        }
        ModelKind::Register => {
            let value = match initial {
                Some(Value::Int(i)) => Some(*i),
                _ => None,
            };
            check_with_model(
                RegisterModel::starting_with(value),
                name,
                key,
                ops,
                limits,
                budget,
                |_, op| register_op(op),
            )
        }
    }
}

fn check_with_model<M: Model>(
    mut model: M,
    name: &str,
    key: &Key,
    ops: &[Operation<'_>],
    limits: &Limits,
    budget: Duration,
    mut convert: impl FnMut(&mut M, &Operation<'_>) -> Option<M::Op>,
) -> KeyVerdict {
    let mut search_ops = Vec::with_capacity(ops.len());
    let mut origin = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let Some(m) = convert(&mut model, op) else {
            continue;
        };
        let ret = match op.outcome() {
            Outcome::Ok | Outcome::Fail => op.completion.map(|c| c.time),
            Outcome::Info | Outcome::Pending => None,
        };
        search_ops.push(SearchOp {
            call: op.invoke.time,
            ret,
            op: m,
        });
        origin.push(i);
    }
    match search(&mut model, &search_ops, limits) {
        SearchResult::Valid(_) => KeyVerdict::Valid,
        SearchResult::Unknown(GiveUp::Deadline) => {
            KeyVerdict::Unknown(format!("time budget of {} s spent", budget.as_secs_f64()))
        }
        SearchResult::Unknown(GiveUp::Cutoff) => KeyVerdict::Unknown(format!(
            "not decided: another key was found invalid, and the search stopped {} s later",
            AFTER_INVALID.as_secs()
        )),
        SearchResult::Unknown(GiveUp::Memory { bytes }) => KeyVerdict::Unknown(format!(
            "search cache reached {} MiB, the limit for one key",
            bytes >> 20
        )),
        SearchResult::Invalid(stuck) => KeyVerdict::Invalid(Box::new(report::failure(
            key,
            name,
            ops,
            &origin,
            &stuck,
            |s| model.describe_state(s),
        ))),
    }
}

/// The register operation an operation stands for, or `None` if it
/// constrains nothing (a failed write, a read of unknown outcome).
fn register_op(op: &Operation<'_>) -> Option<RegisterOp> {
    let outcome = op.outcome();
    match (&op.client().action, outcome) {
        (Action::Read(_), Outcome::Ok) => match op.read_value()? {
            Value::Nil => Some(RegisterOp::Read(None)),
            Value::Int(v) => Some(RegisterOp::Read(Some(*v))),
            Value::List(_) | Value::Str(_) => None,
        },
        (Action::Write(v), Outcome::Ok | Outcome::Info | Outcome::Pending) => {
            Some(RegisterOp::Write(*v))
        }
        (Action::Cas(c), Outcome::Ok | Outcome::Info | Outcome::Pending) => Some(RegisterOp::Cas {
            expected: c.expected,
            new: c.new,
        }),
        (Action::Cas(c), Outcome::Fail) if op.completion_client()?.is_mismatch() => {
            Some(RegisterOp::Mismatch {
                expected: c.expected,
                actual: op.completed_cas().and_then(|c| c.actual),
            })
        }
        _ => None,
    }
}

/// The append-model operation an operation stands for (see [`register_op`]).
fn append_op(model: &mut AppendModel, op: &Operation<'_>) -> Option<AppendOp> {
    match (&op.client().action, op.outcome()) {
        (Action::Read(_), Outcome::Ok) => match op.read_value()? {
            Value::Nil => Some(model.read(&[])),
            Value::List(l) => Some(model.read(l)),
            Value::Int(_) | Value::Str(_) => None,
        },
        (Action::Append(v), Outcome::Ok | Outcome::Info | Outcome::Pending) => {
            Some(AppendOp::Append(*v))
        }
        _ => None,
    }
}

/// The string-model operation an operation stands for (see [`register_op`]).
fn str_op(model: &mut StrModel, op: &Operation<'_>) -> Option<strings::StrOp> {
    use strings::StrOp as M;
    let outcome = op.outcome();
    let applied = matches!(outcome, Outcome::Ok | Outcome::Info | Outcome::Pending);
    match &op.client().action {
        Action::Read(_) if outcome == Outcome::Ok => match op.read_value()? {
            Value::Nil => Some(model.read(None)),
            Value::Str(s) => Some(model.read(Some(s))),
            Value::Int(_) | Value::List(_) => None,
        },
        Action::Str(StrOp::Append(s)) if applied => Some(M::Append(model.text(s))),
        Action::Str(StrOp::Put(s)) if applied => {
            model.update();
            Some(M::Put(model.text(s)))
        }
        Action::Str(StrOp::Cas { expected, new, .. }) if applied => {
            model.update();
            let expected = model.value(expected.clone());
            Some(M::Cas {
                expected,
                new: model.text(new),
            })
        }
        Action::Str(StrOp::Cas { expected, .. })
            if outcome == Outcome::Fail && op.completion_client()?.is_mismatch() =>
        {
            let actual = match op.completion_client()?.action {
                Action::Str(StrOp::Cas { ref actual, .. }) => actual.clone(),
                _ => None,
            };
            // A mismatch can succeed in a state no read extends: no state
            // is dead (see `StrModel::is_dead`).
            model.update();
            let expected = model.value(expected.clone());
            Some(M::Mismatch {
                expected,
                actual: actual.map(|a| model.value(a)),
            })
        }
        _ => None,
    }
}
