//! Histories written as data, one event per line, for tests that read like
//! scenarios:
//!
//! ```text
//! # time process type f key value [error=E] [actual=V]
//! 0  0 invoke write x 1
//! 10 0 ok     write x 1
//! 12 1 invoke cas   x 1->2
//! 15 1 fail   cas   x 1->2 error=mismatch actual=nil
//! 16 2 invoke read  x
//! 20 2 ok     read  x 1          (a list is written [1,2], absent nil)
//! 21 nemesis info start-partition
//! ```
//!
//! The index of an event is its position. `#` starts a comment.

use std::time::Duration;

use harness::check::linearizable::{self, LinearizableOptions, LinearizableResult};
use harness::check::{CheckOptions, Results, Verdict, check_history};
use harness::history::{Action, Cas, ClientOp, History, Op, OpType, ProcessId, Value};

pub fn history(text: &str) -> History {
    let mut ops = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        let mut op = parse_line(line).unwrap_or_else(|e| panic!("line {}: {e}: {line}", n + 1));
        op.index = ops.len() as u32;
        ops.push(op);
    }
    History::new(ops).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_line(line: &str) -> Result<Op, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let int = |s: &str| s.parse::<i64>().map_err(|_| format!("bad integer {s:?}"));
    let opt_int = |s: &str| {
        if s == "nil" {
            Ok(None)
        } else {
            int(s).map(Some)
        }
    };
    let time: u64 = words[0].parse().map_err(|_| "bad time")?;
    if words[1] == "nemesis" {
        return Ok(Op::nemesis(time, words[3], serde_json::Value::Null));
    }
    let process = ProcessId(words[1].parse().map_err(|_| "bad process")?);
    let kind = OpType::parse(words[2]).ok_or("bad type")?;
    let key = words[4];
    let mut rest = words[5..].iter().copied();
    let mut extras = Vec::new();
    let mut value = None;
    for w in rest.by_ref() {
        if w.contains('=') {
            extras.push(w);
        } else {
            value = Some(w);
        }
    }
    let mut error = None;
    let mut actual = None;
    for e in extras {
        let (k, v) = e.split_once('=').unwrap();
        match k {
            "error" => error = Some(harness::history::Text::from(v)),
            "actual" => actual = Some(opt_int(v)?),
            _ => return Err(format!("unknown extra {k}")),
        }
    }
    let action = match words[3] {
        "read" => Action::Read(match (kind, value) {
            (OpType::Ok, Some("nil")) => Some(Value::Nil),
            (OpType::Ok, Some(v)) if v.starts_with('[') => {
                let inner = v.trim_start_matches('[').trim_end_matches(']');
                let items = inner
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(int)
                    .collect::<Result<_, _>>()?;
                Some(Value::List(items))
            }
            (OpType::Ok, Some(v)) => Some(Value::Int(int(v)?)),
            (OpType::Ok, None) => return Err("an ok read needs a value".into()),
            _ => None,
        }),
        "write" => Action::Write(int(value.ok_or("write needs a value")?)?),
        "append" => Action::Append(int(value.ok_or("append needs a value")?)?),
        "cas" => {
            let (e, n) = value
                .and_then(|v| v.split_once("->"))
                .ok_or("cas needs expected->new")?;
            Action::Cas(Cas {
                expected: opt_int(e)?,
                new: int(n)?,
                actual,
            })
        }
        f => return Err(format!("unknown f {f}")),
    };
    let mut body = ClientOp::new(process, key, action);
    body.error = error;
    Ok(Op::client(time, kind, body))
}

/// Generous limits: hand-written histories never come near them.
pub fn lin_options() -> LinearizableOptions {
    LinearizableOptions {
        deadline: std::time::Instant::now() + Duration::from_secs(60),
        budget: Duration::from_secs(60),
        memo_bytes: 1 << 28,
        threads: 2,
    }
}

pub fn lin(text: &str) -> LinearizableResult {
    linearizable::check(&history(text), &lin_options())
}

pub fn lin_verdict(text: &str) -> Verdict {
    lin(text).valid
}

pub fn check(text: &str) -> Results {
    check_history(&history(text), &[], &CheckOptions::default())
}
