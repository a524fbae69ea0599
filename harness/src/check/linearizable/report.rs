//! Evidence for a non-linearizable key: the op that cannot be linearized,
//! the longest linearizable prefix, a window of the operations around it,
//! and one sentence that says what went wrong.

use serde::{Deserialize, Serialize};

use super::search::Stuck;
use crate::check::linearizable::model::StateId;
use crate::history::{Action, Key, Operation, Outcome, StrOp, Text, Value};

/// One client operation as shown in `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpSummary {
    /// The invocation's index: how reports name an operation.
    pub index: u64,
    /// The client process that ran it.
    pub process: u64,
    /// `read`, `write`, `cas` or `append`.
    pub f: String,
    /// The arguments (write, cas, append) or the value read (ok read).
    pub value: serde_json::Value,
    /// ok, fail or info (an operation without completion is info with
    /// `complete` null).
    #[serde(rename = "type")]
    pub outcome: String,
    /// Invocation time, ns.
    pub invoke: u64,
    /// Completion time, ns.
    pub complete: Option<u64>,
    /// The completion's error (`mismatch`, `timeout`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What a mismatched cas reported as the current value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<serde_json::Value>,
}

/// A key whose operations cannot be linearized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The key whose operations cannot be linearized.
    pub key: String,
    /// "register", "append" or "string".
    pub model: String,
    /// The operation that cannot be linearized at the deepest point the
    /// search reached.
    pub op: OpSummary,
    /// The longest linearizable prefix found: operation indexes in
    /// linearization order.
    pub prefix: Vec<u64>,
    /// The operations of the key concurrent with `op`, and a few before it.
    pub window: Vec<OpSummary>,
    /// One sentence: what `op` saw, and which states the key could have
    /// been in instead (and by which op).
    pub explanation: String,
    /// Acknowledged updates, completed before `op` (a read, or a cas that
    /// saw another value) was invoked, whose values it could have seen and
    /// did not: lost writes (as after a power cut of a node that did not
    /// fsync), or a stale read. Invocation indexes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_writes: Vec<u64>,
}

/// How many operations that completed before the stuck one the window shows.
const WINDOW_BEFORE: usize = 3;
/// The most operations a window shows.
const WINDOW_MAX: usize = 40;

/// Builds the evidence. `origin[i]` is the position in `ops` of search op
/// `i`; `describe` gives a model state as a value.
pub fn failure(
    key: &Key,
    model: &str,
    ops: &[Operation<'_>],
    origin: &[usize],
    stuck: &Stuck,
    describe: impl Fn(StateId) -> Value,
) -> Failure {
    let at = origin[stuck.op];
    let op = &ops[at];
    let states: Vec<Value> = stuck.states.iter().map(|s| describe(s.state)).collect();
    let observed = observed(op);
    // Long lists are shown around where they differ from what was read.
    let anchor = |v: &Value| observed.as_ref().map_or(0, |o| first_difference(v, o));
    let read_anchor = states.iter().map(anchor).min().unwrap_or(0);
    let seen: Vec<String> = stuck
        .states
        .iter()
        .zip(&states)
        .map(|(s, value)| {
            let value = show_value(value, anchor(value));
            match s.set_by {
                None => format!("{value} (initial state)"),
                Some(i) => format!("{value} ({})", provenance(&ops[origin[i]])),
            }
        })
        .collect();
    let lost_writes = lost_writes(
        op,
        stuck
            .states
            .iter()
            .filter_map(|s| s.set_by)
            .map(|i| &ops[origin[i]]),
    );
    let mut explanation = explain(op, &seen, read_anchor);
    if !lost_writes.is_empty() {
        let named: Vec<String> = lost_writes.iter().map(|i| format!("op {i}")).collect();
        let them = if named.len() == 1 { "write" } else { "writes" };
        let named = match named.split_last() {
            Some((last, init)) if !init.is_empty() => format!("{} and {last}", init.join(", ")),
            _ => named.join(""),
        };
        explanation.push_str(&format!(
            "; it missed the acknowledged {them} {named} (a lost write, or a stale read)"
        ));
    }
    Failure {
        key: key.to_string(),
        model: model.to_string(),
        op: summary(op),
        prefix: stuck
            .prefix
            .iter()
            .map(|&i| ops[origin[i]].index())
            .collect(),
        window: window(ops, at).iter().map(summary).collect(),
        explanation,
        lost_writes,
    }
}

/// The acknowledged updates among `setters` (the ops that set the states
/// `op` could have seen) that completed before `op` began, when `op`
/// observed the key (a read, or a cas that failed on what it found).
fn lost_writes<'a, 'h: 'a>(
    op: &Operation<'h>,
    setters: impl Iterator<Item = &'a Operation<'h>>,
) -> Vec<u64> {
    let observes = match (&op.client().action, op.outcome()) {
        (Action::Read(_), Outcome::Ok) => true,
        (Action::Cas(_), Outcome::Fail) => op.completed_cas().and_then(|c| c.actual).is_some(),
        _ => false,
    };
    if !observes {
        return Vec::new();
    }
    let mut lost: Vec<u64> = setters
        .filter(|s| {
            s.outcome() == Outcome::Ok && s.completion.is_some_and(|c| c.time < op.invoke.time)
        })
        .map(|s| s.index())
        .collect();
    lost.sort_unstable();
    lost.dedup();
    lost
}

/// What the operation claims the state was: a read's value, a mismatch's
/// `actual`, a cas's `expected`.
fn observed(op: &Operation<'_>) -> Option<Value> {
    match &op.client().action {
        Action::Read(_) => op.read_value().cloned(),
        Action::Cas(c) => {
            let v = match op.outcome() {
                Outcome::Fail => op.completed_cas()?.actual?,
                _ => c.expected,
            };
            Some(v.map_or(Value::Nil, Value::Int))
        }
        Action::Str(StrOp::Cas { expected, .. }) => {
            let v = match op.outcome() {
                Outcome::Fail => str_actual(op)?,
                _ => expected.clone(),
            };
            Some(v.map_or(Value::Nil, Value::Str))
        }
        _ => None,
    }
}

/// What a string cas that failed with a mismatch saw, if it said.
fn str_actual(op: &Operation<'_>) -> Option<Option<Text>> {
    match &op.completion_client()?.action {
        Action::Str(StrOp::Cas { actual, .. }) => actual.clone(),
        _ => None,
    }
}

/// Where two lists (or strings, in characters) first differ (0 for
/// anything else).
fn first_difference(a: &Value, b: &Value) -> usize {
    match (a, b) {
        (Value::List(a), Value::List(b)) => a.iter().zip(b).take_while(|(x, y)| x == y).count(),
        (Value::Str(a), Value::Str(b)) => {
            a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
        }
        _ => 0,
    }
}

/// Lists longer than this are abbreviated.
const LIST_SHOWN: usize = 12;

/// A value in words: `absent`, `4`, or a list, abbreviated around `anchor`
/// when long: `[1, 2, … 240 more …, 77, 78, 79] (250 elements)`.
fn show_value(v: &Value, anchor: usize) -> String {
    let list = match v {
        Value::Nil => return "absent".to_string(),
        Value::Int(i) => return i.to_string(),
        Value::Str(s) => return show_str(s, anchor),
        Value::List(l) => l,
    };
    if list.len() <= LIST_SHOWN {
        return v.to_string();
    }
    let n = list.len();
    let mut shown: Vec<usize> = (0..2).collect();
    shown.extend(anchor.saturating_sub(3)..(anchor + 4).min(n));
    shown.extend(n - 3..n);
    shown.sort_unstable();
    shown.dedup();
    let mut parts = Vec::new();
    let mut next = 0;
    for i in shown {
        if i > next {
            parts.push(format!("… {} more …", i - next));
        }
        parts.push(list[i].to_string());
        next = i + 1;
    }
    format!("[{}] ({n} elements)", parts.join(", "))
}

/// Strings longer than this many characters are abbreviated.
const STR_SHOWN: usize = 60;

/// A string in quotes, abbreviated around character `anchor` when long.
fn show_str(s: &Text, anchor: usize) -> String {
    let n = s.chars().count();
    if n <= STR_SHOWN {
        return format!("{:?}", s.as_str());
    }
    let from = anchor.saturating_sub(STR_SHOWN / 2).min(n - STR_SHOWN);
    let middle: String = s.chars().skip(from).take(STR_SHOWN).collect();
    format!(
        "{}{:?}{} ({n} characters)",
        if from > 0 { "…" } else { "" },
        middle,
        if from + STR_SHOWN < n { "…" } else { "" }
    )
}

/// "read of k3 returned 3 at 12.41 s, but the only value it could see was
/// 4 (written by op 118 at 12.02 s)".
fn explain(op: &Operation<'_>, seen: &[String], anchor: usize) -> String {
    let key = op.key();
    let when = op.completion.map_or(op.invoke.time, |c| c.time);
    let values = match seen {
        [one] => format!("the only value it could see was {one}"),
        many => format!("the only values it could see were {}", join_or(many)),
    };
    let cas_args = |e: Option<i64>, n: i64| format!("from {} to {n}", opt_value(e));
    match (&op.client().action, op.outcome()) {
        (Action::Read(_), _) => {
            let got = show_value(op.read_value().unwrap_or(&Value::Nil), anchor);
            format!(
                "read of {key} returned {got} at {}, but {values}",
                fmt_ns(when)
            )
        }
        (Action::Cas(c), Outcome::Fail) => {
            let actual = match op.completed_cas().and_then(|c| c.actual) {
                Some(a) => format!(" (it saw {})", opt_value(a)),
                None => String::new(),
            };
            format!(
                "cas of {key} {} failed with a mismatch at {}{actual}, but {values}",
                cas_args(c.expected, c.new),
                fmt_ns(when)
            )
        }
        (Action::Cas(c), _) => format!(
            "cas of {key} {} succeeded at {}, but {values}",
            cas_args(c.expected, c.new),
            fmt_ns(when)
        ),
        (Action::Write(v), _) | (Action::Append(v), _) => format!(
            "{} of {v} to {key} was acknowledged at {}, but no order of the operations around it \
             agrees with what was read; there {values}",
            op.f(),
            fmt_ns(when)
        ),
        (Action::Str(StrOp::Cas { expected, new, .. }), Outcome::Fail) => {
            let actual = match str_actual(op) {
                Some(a) => format!(" (it saw {})", opt_str(a.as_ref())),
                None => String::new(),
            };
            format!(
                "cas of {key} from {} to {new:?} failed with a mismatch at {}{actual}, but {values}",
                opt_str(expected.as_ref()),
                fmt_ns(when)
            )
        }
        (Action::Str(StrOp::Cas { expected, new, .. }), _) => format!(
            "cas of {key} from {} to {new:?} succeeded at {}, but {values}",
            opt_str(expected.as_ref()),
            fmt_ns(when)
        ),
        (Action::Str(StrOp::Put(v) | StrOp::Append(v)), _) => format!(
            "{} of {v:?} to {key} was acknowledged at {}, but no order of the operations around it \
             agrees with what was read; there {values}",
            op.f(),
            fmt_ns(when)
        ),
    }
}

fn opt_str(v: Option<&Text>) -> String {
    v.map_or("absent".to_string(), |v| format!("{:?}", v.as_str()))
}

/// "written by op 118 at 12.02 s".
fn provenance(op: &Operation<'_>) -> String {
    let verb = match op.f() {
        crate::history::F::Cas => "set by cas",
        crate::history::F::Append => "after append",
        _ => "written by",
    };
    match op.outcome() {
        Outcome::Ok => format!(
            "{verb} op {} at {}",
            op.index(),
            fmt_ns(op.completion.map_or(op.invoke.time, |c| c.time))
        ),
        _ => format!(
            "{verb} op {}, whose outcome is unknown, invoked at {}",
            op.index(),
            fmt_ns(op.invoke.time)
        ),
    }
}

fn opt_value(v: Option<i64>) -> String {
    v.map_or("absent".to_string(), |v| v.to_string())
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => "none".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The operations overlapping `ops[at]` (including it), and the few that
/// completed last before it was invoked, in invocation order.
fn window<'h>(ops: &[Operation<'h>], at: usize) -> Vec<Operation<'h>> {
    let target = &ops[at];
    let start = target.invoke.time;
    let end = finish(target);
    let mut overlapping: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].invoke.time <= end && finish(&ops[i]) >= start)
        .collect();
    if overlapping.len() > WINDOW_MAX {
        overlapping.sort_by_key(|&i| (i != at, ops[i].invoke.time.abs_diff(start)));
        overlapping.truncate(WINDOW_MAX);
    }
    let mut before: Vec<usize> = (0..ops.len())
        .filter(|&i| finish(&ops[i]) < start)
        .collect();
    before.sort_by_key(|&i| std::cmp::Reverse(finish(&ops[i])));
    before.truncate(WINDOW_BEFORE);
    overlapping.extend(before);
    overlapping.sort_unstable();
    overlapping.dedup();
    overlapping.into_iter().map(|i| ops[i]).collect()
}

/// When an operation stops being able to take effect: its completion, or
/// never for an unknown outcome.
fn finish(op: &Operation<'_>) -> u64 {
    match (op.outcome(), op.completion) {
        (Outcome::Ok | Outcome::Fail, Some(c)) => c.time,
        _ => u64::MAX,
    }
}

/// An operation as `results.json` shows it: times in ns, the value as the
/// history format writes it.
pub fn summary(op: &Operation<'_>) -> OpSummary {
    let c = op.client();
    let int_or_null = |v: Option<i64>| v.map_or(serde_json::Value::Null, serde_json::Value::from);
    let str_or_null = |v: Option<&Text>| v.map_or(serde_json::Value::Null, |v| v.as_str().into());
    let value = match &c.action {
        Action::Read(_) => match op.read_value() {
            None | Some(Value::Nil) => serde_json::Value::Null,
            Some(Value::Int(v)) => (*v).into(),
            Some(Value::List(l)) => l.clone().into(),
            Some(Value::Str(s)) => s.as_str().into(),
        },
        Action::Write(v) | Action::Append(v) => (*v).into(),
        Action::Cas(cas) => serde_json::json!([int_or_null(cas.expected), cas.new]),
        Action::Str(StrOp::Put(v) | StrOp::Append(v)) => v.as_str().into(),
        Action::Str(StrOp::Cas { expected, new, .. }) => {
            serde_json::json!([str_or_null(expected.as_ref()), new.as_str()])
        }
    };
    let actual = match op.completed_cas() {
        Some(c) => c.actual.map(int_or_null),
        None => str_actual(op).map(|a| str_or_null(a.as_ref())),
    };
    OpSummary {
        index: op.index(),
        process: c.process.0,
        f: op.f().to_string(),
        value,
        outcome: match op.outcome() {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info | Outcome::Pending => "info",
        }
        .to_string(),
        invoke: op.invoke.time,
        complete: op.completion.map(|c| c.time),
        error: op.error().map(str::to_string),
        actual,
    }
}

/// A duration since the start of the run, in words: `12.41 s`, `3.20 ms`.
pub fn fmt_ns(ns: u64) -> String {
    let x = ns as f64;
    if ns >= 1_000_000_000 {
        format!("{:.2} s", x / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.2} ms", x / 1e6)
    } else if ns >= 1_000 {
        format!("{:.2} µs", x / 1e3)
    } else {
        format!("{ns} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_shown_around_where_they_differ() {
        let list: Vec<i64> = (0..100).collect();
        assert_eq!(show_value(&Value::List(vec![1, 2]), 0), "[1, 2]");
        assert_eq!(show_value(&Value::Nil, 0), "absent");
        assert_eq!(
            show_value(&Value::List(list.clone()), 50),
            "[0, 1, … 45 more …, 47, 48, 49, 50, 51, 52, 53, … 43 more …, 97, 98, 99] (100 elements)"
        );
        let mut other = list.clone();
        other[50] = -1;
        assert_eq!(
            first_difference(&Value::List(list), &Value::List(other)),
            50
        );
    }
}
