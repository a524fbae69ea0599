//! Jepsen's line formats: `history.txt` (one op per line, the fields
//! separated by tabs: `process type f value [error]`, values in EDN, an
//! index first in newer files) and the `jepsen.util` log lines that
//! Jepsen's older tests printed and that Knossos's and Porcupine's test
//! corpora are made of (`INFO  jepsen.util - 2 :invoke :cas [3 0]`, tab-separated).
//!
//! Neither has times: the position of a line is its time, as Knossos and
//! Porcupine read them. In a log, lines that are not operations (anything
//! without `jepsen.util - ` followed by a process and a type) are other
//! log output and are skipped; in a `history.txt` every non-blank line must
//! be an op.

use std::path::Path;

use super::edn::{Edn, Reader};
use super::jepsen::{Dialect, Imported, Importer, RawOp};
use super::{HistoryError, OpType};

/// Where a log line's op starts.
const LOG_MARK: &str = "jepsen.util - ";

/// Whether `text` looks like Jepsen log output (some line carries an op
/// after [`LOG_MARK`]).
fn is_log(text: &str) -> bool {
    text.lines().take(1000).any(|l| l.contains(LOG_MARK))
}

/// The ops of a `history.txt` or a log, unvalidated, with the line of each.
pub(crate) fn text_ops(
    text: &str,
    path: &Path,
    dialect: Dialect,
) -> Result<Imported, HistoryError> {
    let log = is_log(text);
    let mut importer = Importer::new(dialect);
    let mut ops = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let body = if log {
            match line.find(LOG_MARK) {
                Some(at) => &line[at + LOG_MARK.len()..],
                None => continue,
            }
        } else {
            line
        };
        let body = body.trim();
        if body.is_empty() || body.starts_with(';') {
            continue;
        }
        let err = |message: String| HistoryError::line(path, line_no, message);
        let items = match line_forms(body) {
            Ok(items) => items,
            Err(_) if log => continue,
            Err(e) => return Err(err(e)),
        };
        // `process type f value [error]`, or `index process type f ...`.
        let is_type =
            |e: Option<&Edn>| matches!(e, Some(Edn::Keyword(k)) if OpType::parse(k).is_some());
        let start = if is_type(items.get(1)) {
            0
        } else if is_type(items.get(2)) && matches!(items.first(), Some(Edn::Int(_))) {
            1
        } else if log {
            continue;
        } else {
            return Err(err(
                "expected an op: process, type, f and value separated by tabs \
                 (as Jepsen's history.txt), e.g. `3\t:invoke\t:read\tnil`"
                    .into(),
            ));
        };
        let raw = RawOp::from_items(line_no, &items[start..]);
        let position = ops.len() as u64;
        let index = u32::try_from(position).map_err(|_| err("too many operations".into()))?;
        let op = importer.op(&raw, position, index).map_err(err)?;
        ops.push(op);
        lines.push(line_no);
    }
    Ok(Imported {
        ops,
        lines,
        kv_names: importer.kv_names,
        timed: false,
    })
}

/// The EDN forms of one line.
fn line_forms(body: &str) -> Result<Vec<Edn>, String> {
    let mut r = Reader::new(body);
    let mut items = Vec::new();
    while let Some((_, form)) = r.next_form().map_err(|e| e.message)? {
        items.push(form);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Action, History, Outcome, Value};

    fn parse(text: &str) -> Result<History, HistoryError> {
        let path = Path::new("h.txt");
        let imported = text_ops(text, path, Dialect::default())?;
        let lines = imported.lines;
        History::new(imported.ops)
            .map_err(|e| HistoryError::line(path, lines[e.position], e.message))
    }

    /// The first lines of the history attached to jepsen-io/knossos#13.
    #[test]
    fn reads_jepsen_history_txt() {
        let h = parse(
            "0\t:invoke\t:cas\t[4 0]\n0\t:ok\t:cas\t[4 0]\n3\t:invoke\t:read\tnil\n\
             :nemesis\t:info\t:start\tnil\n3\t:ok\t:read\t2\n1\t:invoke\t:write\t0\n1\t:info\t:write\t:timed-out\n",
        )
        .unwrap();
        let ops: Vec<_> = h.operations().collect();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0].client().action, Action::cas(Some(4), 0));
        assert_eq!(ops[1].read_value(), Some(&Value::Int(2)));
        assert_eq!(ops[2].outcome(), Outcome::Info);
        assert_eq!(ops[2].error(), Some("timed-out"));
        assert_eq!(h.nemesis_ops().count(), 1);
        // Positions are times.
        assert_eq!(ops[1].completion.unwrap().time, 4);
    }

    #[test]
    fn reads_log_lines_and_skips_other_output() {
        let h = parse(
            "INFO  jepsen.core - Running test\nINFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n\
             2014-05-01 INFO jepsen.util - 2 :fail :cas [3 0]\nINFO  jepsen.util - 0 :invoke :read nil\n\
             INFO  jepsen.util - Nemesis ready\nINFO  jepsen.util - 0\t:fail\t:read\t:timed-out\n",
        )
        .unwrap();
        let ops: Vec<_> = h.operations().collect();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].outcome(), Outcome::Fail);
        assert!(!ops[0].completion_client().unwrap().is_mismatch());
        assert_eq!(ops[1].outcome(), Outcome::Fail);
    }

    #[test]
    fn an_index_column_is_allowed_and_bad_lines_name_their_line() {
        let h = parse("0\t5\t:invoke\t:write\t1\n1\t5\t:ok\t:write\t1\n").unwrap();
        assert_eq!(h.operations().next().unwrap().client().process.0, 5);
        let e = parse("0\t:invoke\t:write\t1\n\nhello world\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("h.txt:3: expected an op"), "{e}");
        let e = parse("0\t:invoke\t:write\t[1\n").unwrap_err().to_string();
        assert!(e.starts_with("h.txt:1: unexpected end of input"), "{e}");
    }
}
