//! The operations a history is made of, as typed values.
//!
//! A line of `history.jsonl` becomes one [`Op`]: where and when it happened
//! ([`Op::index`], [`Op::time`]), what kind of event it is ([`OpType`]), and
//! either a client operation on one key ([`ClientOp`]) or a fault injected by
//! the nemesis ([`NemesisOp`]). Types rule out what the format forbids: a
//! nemesis op has no key, a write carries an integer (or, for string
//! values, a [`StrOp`]), a cas a pair.
//!
//! Writers build ops with the constructors ([`Op::invoke`], [`Op::ok`],
//! [`Op::fail`], [`Op::info`], [`Op::nemesis`]) and hand them to
//! [`crate::history::HistoryWriter`], which numbers them.

use std::fmt;
use std::sync::Arc;

/// A client process, as in Jepsen: a worker that issues one operation at a
/// time. A worker whose operation ended in `info` continues under a new
/// process number, so a process never has two operations outstanding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessId(pub u64);

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who performed an operation: a client process or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Process {
    /// A client worker (`"process": 3` in `history.jsonl`).
    Client(ProcessId),
    /// The fault injector (`"process": "nemesis"`).
    Nemesis,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

/// A shared, immutable string, one pointer wide: a history of millions of
/// operations holds millions of keys, node names and errors, most of them
/// equal, and readers share one allocation per distinct string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(Arc<Box<str>>);

impl Text {
    /// A new allocation holding `s`: readers that meet the same string
    /// again clone the first `Text` instead.
    pub fn new(s: &str) -> Text {
        Text(Arc::new(Box::from(s)))
    }
    /// The string, borrowed for as long as this handle lives.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::new(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Arc::new(s.into_boxed_str()))
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self.0, f)
    }
}

/// A key of the store. Cheap to clone: readers share one allocation per
/// distinct key, which matters for histories of millions of operations.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(Text);

impl Key {
    /// A key with its own allocation (see [`Key::addr`] on why sharing
    /// one matters).
    pub fn new(s: &str) -> Key {
        Key(Text::new(s))
    }

    /// The address of the shared string: equal for clones of one key
    /// (equal keys made apart may differ).
    pub fn addr(&self) -> usize {
        Arc::as_ptr(&(self.0).0) as usize
    }
    /// The key as written in the history.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::new(s)
    }
}

impl From<String> for Key {
    fn from(s: String) -> Key {
        Key(Text::from(s))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a node a request was sent to, such as `n2`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeName(Text);

impl NodeName {
    /// A node name; any string is accepted (the history format does not
    /// restrict names to `nN`).
    pub fn new(s: &str) -> NodeName {
        NodeName(Text::new(s))
    }
    /// The name as written in the history.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kind of history event. `Invoke` starts an operation; exactly one of
/// the others ends it (or nothing does, which counts as `Info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpType {
    /// The client sent the request (`"type": "invoke"`).
    Invoke,
    /// The operation took effect.
    Ok,
    /// The operation did not and will not take effect.
    Fail,
    /// Unknown outcome (timeout, connection lost): it may take effect at any
    /// time after its invocation, or never.
    Info,
}

impl OpType {
    /// Every spelling [`OpType::parse`] accepts, for "expected one of"
    /// messages.
    pub const NAMES: &'static str = "invoke, ok, fail, info";

    /// The `type` field's value in `history.jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }

    /// The kind named by a `type` field; `None` for anything else (the
    /// caller names the field in its error).
    pub fn parse(s: &str) -> Option<OpType> {
        Some(match s {
            "invoke" => OpType::Invoke,
            "ok" => OpType::Ok,
            "fail" => OpType::Fail,
            "info" => OpType::Info,
            _ => return None,
        })
    }
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The client function, without its arguments: what `stats` and `perf` group by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum F {
    /// Returns the key's value.
    Read,
    /// Sets the key's value.
    Write,
    /// Compare-and-set: sets the value only if it equals the expected one.
    Cas,
    /// Adds to the end of the key's list (or string).
    Append,
}

impl F {
    /// Every spelling [`F::parse`] accepts, for "expected one of" messages.
    pub const NAMES: &'static str = "read, write, cas, append";
    /// Every function, in the order of their discriminants: `f as usize`
    /// indexes per-function tables of this length.
    pub const ALL: [F; 4] = [F::Read, F::Write, F::Cas, F::Append];

    /// The `f` field's value in `history.jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            F::Read => "read",
            F::Write => "write",
            F::Cas => "cas",
            F::Append => "append",
        }
    }

    /// The function named by an `f` field; `None` for anything else.
    pub fn parse(s: &str) -> Option<F> {
        Some(match s {
            "read" => F::Read,
            "write" => F::Write,
            "cas" => F::Cas,
            "append" => F::Append,
            _ => return None,
        })
    }
}

impl fmt::Display for F {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a read returned: nothing (`null`, the key is absent), an integer
/// (register workload), a list of integers (append workload), or a string
/// (a string register, or a string that appends extend: other tools'
/// histories, and the Kv API as it is).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// The key is absent (JSON `null`).
    Nil,
    /// A register of integers.
    Int(i64),
    /// A list that appends extend, oldest token first.
    List(Vec<i64>),
    /// A string register (or a string that appends extend).
    Str(Text),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Int(i) => write!(f, "{i}"),
            Value::List(l) => fmt_list(f, l),
            Value::Str(s) => write!(f, "{:?}", s.as_str()),
        }
    }
}

/// Formats `[1, 2, 3]`.
pub(crate) fn fmt_list(f: &mut fmt::Formatter<'_>, l: &[i64]) -> fmt::Result {
    f.write_str("[")?;
    for (i, x) in l.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{x}")?;
    }
    f.write_str("]")
}

/// A client function with its arguments (the `f` and `value` fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `None` on the invocation and on fail/info completions; `Some` on an
    /// ok completion (`Some(Value::Nil)`: the key was absent).
    Read(Option<Value>),
    /// Set an integer register to this value.
    Write(i64),
    /// Compare-and-set: `expected` `None` means "the key is absent".
    Cas(Cas),
    /// Append an integer token (unique per key) to the key's list.
    Append(i64),
    /// A write, append or cas of strings: the value is a string, and an
    /// append concatenates.
    Str(StrOp),
}

/// The arguments of a compare-and-set, and what a mismatch reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cas {
    /// The value the key must hold for the cas to take effect; `None`:
    /// the key must be absent.
    pub expected: Option<i64>,
    /// The value the key holds after a cas that took effect.
    pub new: i64,
    /// On a `fail` with error `mismatch`, the value the node saw instead, if
    /// it said: `Some(None)` is "absent". The cas went through the log, so
    /// this is a linearizable read of that value.
    pub actual: Option<Option<i64>>,
}

/// An update of a string value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrOp {
    /// The value becomes this string (f `write`, or `put`).
    Put(Text),
    /// The value becomes the old value (absent: empty) followed by this
    /// string (f `append`).
    Append(Text),
    /// Compare-and-set of strings (f `cas`); `actual` as in [`Cas`].
    Cas {
        /// The value the key must hold; `None`: the key must be absent.
        expected: Option<Text>,
        /// The value after a cas that took effect.
        new: Text,
        /// On a `mismatch`, what the node saw instead (`Some(None)`:
        /// absent), if it said.
        actual: Option<Option<Text>>,
    },
}

/// `write "a"`, `append "b"`, `cas "a"→"b"` (nil: absent).
impl fmt::Display for StrOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrOp::Put(v) => write!(f, "write {v:?}"),
            StrOp::Append(v) => write!(f, "append {v:?}"),
            StrOp::Cas { expected, new, .. } => match expected {
                Some(e) => write!(f, "cas {e:?}→{new:?}"),
                None => write!(f, "cas nil→{new:?}"),
            },
        }
    }
}

impl Action {
    /// The function, without its arguments (a string put is a `write`).
    pub fn f(&self) -> F {
        match self {
            Action::Read(_) => F::Read,
            Action::Write(_) | Action::Str(StrOp::Put(_)) => F::Write,
            Action::Cas(_) | Action::Str(StrOp::Cas { .. }) => F::Cas,
            Action::Append(_) | Action::Str(StrOp::Append(_)) => F::Append,
        }
    }

    /// A compare-and-set from `expected` to `new`.
    pub fn cas(expected: Option<i64>, new: i64) -> Action {
        Action::Cas(Cas {
            expected,
            new,
            actual: None,
        })
    }
}

/// The error string of a cas that failed because the current value differed.
pub const MISMATCH: &str = "mismatch";

/// A client operation on one key: the body of an invoke or completion line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOp {
    /// The client process; an invocation and its completion share it.
    pub process: ProcessId,
    /// The one key the operation touches.
    pub key: Key,
    /// The function and its arguments; on an ok read, the value read.
    pub action: Action,
    /// The node the request was sent to.
    pub node: Option<NodeName>,
    /// Why an operation failed or its outcome is unknown (`mismatch`,
    /// `not-leader`, `timeout`, ...).
    pub error: Option<Text>,
}

impl ClientOp {
    /// An operation without node or error: add them with
    /// [`ClientOp::with_node`] and [`ClientOp::with_error`].
    pub fn new(process: ProcessId, key: impl Into<Key>, action: Action) -> ClientOp {
        ClientOp {
            process,
            key: key.into(),
            action,
            node: None,
            error: None,
        }
    }

    /// The same operation, sent to `node`.
    pub fn with_node(mut self, node: NodeName) -> ClientOp {
        self.node = Some(node);
        self
    }

    /// The same operation with `error` (for a `fail` or `info` completion).
    pub fn with_error(mut self, error: impl Into<Text>) -> ClientOp {
        self.error = Some(error.into());
        self
    }

    /// Whether this is a cas that failed with `mismatch` (meaningful on a
    /// `fail` completion).
    pub fn is_mismatch(&self) -> bool {
        matches!(self.action, Action::Cas(_) | Action::Str(StrOp::Cas { .. }))
            && self.error.as_deref() == Some(MISMATCH)
    }
}

/// A fault or other nemesis action (`start-partition`, `stop-kill`, ...).
/// Kept for reports; the checkers ignore it.
#[derive(Clone, Debug, PartialEq)]
pub struct NemesisOp {
    /// What the nemesis did (`start-partition`, `stop-kill`, ...).
    pub f: String,
    /// Its details as the nemesis wrote them (groups, nodes, ...): any
    /// JSON, kept as it is for reports.
    pub value: serde_json::Value,
}

/// What a history line is about.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// An invocation or completion of a client operation.
    Client(ClientOp),
    /// Boxed: faults are few, and a client op is what every line must have
    /// room for.
    Nemesis(Box<NemesisOp>),
}

/// One line of a history. Kept small (88 bytes): a check of a million
/// operations holds two million of them.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// Position in the history, assigned by the writer.
    pub index: u32,
    /// Nanoseconds since the run began, from a monotonic clock.
    pub time: u64,
    /// Invocation or completion. A nemesis op keeps the type its line
    /// gave (`info` when the harness writes one); no checker reads it.
    pub kind: OpType,
    /// Who did what.
    pub payload: Payload,
}

impl Op {
    /// An invocation; `index` is left 0 for [`HistoryWriter`](crate::history::HistoryWriter) to assign.
    pub fn invoke(time: u64, op: ClientOp) -> Op {
        Op::client(time, OpType::Invoke, op)
    }

    /// A successful completion. For a read, `op.action` carries the value read.
    pub fn ok(time: u64, op: ClientOp) -> Op {
        Op::client(time, OpType::Ok, op)
    }

    /// A definite failure: the operation did not and will not take effect
    /// (`not-leader`), or a cas `mismatch`.
    pub fn fail(time: u64, op: ClientOp, error: impl Into<Text>) -> Op {
        Op::client(time, OpType::Fail, op.with_error(error))
    }

    /// An unknown outcome (timeout, connection lost).
    pub fn info(time: u64, op: ClientOp, error: impl Into<Text>) -> Op {
        Op::client(time, OpType::Info, op.with_error(error))
    }

    /// A client line of any kind; [`Op::invoke`], [`Op::ok`],
    /// [`Op::fail`] and [`Op::info`] are the usual way in.
    pub fn client(time: u64, kind: OpType, op: ClientOp) -> Op {
        Op {
            index: 0,
            time,
            kind,
            payload: Payload::Client(op),
        }
    }

    /// A nemesis event, such as `start-partition` with the groups as value.
    pub fn nemesis(time: u64, f: impl Into<String>, value: serde_json::Value) -> Op {
        Op {
            index: 0,
            time,
            kind: OpType::Info,
            payload: Payload::Nemesis(Box::new(NemesisOp { f: f.into(), value })),
        }
    }

    /// Who performed the op.
    pub fn process(&self) -> Process {
        match &self.payload {
            Payload::Client(c) => Process::Client(c.process),
            Payload::Nemesis(_) => Process::Nemesis,
        }
    }

    /// The client operation; `None` for a nemesis op.
    pub fn as_client(&self) -> Option<&ClientOp> {
        match &self.payload {
            Payload::Client(c) => Some(c),
            Payload::Nemesis(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two million of these for a million operations: the size is the
    /// memory of a big check (BENCHMARKS: `harness bench-check`).
    #[test]
    fn an_op_stays_small() {
        assert_eq!(size_of::<Text>(), 8);
        assert_eq!(size_of::<Action>(), 40);
        assert_eq!(size_of::<ClientOp>(), 72);
        assert_eq!(size_of::<Op>(), 88);
    }
}
