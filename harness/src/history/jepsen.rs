//! Import of Jepsen `history.edn` files (cas-register with independent keys).
//!
//! Accepted shapes: one op map per line (or any sequence of top-level maps),
//! or the whole file one vector of maps. Per op:
//!
//! - `:type` `:invoke | :ok | :fail | :info`; `:process` an integer or `:nemesis`;
//!   `:f` `:read | :write | :cas` for clients, anything for the nemesis.
//! - `:value` an independent tuple, either `[key v]` or
//!   `#jepsen.independent.Tuple{:key key, :value v}`; `v` is nil or an integer
//!   (a cas's is `[expected new]`). A plain `v` without a tuple is accepted
//!   too and puts the op on the key `"register"`, as Knossos test files do.
//! - `:time` in nanoseconds: used if every op has one; if no op has one, the
//!   position in the file is the time (Jepsen files always have it, hand-written
//!   Knossos files often do not). `:index` likewise, else the position.
//! - `:error` any value, kept as text (a keyword without its colon, so
//!   `:mismatch` is a cas mismatch).
//! - Unknown keys and unknown tagged literals outside `:value` are ignored.
//!
//! Only the `:value` of a completion that is a read is used: the arguments of
//! a write or cas are taken from its invocation.

use std::collections::HashMap;
use std::path::Path;

use super::edn::{Edn, EdnError, Reader};
use super::op::{Action, Cas, ClientOp, F, Key, NemesisOp, Op, OpType, Payload, ProcessId, Value};
use super::{History, HistoryError};

/// The key of ops whose `:value` is not an independent tuple.
pub const SINGLE_REGISTER_KEY: &str = "register";

/// Reads and validates a Jepsen `history.edn`.
pub fn read_edn(path: &Path) -> Result<History, HistoryError> {
    let text = std::fs::read_to_string(path).map_err(|source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_edn(&text, path)
}

/// Parses EDN text; `path` is only used in error messages.
pub fn parse_edn(text: &str, path: &Path) -> Result<History, HistoryError> {
    let edn_err = |e: EdnError| HistoryError::line(path, e.line, e.message);
    let forms = top_level_ops(text).map_err(edn_err)?;
    let has = |name: &str| forms.iter().filter(|(_, f)| f.get(name).is_some()).count();
    let (with_time, with_index) = (has("time"), has("index"));
    let mut importer = Importer::default();
    let mut ops = Vec::with_capacity(forms.len());
    for (pos, (line, form)) in forms.iter().enumerate() {
        let fill = |name: &str, count: usize| -> Result<u64, String> {
            if count == 0 {
                return Ok(pos as u64);
            }
            match form.get(name) {
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
        let op = fill("time", with_time)
            .and_then(|time| Ok((time, fill("index", with_index)?)))
            .and_then(|(time, index)| importer.op(form, time, index))
            .map_err(|message| HistoryError::line(path, *line, message))?;
        ops.push(op);
    }
    History::new(ops).map_err(|e| HistoryError::line(path, forms[e.position].0, e.message))
}

/// The op maps of a file with their lines: either every top-level form, or
/// the items of a single top-level vector.
fn top_level_ops(text: &str) -> Result<Vec<(usize, Edn)>, EdnError> {
    let mut r = Reader::new(text);
    let mut out = Vec::new();
    if r.peek_form_start()? == Some(b'[') {
        let open = r.line();
        r.consume();
        loop {
            match r.peek_form_start()? {
                Some(b']') => {
                    r.consume();
                    break;
                }
                None => {
                    return Err(EdnError {
                        line: r.line(),
                        message: format!(
                            "unexpected end of input, expected ']' to close the history vector opened on line {open}"
                        ),
                    });
                }
                Some(_) => out.extend(r.next_form()?),
            }
        }
        if let Some((line, form)) = r.next_form()? {
            return Err(EdnError {
                line,
                message: format!("unexpected {} after the history vector", form.kind()),
            });
        }
    } else {
        while let Some(form) = r.next_form()? {
            out.push(form);
        }
    }
    for (line, form) in &out {
        if !matches!(form, Edn::Map(_)) {
            return Err(EdnError {
                line: *line,
                message: format!("expected an op map, got {}", form.kind()),
            });
        }
    }
    Ok(out)
}

/// Converts op maps, remembering each process's outstanding invocation (a
/// completion's arguments come from it).
#[derive(Default)]
struct Importer {
    open: HashMap<ProcessId, ClientOp>,
    keys: HashMap<String, Key>,
}

impl Importer {
    fn op(&mut self, form: &Edn, time: u64, index: u64) -> Result<Op, String> {
        let kind = match form.get("type") {
            Some(Edn::Keyword(k)) => OpType::parse(k),
            None => return Err(":type: missing".into()),
            _ => None,
        }
        .ok_or(":type: expected one of :invoke, :ok, :fail, :info")?;
        let f = match form.get("f") {
            None => return Err(":f: missing".into()),
            Some(f) => name_of(f),
        };
        let process = match form.get("process") {
            Some(Edn::Int(p)) if *p >= 0 => ProcessId(*p as u64),
            Some(Edn::Keyword(k)) if k == "nemesis" => {
                let value = form.get("value").map_or(serde_json::Value::Null, to_json);
                return Ok(Op {
                    index,
                    time,
                    kind,
                    payload: Payload::Nemesis(NemesisOp { f, value }),
                });
            }
            None => return Err(":process: missing".into()),
            Some(_) => return Err(":process: expected a non-negative integer or :nemesis".into()),
        };
        let fun = F::parse(&f)
            .filter(|f| *f != F::Append)
            .ok_or_else(|| format!(":f: expected one of :read, :write, :cas, got {f}"))?;
        let error = form.get("error").map(name_of);
        let invocation = if kind == OpType::Invoke {
            None
        } else {
            self.open.remove(&process)
        };
        let (key, v) = match (form.get("value"), &invocation) {
            (Some(value), _) => {
                let (key, v) = split_tuple(fun, value)?;
                (self.key(&key), v)
            }
            (None, Some(inv)) => (inv.key.clone(), &Edn::Nil),
            (None, None) => return Err(":value: missing".into()),
        };
        let action = match (fun, &invocation) {
            (F::Read, _) => Action::Read(match kind {
                OpType::Ok => Some(read_value(v)?),
                _ => None,
            }),
            (_, Some(inv)) => inv.action.clone(),
            (F::Write, None) => Action::Write(int(v, ":value")?),
            (F::Cas, None) => match v {
                Edn::Vector(pair) if pair.len() == 2 => Action::Cas(Cas {
                    expected: int_or_nil(&pair[0], ":value")?,
                    new: int(&pair[1], ":value")?,
                    actual: None,
                }),
                _ => return Err(":value: a cas expects [expected new]".into()),
            },
            (F::Append, None) => unreachable!("append is filtered out above"),
        };
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
        self.keys
            .entry(s.to_string())
            .or_insert_with(|| Key::new(s))
            .clone()
    }
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
        other => Err(format!(
            "{field}: expected an integer, got {}",
            other.kind()
        )),
    }
}

fn int_or_nil(v: &Edn, field: &str) -> Result<Option<i64>, String> {
    match v {
        Edn::Nil => Ok(None),
        other => int(other, field).map(Some),
    }
}

fn read_value(v: &Edn) -> Result<Value, String> {
    match v {
        Edn::Nil => Ok(Value::Nil),
        Edn::Int(i) => Ok(Value::Int(*i)),
        Edn::Vector(items) | Edn::List(items) => items
            .iter()
            .map(|x| int(x, ":value"))
            .collect::<Result<_, _>>()
            .map(Value::List),
        other => Err(format!(
            ":value: expected nil, an integer or a list of integers, got {}",
            other.kind()
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

    #[test]
    fn malformed_input_names_the_line() {
        let cases = [
            (
                "{:type :invoke :f :read :value [1 nil] :process 0 :time 1}\n{:type :done :f :read :process 0 :time 2}",
                "h.edn:2: :type: expected one of",
            ),
            (
                "{:type :invoke :f :read :value [1 nil] :process 0}\n\n{:type :ok :f :read :value [1 \"x\"] :process 0}",
                "h.edn:3: :value: expected nil, an integer",
            ),
            (
                "{:type :invoke :f :frob :value [1 nil] :process 0}",
                "h.edn:1: :f: expected one of :read, :write, :cas, got frob",
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
                "h.edn:1: :value: expected an integer, got nil",
            ),
            (
                "[{:type :invoke :f :read :value [1 nil] :process 0}\n",
                "h.edn:2: unexpected end of input, expected ']'",
            ),
            (
                "{:type :invoke :f :read :value [1 nil] :process 0}\n[1 2]",
                "h.edn:2: expected an op map, got a vector",
            ),
            (
                "{:type :invoke\n :f :read :value [1 nil]\n :process 0",
                "h.edn:3: unexpected end of input",
            ),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_err().to_string();
            assert!(got.starts_with(want), "{text:?}\n got: {got}\nwant: {want}");
        }
    }
}
