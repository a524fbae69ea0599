//! `history.jsonl`: one JSON object per line (`docs/contract.md`, "history.jsonl").
//!
//! - [`read_jsonl`] parses a file into a validated [`History`], with errors
//!   that name the file, the line and the field; big files are read in
//!   blocks on threads (`blocks.rs`), each line by a small JSON scanner
//!   (`scan.rs`) and the rules of the format (`line.rs`).
//! - [`HistoryWriter`] appends ops, numbering them and flushing each line, so
//!   a harness that crashes mid-run still leaves a history that can be
//!   checked. [`encode_line`] is the one place that decides the field order
//!   of a line.

mod blocks;
mod line;
mod scan;

use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::op::{Action, Op, Payload, StrOp, Value};
use super::{History, HistoryError};

/// Reads and validates a `history.jsonl` file. Blank lines are skipped;
/// unknown fields are ignored (newer writers may add some).
pub fn read_jsonl(path: &Path) -> Result<History, HistoryError> {
    let ops = read_jsonl_ops(path)?;
    History::new(ops).map_err(|e| HistoryError::line(path, op_line(path, e.position), e.message))
}

/// Every op of a `history.jsonl`, in order, not yet validated.
pub fn read_jsonl_ops(path: &Path) -> Result<Vec<Op>, HistoryError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    blocks::read_ops(path, threads)
}

/// The line of the op at `position` (blank lines do not count as ops): for
/// messages about a whole history, which keeps no line numbers.
pub fn op_line(path: &Path, position: usize) -> usize {
    let Ok(file) = File::open(path) else {
        return 0;
    };
    let mut seen = 0;
    for (i, line) in io::BufReader::new(file).split(b'\n').enumerate() {
        let Ok(line) = line else { break };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if seen == position {
            return i + 1;
        }
        seen += 1;
    }
    0
}

/// Parses JSONL from any reader; `path` is only used in error messages.
pub fn parse_jsonl(reader: impl BufRead, path: &Path) -> Result<History, HistoryError> {
    let mut parser = line::LineParser::default();
    let mut ops = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let op = parser
            .parse(&line)
            .map_err(|e| HistoryError::line(path, line_no, e.message))?;
        ops.push(op);
        lines.push(line_no);
    }
    History::new(ops).map_err(|e| HistoryError::line(path, lines[e.position], e.message))
}

/// Encodes one op as a JSON line (without the newline), fields in the order
/// of `docs/contract.md`: index, time, process, type, f, key, value, then the optional ones.
pub fn encode_line(op: &Op) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(96);
    let _ = write!(s, "{{\"index\":{},\"time\":{},", op.index, op.time);
    match &op.payload {
        Payload::Nemesis(n) => {
            let _ = write!(
                s,
                "\"process\":\"nemesis\",\"type\":\"{}\",\"f\":{},\"value\":{}}}",
                op.kind,
                json_str(&n.f),
                n.value
            );
        }
        Payload::Client(c) => {
            let _ = write!(
                s,
                "\"process\":{},\"type\":\"{}\",\"f\":\"{}\",\"key\":{},\"value\":",
                c.process,
                op.kind,
                c.action.f(),
                json_str(c.key.as_str())
            );
            let int_or_null = |v: Option<i64>| v.map_or("null".to_string(), |v| v.to_string());
            let str_or_null =
                |v: Option<&super::Text>| v.map_or("null".to_string(), |v| json_str(v));
            match &c.action {
                Action::Read(None) | Action::Read(Some(Value::Nil)) => s.push_str("null"),
                Action::Read(Some(Value::Int(v))) | Action::Write(v) | Action::Append(v) => {
                    let _ = write!(s, "{v}");
                }
                Action::Read(Some(Value::List(l))) => {
                    let _ = write!(s, "{}", Json::from(l.clone()));
                }
                Action::Read(Some(Value::Str(v)))
                | Action::Str(StrOp::Put(v))
                | Action::Str(StrOp::Append(v)) => s.push_str(&json_str(v)),
                Action::Cas(cas) => {
                    let _ = write!(s, "[{},{}]", int_or_null(cas.expected), cas.new);
                    if let Some(actual) = cas.actual {
                        let _ = write!(s, ",\"actual\":{}", int_or_null(actual));
                    }
                }
                Action::Str(StrOp::Cas {
                    expected,
                    new,
                    actual,
                }) => {
                    let _ = write!(s, "[{},{}]", str_or_null(expected.as_ref()), json_str(new));
                    if let Some(actual) = actual {
                        let _ = write!(s, ",\"actual\":{}", str_or_null(actual.as_ref()));
                    }
                }
            }
            if let Some(node) = &c.node {
                let _ = write!(s, ",\"node\":{}", json_str(node.as_str()));
            }
            if let Some(error) = &c.error {
                let _ = write!(s, ",\"error\":{}", json_str(error));
            }
            s.push('}');
        }
    }
    s
}

fn json_str(s: &str) -> String {
    Json::from(s).to_string()
}

/// Appends ops to a `history.jsonl`, one line each.
///
/// Each line is flushed to the file as soon as it is written: a harness that
/// is killed mid-run leaves every op it recorded, and at worst a torn last
/// line. (Flushing hands the line to the OS, which is enough for a crash of
/// the harness; it is not an fsync.)
pub struct HistoryWriter {
    out: BufWriter<File>,
    path: PathBuf,
    next_index: u64,
}

impl HistoryWriter {
    /// Creates (or truncates) the file; the first op gets index 0.
    pub fn create(path: &Path) -> io::Result<HistoryWriter> {
        Ok(HistoryWriter {
            out: BufWriter::new(File::create(path)?),
            path: path.to_path_buf(),
            next_index: 0,
        })
    }

    /// Numbers `op` with the next index, writes and flushes its line, and
    /// returns it with its index.
    pub fn write(&mut self, mut op: Op) -> io::Result<Op> {
        op.index = u32::try_from(self.next_index)
            .map_err(|_| io::Error::other("more than 2^32 history lines"))?;
        let mut line = encode_line(&op);
        line.push('\n');
        self.out.write_all(line.as_bytes())?;
        self.out.flush()?;
        self.next_index += 1;
        Ok(op)
    }

    /// The index the next op will get.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The file written, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes a whole history at once (indexes as they are), flushing at the end.
pub fn write_jsonl(path: &Path, ops: &[Op]) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    for op in ops {
        out.write_all(encode_line(op).as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Cas, ClientOp, NodeName, ProcessId, Text};

    fn parse(text: &str) -> Result<History, HistoryError> {
        parse_jsonl(text.as_bytes(), Path::new("h.jsonl"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_spec_example() {
        let h = parse(concat!(
            r#"{"index":0,"time":1200345,"process":3,"type":"invoke","f":"cas","key":"k2","value":[1,4],"node":"n2"}"#,
            "\n",
            r#"{"index":1,"time":1843002,"process":3,"type":"fail","f":"cas","key":"k2","value":[1,4],"error":"mismatch","actual":7}"#,
            "\n\n",
            r#"{"index":2,"time":1900211,"process":"nemesis","type":"info","f":"start-partition","value":[["n1"],["n2","n3"]]}"#,
            "\n",
        ))
        .unwrap();
        assert_eq!(h.ops().len(), 3);
        let op = h.operations().next().unwrap();
        assert!(op.completion_client().unwrap().is_mismatch());
        assert_eq!(op.completed_cas().unwrap().actual, Some(Some(7)));
        assert_eq!(op.client().node.as_ref().unwrap().as_str(), "n2");
    }

    #[test]
    fn round_trips_every_kind_of_op() {
        let p = ProcessId(4);
        let s = |action| ClientOp::new(ProcessId(7), "s", action);
        let put = || s(Action::Str(StrOp::Put("a\"é".into())));
        let append = || s(Action::Str(StrOp::Append("b".into())));
        let cas = |actual| {
            s(Action::Str(StrOp::Cas {
                expected: None,
                new: Text::new("c"),
                actual,
            }))
        };
        let ops = vec![
            Op::invoke(1, ClientOp::new(p, "k\"1", Action::Read(None))),
            Op::ok(
                2,
                ClientOp::new(p, "k\"1", Action::Read(Some(Value::Int(-3)))),
            ),
            Op::invoke(3, ClientOp::new(p, "k2", Action::Read(None))),
            Op::ok(4, ClientOp::new(p, "k2", Action::Read(Some(Value::Nil)))),
            Op::invoke(5, ClientOp::new(p, "l", Action::Append(9))),
            Op::info(6, ClientOp::new(p, "l", Action::Append(9)), "timeout"),
            Op::invoke(7, ClientOp::new(ProcessId(5), "l", Action::Read(None))),
            Op::ok(
                8,
                ClientOp::new(
                    ProcessId(5),
                    "l",
                    Action::Read(Some(Value::List(vec![9, 1]))),
                ),
            ),
            Op::nemesis(9, "start-kill", serde_json::json!({"nodes": ["n1"]})),
            Op::invoke(
                10,
                ClientOp::new(ProcessId(6), "k2", Action::cas(None, 2))
                    .with_node(NodeName::new("n3")),
            ),
            Op::fail(
                11,
                ClientOp::new(
                    ProcessId(6),
                    "k2",
                    Action::Cas(Cas {
                        expected: None,
                        new: 2,
                        actual: Some(Some(5)),
                    }),
                ),
                "mismatch",
            ),
            Op::invoke(12, put()),
            Op::ok(13, put()),
            Op::invoke(14, append()),
            Op::ok(15, append()),
            Op::invoke(16, cas(None)),
            Op::fail(17, cas(Some(Some(Text::new("a\"éb")))), "mismatch"),
            Op::invoke(18, s(Action::Read(None))),
            Op::ok(19, s(Action::Read(Some(Value::Str("a\"éb".into()))))),
        ];
        let text: String = ops
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let mut o = o.clone();
                o.index = i as u32;
                encode_line(&o) + "\n"
            })
            .collect();
        let h = parse(&text).unwrap();
        for (i, (a, b)) in ops.iter().zip(h.ops()).enumerate() {
            let mut a = a.clone();
            a.index = i as u32;
            assert_eq!(&a, b, "line {}", i + 1);
        }
    }

    #[test]
    fn malformed_lines_name_the_line_and_field() {
        let ok =
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read","key":"a","value":null}"#;
        let cases = [
            ("{not json", "h.jsonl:2: invalid JSON"),
            (
                r#"{"index":1,"time":0,"process":1,"type":"invoke","f":"read","key":"a"}"#,
                "h.jsonl:2: field \"time\": 0 ns is earlier than the previous line's 1 ns",
            ),
            (
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"write","key":"a","value":[1]}"#,
                "h.jsonl:2: field \"value\": expected an integer or a string",
            ),
            (r#"[1,2]"#, "h.jsonl:2: expected a JSON object"),
            (
                r#"{"index":1,"time":2,"process":0,"type":"done","f":"read","key":"a"}"#,
                "h.jsonl:2: field \"type\": expected one of invoke, ok, fail, info",
            ),
            (
                r#"{"index":1,"time":2,"process":0,"type":"ok","f":"frob","key":"a"}"#,
                "h.jsonl:2: field \"f\": expected one of read, write, cas, append",
            ),
            (
                r#"{"index":1,"process":0,"type":"ok","f":"read","key":"a","value":1}"#,
                "h.jsonl:2: field \"time\": missing",
            ),
            (
                r#"{"index":1,"time":-2,"process":0,"type":"ok","f":"read","key":"a","value":1}"#,
                "h.jsonl:2: field \"time\": expected a non-negative integer",
            ),
            (
                r#"{"index":1,"time":2,"process":0,"type":"ok","f":"read","key":"a","value":{"x":1}}"#,
                "h.jsonl:2: field \"value\": expected an integer, a list of integers, a string or null",
            ),
            (
                r#"{"index":1,"time":2,"process":0,"type":"ok","f":"read","key":3,"value":1}"#,
                "h.jsonl:2: field \"key\": expected a string",
            ),
            (
                r#"{"index":1,"time":2,"process":"n1","type":"ok","f":"read","key":"a","value":1}"#,
                "h.jsonl:2: field \"process\": expected a non-negative integer or \"nemesis\"",
            ),
            (
                r#"{"index":1,"time":2,"process":1,"type":"ok","f":"read","key":"a","value":1}"#,
                "h.jsonl:2: ok completion for process 1 without an outstanding invocation",
            ),
            (
                r#"{"index":1,"time":2,"process":0,"type":"invoke","f":"read","key":"a"}"#,
                "h.jsonl:2: process 0 invokes an operation while its operation at index 0 is still outstanding",
            ),
            (
                r#"{"index":1,"time":2,"process":1,"type":"invoke","f":"cas","key":"a","value":[1]}"#,
                "h.jsonl:2: field \"value\": expected [expected, new]",
            ),
            (
                r#"{"index":0,"time":2,"process":1,"type":"invoke","f":"read","key":"a"}"#,
                "h.jsonl:2: field \"index\": 0 is not greater than the previous index 0",
            ),
        ];
        for (line, want) in cases {
            let got = err(&format!("{ok}\n{line}\n"));
            assert!(
                got.starts_with(want),
                "line {line}\n got: {got}\nwant: {want}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let h = parse(
            r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","key":"a","value":1,"trace":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(h.operation_count(), 1);
    }

    #[test]
    fn writer_numbers_and_flushes_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let mut w = HistoryWriter::create(&path).unwrap();
        let c = ClientOp::new(ProcessId(0), "a", Action::Write(1));
        assert_eq!(w.write(Op::invoke(5, c.clone())).unwrap().index, 0);
        // Readable before the writer is dropped: each line is flushed.
        let h = read_jsonl(&path).unwrap();
        assert_eq!(h.ops().len(), 1);
        assert_eq!(w.write(Op::ok(6, c)).unwrap().index, 1);
        assert_eq!(w.next_index(), 2);
        assert_eq!(
            read_jsonl(&path)
                .unwrap()
                .operations()
                .next()
                .unwrap()
                .latency(),
            Some(1)
        );
    }
}
