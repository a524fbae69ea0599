//! Reading a history in any of the formats the harness knows, told apart
//! by their content (or named by `--format`):
//!
//! - `jsonl`: the harness's own `history.jsonl` ([`super::jsonl`]).
//! - `edn`: Jepsen's `history.edn`, Knossos's test data (one vector or list
//!   of ops, op maps or tuples), Porcupine's kv logs ([`super::jepsen`]).
//! - `text`: Jepsen's `history.txt` and `jepsen.util` log lines, as in
//!   Knossos's and Porcupine's corpora ([`super::text`]).
//!
//! Then, as asked: string values instead of integers, positions instead of
//! times. What a format says about the initial values of keys is kept
//! with the history ([`History::convention`]).

use std::path::Path;

use super::op::{Action, Cas, Op, Payload, StrOp, Text, Value};
use super::{Convention, History, HistoryError};

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The harness's `history.jsonl`, one JSON object per line.
    Jsonl,
    /// Jepsen's `history.edn` and EDN test data (Knossos, Porcupine).
    Edn,
    /// Jepsen's `history.txt` and `jepsen.util` log lines.
    Text,
}

impl Format {
    /// The names [`Format::name`] gives, for "expected one of" messages
    /// (`parse` also takes `json`, `txt` and `log`).
    pub const NAMES: &'static str = "jsonl, edn, text";

    /// The format a `--format` argument names, or a message saying which
    /// names there are.
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "jsonl" | "json" => Ok(Format::Jsonl),
            "edn" => Ok(Format::Edn),
            "text" | "txt" | "log" => Ok(Format::Text),
            _ => Err(format!(
                "unknown format {s:?}; expected one of {}",
                Format::NAMES
            )),
        }
    }

    /// The canonical name, as `--format` takes it and summaries print it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::Text => "text",
        }
    }
}

/// How to read a history.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    /// `None`: tell the format from the content.
    pub format: Option<Format>,
    /// Order events by their position and ignore their times (for files
    /// whose times go backwards).
    pub ignore_times: bool,
    /// Read every integer value as its decimal text: the keys become string
    /// registers whose appends concatenate (the Kv API's own semantics).
    pub strings: bool,
    /// Where Jepsen's and Porcupine's readings of a file differ.
    pub dialect: super::jepsen::Dialect,
}

/// A history and what was learned reading it.
#[derive(Debug)]
pub struct Loaded {
    /// The ops, validated and paired.
    pub history: History,
    /// The format the file was read as (named or detected).
    pub format: Format,
    /// Whether the times are times (else positions: the format had none,
    /// or `--ignore-times`).
    pub timed: bool,
}

/// Reads and validates a history file.
pub fn read_history(path: &Path, opts: &ReadOptions) -> Result<Loaded, HistoryError> {
    let sample = sample(path)?;
    let format = match opts.format {
        Some(f) => f,
        None => detect(&sample).map_err(|message| HistoryError::Content {
            path: path.to_path_buf(),
            message,
        })?,
    };
    let (mut ops, lines, initial, timed) = match format {
        Format::Jsonl => (super::jsonl::read_jsonl_ops(path)?, None, None, true),
        Format::Edn | Format::Text => {
            let text = read_text(path)?;
            let imported = if format == Format::Edn {
                super::jepsen::edn_ops(&text, path, opts.dialect)?
            } else {
                super::text::text_ops(&text, path, opts.dialect)?
            };
            let initial = imported
                .kv_names
                .then(|| porcupine_kv(&imported.ops))
                .flatten();
            (imported.ops, Some(imported.lines), initial, imported.timed)
        }
    };
    if opts.strings {
        for op in &mut ops {
            as_strings(op);
        }
    }
    if opts.ignore_times {
        for (i, op) in ops.iter_mut().enumerate() {
            op.time = i as u64;
        }
    }
    let mut history = History::new(ops).map_err(|e| {
        let line = match &lines {
            Some(lines) => lines[e.position],
            None => super::jsonl::op_line(path, e.position),
        };
        HistoryError::line(path, line, e.message)
    })?;
    if let Some(mut c) = initial {
        if opts.strings {
            c.value = value_as_string(c.value);
        }
        history.set_convention(c);
    }
    Ok(Loaded {
        history,
        format,
        timed: timed && !opts.ignore_times,
    })
}

/// How much of a file detection looks at.
const SAMPLE: usize = 64 << 10;

/// The start of the file, checked to be text.
fn sample(path: &Path) -> Result<Vec<u8>, HistoryError> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(SAMPLE);
    std::fs::File::open(path)
        .and_then(|f| f.take(SAMPLE as u64).read_to_end(&mut buf))
        .map_err(|source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    check_text(&buf, buf.len() == SAMPLE).map_err(|message| HistoryError::Content {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(buf)
}

/// A whole file as text, or an error naming the first byte that is not.
fn read_text(path: &Path) -> Result<String, HistoryError> {
    let bytes = std::fs::read(path).map_err(|source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    check_text(&bytes, false).map_err(|message| HistoryError::Content {
        path: path.to_path_buf(),
        message,
    })?;
    String::from_utf8(bytes).map_err(|e| HistoryError::Content {
        path: path.to_path_buf(),
        message: format!(
            "not text: byte offset {} is not UTF-8",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Text is UTF-8 without NUL bytes; `cut`: the bytes may end inside a
/// character.
fn check_text(bytes: &[u8], cut: bool) -> Result<(), String> {
    if let Some(at) = memchr::memchr(0, bytes) {
        return Err(format!(
            "not a history: binary data (a NUL byte) at byte offset {at}"
        ));
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(()),
        Err(e) if cut && e.error_len().is_none() => Ok(()),
        Err(e) => Err(format!(
            "not a history: byte offset {} is not UTF-8 text (byte 0x{:02x})",
            e.valid_up_to(),
            bytes[e.valid_up_to()]
        )),
    }
}

/// The format of a file from its first bytes.
fn detect(sample: &[u8]) -> Result<Format, String> {
    let text = String::from_utf8_lossy(sample);
    let body = text.trim_start_matches('\u{feff}').trim_start();
    let mut chars = body.chars();
    Ok(match chars.next() {
        // Empty: any reader says "no operations".
        None => Format::Jsonl,
        Some('{') => match chars.find(|c| !c.is_whitespace()) {
            Some(':') => Format::Edn,
            _ => Format::Jsonl,
        },
        Some('[' | '(' | ';' | '#') => Format::Edn,
        Some(_) => Format::Text,
    })
}

/// A history in Porcupine's kv vocabulary (`:get`, `:put`) whose keys hold
/// strings reads every key as starting empty, as Porcupine's kv model does
/// (a get of a key never written returns ""). Not if some read saw a key
/// absent: such a history does not start keys at "".
fn porcupine_kv(ops: &[Op]) -> Option<Convention> {
    let clients = || ops.iter().filter_map(Op::as_client);
    let strings = clients().any(|c| {
        matches!(c.action, Action::Str(_)) || matches!(c.action, Action::Read(Some(Value::Str(_))))
    });
    let reads_absent = clients().any(|c| matches!(c.action, Action::Read(Some(Value::Nil))));
    (strings && !reads_absent).then(|| Convention {
        value: Value::Str(Text::new("")),
        source: "Porcupine's kv histories (:get, :put): every key starts as \"\"",
    })
}

/// Every integer value of an op as its decimal text.
fn as_strings(op: &mut Op) {
    let Payload::Client(c) = &mut op.payload else {
        return;
    };
    let t = |i: &i64| Text::from(i.to_string());
    c.action = match &c.action {
        Action::Read(v) => Action::Read(v.clone().map(value_as_string)),
        Action::Write(v) => Action::Str(StrOp::Put(t(v))),
        Action::Append(v) => Action::Str(StrOp::Append(t(v))),
        Action::Cas(Cas {
            expected,
            new,
            actual,
        }) => Action::Str(StrOp::Cas {
            expected: expected.as_ref().map(t),
            new: t(new),
            actual: actual.map(|a| a.as_ref().map(t)),
        }),
        Action::Str(s) => Action::Str(s.clone()),
    };
}

fn value_as_string(v: Value) -> Value {
    match v {
        Value::Int(i) => Value::Str(Text::from(i.to_string())),
        // A list read stays a list: the history then mixes models, and
        // validation says where.
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_from_content() {
        let cases: [(&str, Format); 9] = [
            ("{\"index\":0}", Format::Jsonl),
            ("\u{feff}  \n{ \"a\": 1}", Format::Jsonl),
            ("{:type :invoke}", Format::Edn),
            ("[{:type :invoke}]", Format::Edn),
            ("({:type :invoke})", Format::Edn),
            ("; comment\n{:a 1}", Format::Edn),
            ("0\t:invoke\t:read\tnil", Format::Text),
            ("INFO  jepsen.util - 0 :invoke :read nil", Format::Text),
            ("", Format::Jsonl),
        ];
        for (text, want) in cases {
            assert_eq!(detect(text.as_bytes()), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn binary_data_is_named_by_its_offset() {
        assert_eq!(
            check_text(b"{\"a\":1}\n\x00\x01", false),
            Err("not a history: binary data (a NUL byte) at byte offset 8".into())
        );
        assert_eq!(
            check_text(b"abc\xff", false),
            Err("not a history: byte offset 3 is not UTF-8 text (byte 0xff)".into())
        );
        // A sample may end inside a character.
        assert_eq!(check_text("aé".as_bytes()[..2].as_ref(), true), Ok(()));
    }
}
