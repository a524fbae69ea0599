//! One line of `history.jsonl` to one [`Op`]: the rules of `docs/contract.md`
//! ("history.jsonl") field by field, with errors that name the field.

use super::scan::{
    self, Fields, array_items, as_i64, as_u64, decode_string, is_null, is_string, plain_string,
};
use crate::history::hash::FastMap;
use crate::history::op::{
    Action, Cas, ClientOp, F, Key, NemesisOp, NodeName, Op, OpType, Payload, ProcessId, StrOp,
    Text, Value,
};

/// Parses lines, sharing one allocation per distinct key, node name and
/// error.
#[derive(Default)]
pub struct LineParser {
    /// By the raw bytes of the JSON string, quotes included: a key seen
    /// before costs one lookup, no decoding.
    keys: FastMap<Box<[u8]>, Key>,
    nodes: FastMap<Box<[u8]>, NodeName>,
    errors: FastMap<Box<[u8]>, Text>,
}

/// Strings past this many distinct ones in a table are not shared (a
/// history whose every error is different should not grow a table as big
/// as itself).
const MAX_SHARED: usize = 1 << 16;

/// A line that is not an op: what is wrong, and at which byte of the line
/// when it is a syntax error.
#[derive(Debug)]
pub struct LineError {
    pub at: Option<usize>,
    pub message: String,
}

impl From<String> for LineError {
    fn from(message: String) -> LineError {
        LineError { at: None, message }
    }
}

impl From<&str> for LineError {
    fn from(message: &str) -> LineError {
        LineError {
            at: None,
            message: message.to_string(),
        }
    }
}

impl LineParser {
    pub fn parse(&mut self, line: &[u8]) -> Result<Op, LineError> {
        let fields = scan::fields(line).map_err(|e| LineError {
            at: Some(e.at),
            message: e.message,
        })?;
        Ok(self.op(&fields)?)
    }

    fn op(&mut self, fields: &Fields<'_>) -> Result<Op, String> {
        let index = required_u64(fields.index, "index")?;
        let index = u32::try_from(index).map_err(|_| {
            format!(
                "field \"index\": {index} is too large (at most {})",
                u32::MAX - 1
            )
        })?;
        let time = required_u64(fields.time, "time")?;
        let kind = match fields.kind {
            None => return Err("field \"type\": missing".into()),
            Some(b"\"invoke\"") => Some(OpType::Invoke),
            Some(b"\"ok\"") => Some(OpType::Ok),
            Some(b"\"fail\"") => Some(OpType::Fail),
            Some(b"\"info\"") => Some(OpType::Info),
            Some(raw) if is_string(raw) => OpType::parse(&string(raw, "type")?),
            Some(_) => None,
        }
        .ok_or_else(|| format!("field \"type\": expected one of {}", OpType::NAMES))?;
        let f = match fields.f {
            None => return Err("field \"f\": missing".into()),
            Some(raw) if is_string(raw) => match plain_string(raw) {
                Some(b) if b.is_ascii() => {
                    std::borrow::Cow::Borrowed(std::str::from_utf8(b).expect("ASCII is UTF-8"))
                }
                _ => string(raw, "f")?,
            },
            Some(_) => return Err("field \"f\": expected a string".into()),
        };
        let process = match fields.process {
            None => return Err("field \"process\": missing".into()),
            Some(b"\"nemesis\"") => None,
            Some(raw) => Some(ProcessId(as_u64(raw).ok_or(
                "field \"process\": expected a non-negative integer or \"nemesis\"",
            )?)),
        };
        let Some(process) = process else {
            let value = match fields.value {
                None => serde_json::Value::Null,
                Some(raw) => serde_json::from_slice(raw)
                    .map_err(|e| format!("field \"value\": invalid JSON: {e}"))?,
            };
            return Ok(Op {
                index,
                time,
                kind,
                payload: Payload::Nemesis(Box::new(NemesisOp {
                    f: f.into_owned(),
                    value,
                })),
            });
        };
        let f = F::parse(&f)
            .ok_or_else(|| format!("field \"f\": expected one of {}, got {f:?}", F::NAMES))?;
        let key = match fields.key {
            None => return Err("field \"key\": missing".into()),
            Some(raw) if is_string(raw) => self.key(raw)?,
            Some(_) => return Err("field \"key\": expected a string".into()),
        };
        let value = fields.value;
        let action = match f {
            F::Read => Action::Read(match kind {
                OpType::Ok => Some(read_value(value)?),
                _ => None,
            }),
            F::Write => match value {
                Some(raw) if is_string(raw) => Action::Str(StrOp::Put(text(raw, "value")?)),
                _ => Action::Write(required_i64(value, "value", "an integer or a string")?),
            },
            F::Append => match value {
                Some(raw) if is_string(raw) => Action::Str(StrOp::Append(text(raw, "value")?)),
                _ => Action::Append(required_i64(value, "value", "an integer or a string")?),
            },
            F::Cas => cas(value, fields.actual)?,
        };
        let node = match fields.node {
            None => None,
            Some(raw) if is_null(raw) => None,
            Some(raw) if is_string(raw) => Some(self.node(raw)?),
            Some(_) => return Err("field \"node\": expected a string".into()),
        };
        let error = match fields.error {
            None => None,
            Some(raw) if is_null(raw) => None,
            Some(raw) if is_string(raw) => Some(self.error(raw)?),
            // Anything else is kept as its compact JSON text.
            Some(raw) => Some(Text::from(
                serde_json::from_slice::<serde_json::Value>(raw)
                    .map_err(|e| format!("field \"error\": invalid JSON: {e}"))?
                    .to_string(),
            )),
        };
        Ok(Op {
            index,
            time,
            kind,
            payload: Payload::Client(ClientOp {
                process,
                key,
                action,
                node,
                error,
            }),
        })
    }

    fn key(&mut self, raw: &[u8]) -> Result<Key, String> {
        shared(&mut self.keys, raw, "key", Key::new)
    }

    fn node(&mut self, raw: &[u8]) -> Result<NodeName, String> {
        shared(&mut self.nodes, raw, "node", NodeName::new)
    }

    fn error(&mut self, raw: &[u8]) -> Result<Text, String> {
        shared(&mut self.errors, raw, "error", Text::new)
    }
}

/// The value made from a raw JSON string, shared with the lines that had
/// the same one before (up to [`MAX_SHARED`] different ones per table).
fn shared<T: Clone>(
    table: &mut FastMap<Box<[u8]>, T>,
    raw: &[u8],
    field: &str,
    make: impl Fn(&str) -> T,
) -> Result<T, String> {
    if let Some(v) = table.get(raw) {
        return Ok(v.clone());
    }
    let v = make(&string(raw, field)?);
    if table.len() < MAX_SHARED {
        table.insert(raw.into(), v.clone());
    }
    Ok(v)
}

fn string<'a>(raw: &'a [u8], name: &str) -> Result<std::borrow::Cow<'a, str>, String> {
    decode_string(raw).map_err(|e| format!("field {name:?}: {e}"))
}

fn text(raw: &[u8], name: &str) -> Result<Text, String> {
    string(raw, name).map(|s| Text::new(&s))
}

fn required_u64(v: Option<&[u8]>, name: &str) -> Result<u64, String> {
    as_u64(v.ok_or_else(|| format!("field {name:?}: missing"))?)
        .ok_or_else(|| format!("field {name:?}: expected a non-negative integer"))
}

fn required_i64(v: Option<&[u8]>, name: &str, want: &str) -> Result<i64, String> {
    as_i64(v.ok_or_else(|| format!("field {name:?}: missing"))?)
        .ok_or_else(|| format!("field {name:?}: expected {want}"))
}

fn read_value(v: Option<&[u8]>) -> Result<Value, String> {
    const WANT: &str = "field \"value\": expected an integer, a list of integers, a string or null";
    let raw = v.ok_or("field \"value\": missing (an ok read carries the value read)")?;
    if is_null(raw) {
        return Ok(Value::Nil);
    }
    if is_string(raw) {
        return text(raw, "value").map(Value::Str);
    }
    if let Some(items) = array_items(raw) {
        return items
            .iter()
            .map(|x| as_i64(x).ok_or(WANT.to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::List);
    }
    as_i64(raw).map(Value::Int).ok_or(WANT.into())
}

/// `[expected, new]`, both integers or both strings (expected may be
/// null), and the `actual` a mismatch reported.
fn cas(value: Option<&[u8]>, actual: Option<&[u8]>) -> Result<Action, String> {
    const WANT: &str = "field \"value\": expected [expected, new] with expected an integer or null and new an integer (or both strings)";
    let items = value.and_then(array_items).ok_or(WANT)?;
    let [expected, new] = items.as_slice() else {
        return Err(WANT.into());
    };
    if is_string(new) {
        let expected = match *expected {
            e if is_null(e) => None,
            e if is_string(e) => Some(text(e, "value")?),
            _ => return Err(WANT.into()),
        };
        let actual = match actual {
            None => None,
            Some(a) if is_null(a) => Some(None),
            Some(a) if is_string(a) => Some(Some(text(a, "actual")?)),
            Some(_) => return Err("field \"actual\": expected a string or null".into()),
        };
        return Ok(Action::Str(StrOp::Cas {
            expected,
            new: text(new, "value")?,
            actual,
        }));
    }
    let expected = match *expected {
        e if is_null(e) => None,
        e => Some(as_i64(e).ok_or(WANT)?),
    };
    let actual = match actual {
        None => None,
        Some(a) if is_null(a) => Some(None),
        Some(a) => Some(Some(
            as_i64(a).ok_or("field \"actual\": expected an integer or null")?,
        )),
    };
    Ok(Action::Cas(Cas {
        expected,
        new: as_i64(new).ok_or(WANT)?,
        actual,
    }))
}
