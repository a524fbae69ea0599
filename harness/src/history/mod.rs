//! Histories: the one format every tool of the harness reads.
//!
//! - [`op`]: the typed operations (one per line of `history.jsonl`).
//! - [`read`]: any history file, its format told from its content.
//! - [`jsonl`]: reading and writing `history.jsonl` ([`HistoryWriter`] flushes
//!   every line so a crashed harness leaves a readable file).
//! - [`edn`], [`jepsen`] and [`text`]: a small EDN reader and the import of
//!   Jepsen's and Knossos's histories (`history.edn`, `history.txt`, log
//!   lines), and of Porcupine's test corpora.
//! - [`hash`]: a fast hasher for the maps readers keep.
//! - [`events`]: the nodes' event logs (`events.jsonl`), read by the election
//!   and state-machine checkers.
//! - This file: [`History`], a validated list of ops with every invocation
//!   paired with its completion ([`Operation`]).

pub mod edn;
pub mod events;
pub mod hash;
pub mod jepsen;
pub mod jsonl;
pub mod op;
pub mod read;
pub mod text;

use std::path::{Path, PathBuf};

pub use jsonl::{HistoryWriter, read_jsonl};
pub use op::{
    Action, Cas, ClientOp, F, Key, MISMATCH, NemesisOp, NodeName, Op, OpType, Payload, Process,
    ProcessId, StrOp, Text, Value,
};

/// Why a history file could not be read. Every message names the file and,
/// for content errors, the line.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// One line breaks the format or a rule of histories (a field of the
    /// wrong type, a completion without an invocation, ...).
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The file, as it was named to the reader.
        path: PathBuf,
        /// 1-based line of the file (blank lines counted).
        line: usize,
        /// What is wrong, naming the field where there is one.
        message: String,
    },
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file, as it was named to the reader.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file as a whole is not a history (binary data, ...).
    #[error("{}: {message}", path.display())]
    Content {
        /// The file, as it was named to the reader.
        path: PathBuf,
        /// Why it is not a history, with the byte offset where it shows.
        message: String,
    },
}

impl HistoryError {
    pub(crate) fn line(path: &Path, line: usize, message: impl Into<String>) -> HistoryError {
        HistoryError::Line {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// A list of ops that breaks a rule of the format; `position` is the offending
/// op's position in the list (readers turn it into a line number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("op {position}: {message}")]
pub struct InvalidOp {
    /// 0-based position in the list of ops (not the op's `index`, not a
    /// line number).
    pub position: usize,
    /// The rule broken, naming the ops involved by their `index`.
    pub message: String,
}

/// How a client operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Completed `ok`: it took effect between invocation and completion.
    Ok,
    /// Completed `fail`: it did not and will not take effect.
    Fail,
    /// Completed `info`: it may take effect at any time after its
    /// invocation, or never.
    Info,
    /// No completion in the history: counts as `Info`.
    Pending,
}

impl Outcome {
    /// Whether the operation may or may not have taken effect.
    pub fn is_indeterminate(self) -> bool {
        matches!(self, Outcome::Info | Outcome::Pending)
    }
}

/// A client operation: an invocation and its completion, if any.
#[derive(Clone, Copy, Debug)]
pub struct Operation<'h> {
    /// The `invoke` line; always a client op.
    pub invoke: &'h Op,
    /// The `ok`, `fail` or `info` line of the same process that ended it;
    /// `None`: the history ends with the operation outstanding.
    pub completion: Option<&'h Op>,
}

impl<'h> Operation<'h> {
    /// The invocation's body: process, key, the function and its arguments.
    pub fn client(&self) -> &'h ClientOp {
        self.invoke
            .as_client()
            .expect("operations are built from client ops")
    }

    /// The completion's body, which carries what the invocation could not
    /// know: the value read, the error, a mismatched cas's `actual`.
    /// `None` while the operation is pending.
    pub fn completion_client(&self) -> Option<&'h ClientOp> {
        self.completion.and_then(Op::as_client)
    }

    /// The key operated on (the same on the completion, by validation).
    pub fn key(&self) -> &'h Key {
        &self.client().key
    }

    /// The function called, without its arguments.
    pub fn f(&self) -> F {
        self.client().action.f()
    }

    /// The invocation's index: how reports name the operation.
    pub fn index(&self) -> u64 {
        u64::from(self.invoke.index)
    }

    /// How the operation ended, from its completion's type.
    pub fn outcome(&self) -> Outcome {
        match self.completion.map(|c| c.kind) {
            None => Outcome::Pending,
            Some(OpType::Ok) => Outcome::Ok,
            Some(OpType::Fail) => Outcome::Fail,
            Some(OpType::Info) | Some(OpType::Invoke) => Outcome::Info,
        }
    }

    /// The value an ok read returned.
    pub fn read_value(&self) -> Option<&'h Value> {
        match &self.completion_client()?.action {
            Action::Read(v) => v.as_ref(),
            _ => None,
        }
    }

    /// The completion's error, such as `mismatch`.
    pub fn error(&self) -> Option<&'h str> {
        self.completion_client()?.error.as_deref()
    }

    /// The completion's cas arguments (they carry `actual` on a mismatch).
    pub fn completed_cas(&self) -> Option<&'h Cas> {
        match &self.completion_client()?.action {
            Action::Cas(c) => Some(c),
            _ => None,
        }
    }

    /// Invocation to completion, in nanoseconds.
    pub fn latency(&self) -> Option<u64> {
        Some(self.completion?.time.saturating_sub(self.invoke.time))
    }
}

/// A validated history: ops in order, every client invocation paired with
/// its completion.
#[derive(Clone, Debug, Default)]
pub struct History {
    ops: Vec<Op>,
    /// (position of invoke, position of completion or [`NO_COMPLETION`])
    /// for every client operation, in invocation order.
    pairs: Vec<(u32, u32)>,
    convention: Option<Convention>,
}

/// What a history's format says its keys start as, when it says (Porcupine's
/// kv histories: ""). The checkers use it unless told otherwise.
#[derive(Clone, Debug, PartialEq)]
pub struct Convention {
    /// What every key holds before the first operation.
    pub value: Value,
    /// Where the convention comes from, for the summary.
    pub source: &'static str,
}

const NO_COMPLETION: u32 = u32::MAX;

/// Which model a key's operations belong to, for the "one key, one model" rule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyShape {
    Register,
    List,
    Str,
}

impl KeyShape {
    fn describe(self) -> &'static str {
        match self {
            KeyShape::Register => "a register of integers (write, cas, integer read)",
            KeyShape::List => "a list of integers (append, list read)",
            KeyShape::Str => "a string (string write, append or cas, string read)",
        }
    }
}

impl History {
    /// Numbers `ops` 0, 1, 2, ... in the order given, then checks them as
    /// [`History::new`] does: for histories built in code.
    pub fn numbered(mut ops: Vec<Op>) -> Result<History, InvalidOp> {
        for (i, o) in ops.iter_mut().enumerate() {
            o.index = i as u32;
        }
        History::new(ops)
    }

    /// Checks the rules of the format and pairs invocations with completions:
    /// indexes increase; times never go back (a history is in the order
    /// things happened); a process has at most one operation outstanding; a
    /// completion matches an outstanding invocation of its process (same key
    /// and function); a key is used either as a register of integers (write,
    /// cas, integer reads), a list (append, list reads) or a string (string
    /// values).
    pub fn new(ops: Vec<Op>) -> Result<History, InvalidOp> {
        if ops.len() >= NO_COMPLETION as usize {
            return Err(InvalidOp {
                position: NO_COMPLETION as usize,
                message: format!("more than {} lines", NO_COMPLETION - 1),
            });
        }
        // Process → (position of its open invocation, its pair).
        let mut open: hash::FastMap<ProcessId, (u32, u32)> = hash::FastMap::default();
        let mut shapes: hash::FastMap<Key, (KeyShape, u32)> = hash::FastMap::default();
        let mut pairs = Vec::with_capacity(ops.len() / 2 + 1);
        let err = |position: usize, message: String| InvalidOp { position, message };
        for (pos, op) in ops.iter().enumerate() {
            if pos > 0 {
                let prev = &ops[pos - 1];
                if op.index <= prev.index {
                    return Err(err(
                        pos,
                        format!(
                            "field \"index\": {} is not greater than the previous index {}",
                            op.index, prev.index
                        ),
                    ));
                }
                if op.time < prev.time {
                    return Err(err(
                        pos,
                        format!(
                            "field \"time\": {} ns is earlier than the previous line's {} ns; a history \
                             lists events in the order they happened (--ignore-times orders them by \
                             position instead)",
                            op.time, prev.time
                        ),
                    ));
                }
            }
            let Payload::Client(c) = &op.payload else {
                continue;
            };
            if let Some(shape) = shape_of(op.kind, &c.action) {
                let here = pos as u32;
                let (first, first_pos) = match shapes.get(&c.key) {
                    Some(&seen) => seen,
                    None => {
                        shapes.insert(c.key.clone(), (shape, here));
                        (shape, here)
                    }
                };
                if first != shape {
                    return Err(err(
                        pos,
                        format!(
                            "key {:?} is used as {} here but as {} by index {}",
                            c.key.as_str(),
                            shape.describe(),
                            first.describe(),
                            ops[first_pos as usize].index
                        ),
                    ));
                }
            }
            match op.kind {
                OpType::Invoke => {
                    if let Some(&(prev, _)) = open.get(&c.process) {
                        return Err(err(
                            pos,
                            format!(
                                "process {} invokes an operation while its operation at index {} is still outstanding",
                                c.process, ops[prev as usize].index
                            ),
                        ));
                    }
                    open.insert(c.process, (pos as u32, pairs.len() as u32));
                    pairs.push((pos as u32, NO_COMPLETION));
                }
                OpType::Ok | OpType::Fail | OpType::Info => {
                    let Some((inv_pos, pair)) = open.remove(&c.process) else {
                        return Err(err(
                            pos,
                            format!(
                                "{} completion for process {} without an outstanding invocation",
                                op.kind, c.process
                            ),
                        ));
                    };
                    let inv = &ops[inv_pos as usize];
                    let ic = inv.as_client().expect("open invocations are client ops");
                    if ic.key != c.key || ic.action.f() != c.action.f() {
                        return Err(err(
                            pos,
                            format!(
                                "completion {} of key {:?} does not match the invocation at index {} ({} of key {:?})",
                                c.action.f(),
                                c.key.as_str(),
                                inv.index,
                                ic.action.f(),
                                ic.key.as_str()
                            ),
                        ));
                    }
                    pairs[pair as usize].1 = pos as u32;
                }
            }
        }
        Ok(History {
            ops,
            pairs,
            convention: None,
        })
    }

    /// What the history's format says its keys start as.
    pub fn convention(&self) -> Option<&Convention> {
        self.convention.as_ref()
    }

    /// Records what the format says keys start as (readers call it; the
    /// ops are not checked against it here).
    pub fn set_convention(&mut self, c: Convention) {
        self.convention = Some(c);
    }

    /// Every line, nemesis ops included, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Client operations in invocation order.
    pub fn operations(&self) -> impl ExactSizeIterator<Item = Operation<'_>> + '_ {
        self.pairs.iter().map(|&(i, c)| Operation {
            invoke: &self.ops[i as usize],
            completion: (c != NO_COMPLETION).then(|| &self.ops[c as usize]),
        })
    }

    /// Number of client operations.
    pub fn operation_count(&self) -> usize {
        self.pairs.len()
    }

    /// Nemesis ops, in order.
    pub fn nemesis_ops(&self) -> impl Iterator<Item = &Op> + '_ {
        self.ops
            .iter()
            .filter(|o| matches!(o.payload, Payload::Nemesis(_)))
    }

    /// Every line, nemesis ops included, in order, without the pairing:
    /// for tools that rewrite a history.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}

/// The model an op commits its key to, if any (a nil read or a read
/// invocation fits both).
fn shape_of(kind: OpType, action: &Action) -> Option<KeyShape> {
    match action {
        Action::Write(_) | Action::Cas(_) => Some(KeyShape::Register),
        Action::Append(_) => Some(KeyShape::List),
        Action::Str(_) => Some(KeyShape::Str),
        Action::Read(Some(Value::Int(_))) if kind == OpType::Ok => Some(KeyShape::Register),
        Action::Read(Some(Value::List(_))) if kind == OpType::Ok => Some(KeyShape::List),
        Action::Read(Some(Value::Str(_))) if kind == OpType::Ok => Some(KeyShape::Str),
        Action::Read(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(p: u64, k: &str, v: i64) -> ClientOp {
        ClientOp::new(ProcessId(p), k, Action::Write(v))
    }

    #[test]
    fn pairs_invocations_with_completions() {
        let h = History::numbered(vec![
            Op::invoke(1, w(0, "a", 1)),
            Op::invoke(2, w(1, "a", 2)),
            Op::nemesis(3, "start-partition", serde_json::Value::Null),
            Op::ok(4, w(1, "a", 2)),
        ])
        .unwrap();
        let ops: Vec<_> = h.operations().collect();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].outcome(), Outcome::Pending);
        assert_eq!(ops[1].outcome(), Outcome::Ok);
        assert_eq!(ops[1].latency(), Some(2));
        assert_eq!(h.nemesis_ops().count(), 1);
    }

    #[test]
    fn rejects_two_outstanding_invocations() {
        let e = History::numbered(vec![
            Op::invoke(1, w(0, "a", 1)),
            Op::invoke(2, w(0, "a", 2)),
        ])
        .unwrap_err();
        assert_eq!(e.position, 1);
        assert!(e.message.contains("still outstanding"), "{e}");
    }

    #[test]
    fn rejects_completion_without_invocation() {
        let e = History::numbered(vec![Op::ok(1, w(0, "a", 1))]).unwrap_err();
        assert!(
            e.message.contains("without an outstanding invocation"),
            "{e}"
        );
    }

    #[test]
    fn rejects_mismatched_completion_and_time_travel() {
        let e = History::numbered(vec![Op::invoke(1, w(0, "a", 1)), Op::ok(2, w(0, "b", 1))])
            .unwrap_err();
        assert!(e.message.contains("does not match"), "{e}");
        let e = History::numbered(vec![Op::invoke(5, w(0, "a", 1)), Op::ok(2, w(0, "a", 1))])
            .unwrap_err();
        assert!(e.message.contains("earlier than the previous line"), "{e}");
    }

    #[test]
    fn rejects_times_that_go_backwards_between_operations() {
        let e = History::numbered(vec![
            Op::invoke(5, w(0, "a", 1)),
            Op::invoke(4, w(1, "b", 1)),
        ])
        .unwrap_err();
        assert_eq!(e.position, 1);
        assert!(e.message.contains("--ignore-times"), "{e}");
    }

    #[test]
    fn rejects_a_key_used_as_register_and_list() {
        let e = History::numbered(vec![
            Op::invoke(1, w(0, "a", 1)),
            Op::invoke(2, ClientOp::new(ProcessId(1), "a", Action::Append(3))),
        ])
        .unwrap_err();
        assert_eq!(e.position, 1);
        assert!(e.message.contains("used as a list"), "{e}");
    }
}
