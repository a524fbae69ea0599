//! Import of Jepsen's and Knossos's histories: `history.edn` (op maps, or
//! the older Knossos tuples), and, through [`crate::history::text`],
//! `history.txt` and `jepsen.util` log lines.
//!
//! Accepted EDN shapes: op forms one after another (one per line, as Jepsen
//! writes them), or the whole file one vector or list of op forms (as
//! Knossos's test data is). An op form is a map, or a tuple
//! `[process :type :f value]` (older Knossos files). Per op:
//!
//! - `:type` `:invoke | :ok | :fail | :info`; `:process` an integer or `:nemesis`.
//! - `:f` `:read | :write | :cas | :append` for clients, and Porcupine's kv
//!   names `:get` (a read) and `:put` (a write); anything for the nemesis.
//! - `:value` an independent tuple, either `[key v]` or
//!   `#jepsen.independent.Tuple{:key key, :value v}`, or a `:key` field
//!   beside a plain `:value` (Porcupine's kv). A plain value without either
//!   puts the op on the key `"register"`, as Knossos's test files do.
//!   `v` is nil, an integer or a string (a cas's is `[expected new]`; a
//!   read may return a list of integers). Strings make the key a string
//!   register, whose appends concatenate.
//! - `:time` in nanoseconds: used if every op has one; if no op has one, the
//!   position in the file is the time (Knossos orders by position too).
//!   `:index` likewise, else the position.
//! - `:error` any value, kept as text (a keyword without its colon, so
//!   `:mismatch` is a cas mismatch). A completion that is not an ok read and
//!   has a keyword for a value (`:info :write :timed-out` in Jepsen's logs)
//!   has that keyword as its error.
//! - A failed op did not happen and says nothing more, as Knossos reads it.
//!   With [`Dialect::fail_cas_is_mismatch`], a failed cas without an
//!   `:error` is one whose expected value did not match (a mismatch, a read
//!   of something else): what Jepsen's early register clients (etcd's) meant
//!   by `:fail`, and how Porcupine reads their logs.
//! - Unknown keys and unknown tagged literals outside `:value` are ignored.
//!
//! Only the `:value` of a completion that is a read is used: the arguments of
//! a write or cas are taken from its invocation.

use std::collections::HashMap;
use std::path::Path;

use super::edn::{Edn, EdnError, Reader};
use super::op::{
    Action, Cas, ClientOp, F, Key, MISMATCH, NemesisOp, Op, OpType, Payload, ProcessId, StrOp,
    Text, Value,
};
use super::{History, HistoryError};

/// The key of ops whose `:value` is not an independent tuple.
const SINGLE_REGISTER_KEY: &str = "register";

/// How a file's ops are to be read where Jepsen's tools differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dialect {
    /// A `:fail` of a cas without an `:error` is a mismatch.
    pub fail_cas_is_mismatch: bool,
}

/// Parses EDN text; `path` is only used in error messages.
pub fn parse_edn(text: &str, path: &Path) -> Result<History, HistoryError> {
    let imported = edn_ops(text, path, Dialect::default())?;
    let lines = imported.lines;
    History::new(imported.ops).map_err(|e| HistoryError::line(path, lines[e.position], e.message))
}

/// The ops of a Jepsen history, unvalidated.
pub(crate) struct Imported {
    pub ops: Vec<Op>,
    /// The line of each op.
    pub lines: Vec<usize>,
    /// Some op is a `:get` or `:put` (Porcupine's kv).
    pub kv_names: bool,
    /// The ops have times (else their positions are their times).
    pub timed: bool,
}

/// The ops of an EDN history.
pub(crate) fn edn_ops(text: &str, path: &Path, dialect: Dialect) -> Result<Imported, HistoryError> {
    let edn_err = |e: EdnError| HistoryError::line(path, e.line, e.message);
    let forms = top_level_ops(text).map_err(edn_err)?;
    let raws: Vec<RawOp<'_>> = forms
        .iter()
        .map(|(line, form)| RawOp::from_form(*line, form))
        .collect::<Result<_, _>>()
        .map_err(edn_err)?;
    let has = |field: fn(&RawOp<'_>) -> bool| raws.iter().filter(|r| field(r)).count();
    let (with_time, with_index) = (has(|r| r.time.is_some()), has(|r| r.index.is_some()));
    let mut importer = Importer::new(dialect);
    let mut ops = Vec::with_capacity(raws.len());
    let mut lines = Vec::with_capacity(raws.len());
    for (pos, raw) in raws.iter().enumerate() {
        let fill = |name: &str, field: Option<&Edn>, count: usize| -> Result<u64, String> {
            if count == 0 {
                return Ok(pos as u64);
            }
            match field {
                Some(Edn::Int(t)) if *t >= 0 => Ok(*t as u64),
                Some(other) => Err(format!(
                    ":{name}: expected a non-negative integer, got {}",
                    other.kind()
                )),
                None => Err(format!(
                    ":{name}: missing (other ops have one, so every op needs one)"
                )),
            }
        };
        let op = fill("time", raw.time, with_time)
            .and_then(|time| Ok((time, fill("index", raw.index, with_index)?)))
            .and_then(|(time, index)| {
                let index = u32::try_from(index).map_err(|_| {
                    format!(":index: {index} is too large (at most {})", u32::MAX - 1)
                })?;
                importer.op(raw, time, index)
            })
            .map_err(|message| HistoryError::line(path, raw.line, message))?;
        ops.push(op);
        lines.push(raw.line);
    }
    Ok(Imported {
        ops,
        lines,
        kv_names: importer.kv_names,
        timed: with_time > 0,
    })
}

/// The op forms of a file with their lines: either every top-level form,
/// or the items of a single top-level vector or list of op forms.
fn top_level_ops(text: &str) -> Result<Vec<(usize, Edn)>, EdnError> {
    let mut r = Reader::new(text);
    let mut forms = Vec::new();
    if let Some(open @ (b'[' | b'(')) = r.peek_form_start()? {
        let (close, name) = if open == b'[' {
            (b']', "vector")
        } else {
            (b')', "list")
        };
        let first_line = r.line();
        r.consume();
        let mut items = Vec::new();
        loop {
            match r.peek_form_start()? {
                Some(c) if c == close => {
                    r.consume();
                    break;
                }
                None => {
                    return Err(EdnError {
                        line: r.line(),
                        message: format!(
                            "unexpected end of input, expected '{}' to close the history {name} opened on line {first_line}",
                            close as char
                        ),
                    });
                }
                Some(_) => items.extend(r.next_form()?),
            }
        }
        let values: Vec<Edn> = items.iter().map(|(_, f)| f.clone()).collect();
        if is_tuple(&values) {
            // The first op of a file of tuples, not a collection of ops.
            let form = if open == b'[' {
                Edn::Vector(values)
            } else {
                Edn::List(values)
            };
            forms.push((first_line, form));
        } else {
            if let Some((line, form)) = r.next_form()? {
                return Err(EdnError {
                    line,
                    message: format!(
                        "unexpected {} after the history {name} (a history is one {name} of ops, \
                         or ops one after another)",
                        form.kind()
                    ),
                });
            }
            return check_ops(items);
        }
    }
    while let Some(form) = r.next_form()? {
        forms.push(form);
    }
    check_ops(forms)
}

fn check_ops(forms: Vec<(usize, Edn)>) -> Result<Vec<(usize, Edn)>, EdnError> {
    for (line, form) in &forms {
        if !matches!(form, Edn::Map(_)) && tuple_items(form).is_none() {
            return Err(EdnError {
                line: *line,
                message: format!(
                    "expected an op map or an op tuple [process :type :f value], got {}",
                    form.kind()
                ),
            });
        }
    }
    Ok(forms)
}

/// `[process :type :f value ...]`: the older Knossos op form.
fn tuple_items(form: &Edn) -> Option<&[Edn]> {
    let (Edn::Vector(items) | Edn::List(items)) = form else {
        return None;
    };
    is_tuple(items).then_some(items.as_slice())
}

fn is_tuple(items: &[Edn]) -> bool {
    let is_process =
        |e: &Edn| matches!(e, Edn::Int(_)) || matches!(e, Edn::Keyword(k) if k == "nemesis");
    let is_type = |e: &Edn| matches!(e, Edn::Keyword(k) if OpType::parse(k).is_some());
    items.len() >= 3 && is_process(&items[0]) && is_type(&items[1])
}

/// An op as Jepsen writes it, before it is typed: the fields of an op map,
/// or the items of a tuple or of a `history.txt` line.
#[derive(Default)]
pub(crate) struct RawOp<'a> {
    pub line: usize,
    pub process: Option<&'a Edn>,
    pub kind: Option<&'a Edn>,
    pub f: Option<&'a Edn>,
    pub value: Option<&'a Edn>,
    /// Porcupine's kv: the key beside a plain value.
    pub key: Option<&'a Edn>,
    pub error: Option<&'a Edn>,
    pub time: Option<&'a Edn>,
    pub index: Option<&'a Edn>,
}

impl<'a> RawOp<'a> {
    fn from_form(line: usize, form: &'a Edn) -> Result<RawOp<'a>, EdnError> {
        if let Some(items) = tuple_items(form) {
            return Ok(RawOp::from_items(line, items));
        }
        Ok(RawOp {
            line,
            process: form.get("process"),
            kind: form.get("type"),
            f: form.get("f"),
            value: form.get("value"),
            key: form.get("key"),
            error: form.get("error"),
            time: form.get("time"),
            index: form.get("index"),
        })
    }

    /// `process type f [value [error]]`.
    pub fn from_items(line: usize, items: &'a [Edn]) -> RawOp<'a> {
        RawOp {
            line,
            process: items.first(),
            kind: items.get(1),
            f: items.get(2),
            value: items.get(3),
            error: items.get(4),
            ..RawOp::default()
        }
    }
}

/// Converts raw ops, remembering each process's outstanding invocation (a
/// completion's arguments come from it).
#[derive(Default)]
pub(crate) struct Importer {
    open: HashMap<ProcessId, ClientOp>,
    keys: HashMap<String, Key>,
    /// Whether some op is a `:get` or `:put` (Porcupine's kv).
    pub kv_names: bool,
    dialect: Dialect,
}

impl Importer {
    pub fn new(dialect: Dialect) -> Importer {
        Importer {
            dialect,
            ..Importer::default()
        }
    }

    pub fn op(&mut self, raw: &RawOp<'_>, time: u64, index: u32) -> Result<Op, String> {
        let kind = match raw.kind {
            Some(Edn::Keyword(k)) => OpType::parse(k),
            None => return Err(":type: missing".into()),
            _ => None,
        }
        .ok_or(":type: expected one of :invoke, :ok, :fail, :info")?;
        let f = match raw.f {
            None => return Err(":f: missing".into()),
            Some(f) => name_of(f),
        };
        let process = match raw.process {
            Some(Edn::Int(p)) if *p >= 0 => ProcessId(*p as u64),
            Some(Edn::Keyword(k)) if k == "nemesis" => {
                let value = raw.value.map_or(serde_json::Value::Null, to_json);
                return Ok(Op {
                    index,
                    time,
                    kind,
                    payload: Payload::Nemesis(Box::new(NemesisOp { f, value })),
                });
            }
            None => return Err(":process: missing".into()),
            Some(_) => return Err(":process: expected a non-negative integer or :nemesis".into()),
        };
        let fun = match f.as_str() {
            "get" | "put" => {
                self.kv_names = true;
                Some(if f == "get" { F::Read } else { F::Write })
            }
            f => F::parse(f),
        }
        .ok_or_else(|| {
            format!(":f: expected one of :read, :write, :cas, :append (or :get, :put), got {f}")
        })?;
        let invocation = if kind == OpType::Invoke {
            None
        } else {
            self.open.remove(&process)
        };
        let (key, v) = match (raw.key, raw.value, &invocation) {
            (Some(key), value, _) => (self.key(&key_name(key)), value.unwrap_or(&Edn::Nil)),
            (None, Some(value), _) => {
                let (key, v) = split_tuple(fun, value)?;
                (self.key(&key), v)
            }
            (None, None, Some(inv)) => (inv.key.clone(), &Edn::Nil),
            (None, None, None) => return Err(":value: missing".into()),
        };
        let mut error = raw.error.map(|e| Text::from(name_of(e)));
        let action = match (fun, &invocation) {
            (F::Read, _) => Action::Read(match kind {
                OpType::Ok => Some(read_value(v)?),
                _ => None,
            }),
            (_, Some(inv)) => inv.action.clone(),
            (F::Write, None) => match v {
                Edn::Int(i) => Action::Write(*i),
                Edn::Str(s) => Action::Str(StrOp::Put(Text::new(s))),
                other => return Err(expected(":value", "an integer or a string", other)),
            },
            (F::Append, None) => match v {
                Edn::Int(i) => Action::Append(*i),
                Edn::Str(s) => Action::Str(StrOp::Append(Text::new(s))),
                other => return Err(expected(":value", "an integer or a string", other)),
            },
            (F::Cas, None) => cas(v)?,
        };
        if kind != OpType::Invoke
            && fun != F::Read
            && error.is_none()
            && let Edn::Keyword(k) = v
        {
            error = Some(Text::new(k));
        }
        if self.dialect.fail_cas_is_mismatch
            && kind == OpType::Fail
            && fun == F::Cas
            && error.is_none()
        {
            error = Some(Text::new(MISMATCH));
        }
        let client = ClientOp {
            process,
            key,
            action,
            node: None,
            error,
        };
        if kind == OpType::Invoke {
            self.open.insert(process, client.clone());
        }
        Ok(Op {
            index,
            time,
            kind,
            payload: Payload::Client(client),
        })
    }

    fn key(&mut self, s: &str) -> Key {
        if let Some(k) = self.keys.get(s) {
            return k.clone();
        }
        let k = Key::new(s);
        self.keys.insert(s.to_string(), k.clone());
        k
    }
}

fn cas(v: &Edn) -> Result<Action, String> {
    const WANT: &str = ":value: a cas expects [expected new], both integers or both strings \
                        (expected may be nil)";
    let (Edn::Vector(pair) | Edn::List(pair)) = v else {
        return Err(WANT.into());
    };
    match pair.as_slice() {
        [Edn::Nil | Edn::Int(_), Edn::Int(new)] => Ok(Action::Cas(Cas {
            expected: match &pair[0] {
                Edn::Int(e) => Some(*e),
                _ => None,
            },
            new: *new,
            actual: None,
        })),
        [Edn::Nil | Edn::Str(_), Edn::Str(new)] => Ok(Action::Str(StrOp::Cas {
            expected: match &pair[0] {
                Edn::Str(e) => Some(Text::new(e)),
                _ => None,
            },
            new: Text::new(new),
            actual: None,
        })),
        _ => Err(WANT.into()),
    }
}

fn expected(field: &str, want: &str, got: &Edn) -> String {
    format!("{field}: expected {want}, got {}", got.kind())
}

/// Splits an independent tuple into (key, value). A cas's `[a b]` is a tuple
/// only if `b` is itself a pair; a read's or write's `[k v]` always is.
fn split_tuple(f: F, value: &Edn) -> Result<(String, &Edn), String> {
    match value {
        Edn::Tagged(tag, inner) if tag.ends_with("independent.Tuple") => {
            let key = inner.get("key").ok_or(":value: the tuple has no :key")?;
            let v = inner.get("value").unwrap_or(&Edn::Nil);
            Ok((key_name(key), v))
        }
        Edn::Tagged(tag, _) => Err(format!(":value: unsupported tagged literal #{tag}")),
        Edn::Vector(pair)
            if pair.len() == 2 && (f != F::Cas || matches!(pair[1], Edn::Vector(_))) =>
        {
            Ok((key_name(&pair[0]), &pair[1]))
        }
        v => Ok((SINGLE_REGISTER_KEY.to_string(), v)),
    }
}

fn key_name(key: &Edn) -> String {
    match key {
        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A keyword's or symbol's name, a string as is, anything else printed.
fn name_of(v: &Edn) -> String {
    match v {
        Edn::Keyword(s) | Edn::Symbol(s) | Edn::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

fn int(v: &Edn, field: &str) -> Result<i64, String> {
    match v {
        Edn::Int(i) => Ok(*i),
        other => Err(expected(field, "an integer", other)),
    }
}

fn read_value(v: &Edn) -> Result<Value, String> {
    match v {
        Edn::Nil => Ok(Value::Nil),
        Edn::Int(i) => Ok(Value::Int(*i)),
        Edn::Str(s) => Ok(Value::Str(Text::new(s))),
        Edn::Vector(items) | Edn::List(items) => items
            .iter()
            .map(|x| int(x, ":value"))
            .collect::<Result<_, _>>()
            .map(Value::List),
        other => Err(expected(
            ":value",
            "nil, an integer, a string or a list of integers",
            other,
        )),
    }
}

/// EDN to JSON for nemesis values (kept for reports): keywords and symbols
/// become their names, collections arrays, maps objects with printed keys.
fn to_json(v: &Edn) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Edn::Nil => J::Null,
        Edn::Bool(b) => J::Bool(*b),
        Edn::Int(i) => J::from(*i),
        Edn::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => J::String(s.clone()),
        Edn::Char(c) => J::String(c.to_string()),
        Edn::List(items) | Edn::Vector(items) | Edn::Set(items) => {
            J::Array(items.iter().map(to_json).collect())
        }
        Edn::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (name_of(k), to_json(v)))
                .collect(),
        ),
        Edn::Tagged(tag, inner) => {
            J::Object(std::iter::once((format!("#{tag}"), to_json(inner))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;

    fn parse(text: &str) -> Result<History, HistoryError> {
        parse_edn(text, Path::new("h.edn"))
    }

    #[test]
    fn one_map_per_line_with_vector_tuples_and_nemesis() {
        let h = parse(
            r#"{:type :invoke, :f :write, :value [3 1], :process 0, :time 10, :index 0}
{:type :info, :f :start, :value nil, :process :nemesis, :time 15, :index 1}
{:type :ok, :f :write, :value [3 1], :process 0, :time 20, :index 2}
{:type :invoke, :f :cas, :value [3 [1 2]], :process 1, :time 30, :index 3}
{:type :fail, :f :cas, :value [3 [1 2]], :process 1, :time 40, :index 4, :error :mismatch}
{:type :invoke, :f :read, :value [3 nil], :process 2, :time 50, :index 5}
{:type :ok, :f :read, :value [3 1], :process 2, :time 60, :index 6}
{:type :invoke, :f :read, :value ["k" nil], :process 4, :time 70, :index 7}
"#,
        )
        .unwrap();
        assert_eq!(h.ops().len(), 8);
        assert_eq!(h.nemesis_ops().count(), 1);
        let ops: Vec<_> = h.operations().collect();
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[0].key().as_str(), "3");
        assert_eq!(ops[1].client().action, Action::cas(Some(1), 2));
        assert!(ops[1].completion_client().unwrap().is_mismatch());
        assert_eq!(ops[2].read_value(), Some(&Value::Int(1)));
        assert_eq!(ops[3].key().as_str(), "k");
        assert_eq!(ops[3].outcome(), Outcome::Pending);
        assert_eq!(h.ops()[6].time, 60);
    }

    #[test]
    fn one_vector_with_tagged_tuples() {
        let h = parse(
            r#"[{:type :invoke, :f :cas, :value #jepsen.independent.Tuple{:key 7, :value [nil 4]}, :process 3, :time 5}
 {:type :info, :f :cas, :value #jepsen.independent.Tuple{:key 7, :value [nil 4]}, :process 3, :time 9,
  :error #object[java.net.SocketTimeoutException 0x1 "timeout"], :extra #whatever {:a 1}}
 {:type :info, :f :kill, :value {:n1 :killed}, :process :nemesis, :time 10}]"#,
        )
        .unwrap();
        let op = h.operations().next().unwrap();
        assert_eq!(op.key().as_str(), "7");
        assert_eq!(op.client().action, Action::cas(None, 4));
        assert_eq!(op.outcome(), Outcome::Info);
        assert!(op.error().unwrap().starts_with("#object"));
        // No :index anywhere: positions are the indexes.
        assert_eq!(h.ops()[2].index, 2);
        let Payload::Nemesis(n) = &h.ops()[2].payload else {
            panic!()
        };
        assert_eq!(n.f, "kill");
        assert_eq!(n.value, serde_json::json!({"n1": "killed"}));
    }

    #[test]
    fn plain_values_without_tuples_and_without_time() {
        let h = parse(
            "{:process 0 :type :invoke :f :write :value 1}\n{:process 0 :type :ok :f :write :value 1}\n\
             {:process 1 :type :invoke :f :cas :value [1 2]}\n{:process 1 :type :ok :f :cas :value [1 2]}\n",
        )
        .unwrap();
        let ops: Vec<_> = h.operations().collect();
        assert_eq!(ops[0].key().as_str(), SINGLE_REGISTER_KEY);
        assert_eq!(ops[1].client().action, Action::cas(Some(1), 2));
        assert_eq!(h.ops()[3].time, 3);
    }

    /// Knossos's `data/cas-register/bad/rethink-fail-minimal.edn` is one
    /// top-level list with comments inside.
    #[test]
    fn one_top_level_list_with_comments() {
        let h = parse(
            "({:type :invoke, :f :write, :value 0, :process 0}\n {:type :ok, :f :write, :value 0, :process 0}\n \
             ; a comment\n {:type :invoke, :f :read, :value nil, :process 1}\n {:type :ok, :f :read, :value 3, :process 1}\n)",
        )
        .unwrap();
        assert_eq!(h.operation_count(), 2);
        assert_eq!(
            h.operations().nth(1).unwrap().read_value(),
            Some(&Value::Int(3))
        );
        // Items of the list keep their own lines in errors.
        let e = parse("(\n{:type :invoke, :f :read, :process 0, :value nil}\n{:type :done})")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("h.edn:3: :type: expected"), "{e}");
    }

    #[test]
    fn the_older_knossos_tuples() {
        let h = parse("[0 :invoke :write 1]\n[0 :ok :write 1]\n[1 :invoke :read nil]\n[1 :ok :read 1]\n[:nemesis :info :start nil]\n")
            .unwrap();
        assert_eq!(h.operation_count(), 2);
        assert_eq!(h.nemesis_ops().count(), 1);
        let text = "[[0 :invoke :cas [nil 2]]\n [0 :fail :cas [nil 2]]]";
        let h = parse(text).unwrap();
        let op = h.operations().next().unwrap();
        // A bare :fail of a cas says nothing, as Knossos reads it...
        assert!(!op.completion_client().unwrap().is_mismatch());
        // ... unless the dialect says it is a mismatch (Porcupine's reading).
        let dialect = Dialect {
            fail_cas_is_mismatch: true,
        };
        let ops = edn_ops(text, Path::new("h.edn"), dialect).unwrap().ops;
        assert!(ops[1].as_client().unwrap().is_mismatch());
    }

    #[test]
    fn string_values_and_porcupine_kv_fields() {
        let h = parse(
            r#"{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}
{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}
{:process 1, :type :invoke, :f :get, :key "0", :value nil}
{:process 1, :type :ok, :f :get, :key "0", :value "x 0 0 y"}
{:process 2, :type :invoke, :f :put, :key "1", :value "a"}
{:process 2, :type :info, :f :put, :key "1", :value "a"}
{:process 3, :type :invoke, :f :cas, :key "1", :value ["a" "b"]}
{:process 3, :type :fail, :f :cas, :key "1", :value ["a" "b"], :error :mismatch}
"#,
        )
        .unwrap();
        let ops: Vec<_> = h.operations().collect();
        assert_eq!(
            ops[0].client().action,
            Action::Str(StrOp::Append("x 0 0 y".into()))
        );
        assert_eq!(ops[1].f(), F::Read);
        assert_eq!(ops[1].read_value(), Some(&Value::Str("x 0 0 y".into())));
        assert_eq!(ops[2].f(), F::Write);
        assert_eq!(ops[2].key().as_str(), "1");
        assert!(ops[3].completion_client().unwrap().is_mismatch());
    }

    #[test]
    fn malformed_input_names_the_line() {
        let cases = [
            (
                "{:type :invoke :f :read :value [1 nil] :process 0 :time 1}\n{:type :done :f :read :process 0 :time 2}",
                "h.edn:2: :type: expected one of",
            ),
            (
                "{:type :invoke :f :read :value [1 nil] :process 0}\n\n{:type :ok :f :read :value [1 #{}] :process 0}",
                "h.edn:3: :value: expected nil, an integer",
            ),
            (
                "{:type :invoke :f :frob :value [1 nil] :process 0}",
                "h.edn:1: :f: expected one of :read, :write, :cas, :append (or :get, :put), got frob",
            ),
            (
                "{:type :invoke :f :read :value [1 nil] :process \"p\"}",
                "h.edn:1: :process: expected",
            ),
            (
                "{:type :invoke :f :read :value [1 nil] :process 0 :time 1}\n{:type :ok :f :read :value [1 nil] :process 0}",
                "h.edn:2: :time: missing",
            ),
            (
                "{:type :invoke :f :read :value [1 nil] :process 0}\n{:type :invoke :f :read :value [1 nil] :process 0}",
                "h.edn:2: process 0 invokes",
            ),
            (
                "{:type :ok :f :read :value [1 nil] :process 0}",
                "h.edn:1: ok completion for process 0 without",
            ),
            (
                "{:type :invoke :f :write :value [1 nil] :process 0}",
                "h.edn:1: :value: expected an integer or a string, got nil",
            ),
            (
                "[{:type :invoke :f :read :value [1 nil] :process 0}\n",
                "h.edn:2: unexpected end of input, expected ']'",
            ),
            (
                "{:type :invoke :f :read :value [1 nil] :process 0}\n[1 2]",
                "h.edn:2: expected an op map or an op tuple",
            ),
            (
                "[{:type :invoke :f :read :value [1 nil] :process 0}]\n[1 2]",
                "h.edn:2: unexpected a vector after the history vector",
            ),
            (
                "{:type :invoke\n :f :read :value [1 nil]\n :process 0",
                "h.edn:3: unexpected end of input",
            ),
            (
                "(1 2 3)",
                "h.edn:1: expected an op map or an op tuple [process :type :f value], got an integer",
            ),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_err().to_string();
            assert!(got.starts_with(want), "{text:?}\n got: {got}\nwant: {want}");
        }
    }
}
