//! Escaping and small formatting helpers for the report's markup.
//!
//! Everything the report shows that came from a file (keys, node names,
//! errors, nemesis values, options, paths) is untrusted: it goes through
//! [`esc`] (text and attribute values) or [`href_segment`] (links). The
//! page is written as XHTML-compatible markup, so [`esc`] also replaces
//! characters that XML 1.0 forbids.

use std::fmt::Write as _;

use crate::history::{Action, Operation, Outcome, Value};

/// Escapes text for element content and double- or single-quoted
/// attribute values. Control characters that XML forbids become U+FFFD.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push('\u{fffd}')
            }
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes one path segment of a relative link (a node id used in
/// `nodes/<id>/node.log`), so it can neither leave the directory nor
/// become a scheme.
pub fn href_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_') {
            out.push(b as char);
        } else if b == b'.' && s != "." && s != ".." {
            out.push('.');
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Cuts `s` to at most `max` characters, with an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// A time since the start of the run, with a precision suited to `span`
/// (the length of what is shown): `12.41 s`, `3.2 ms`.
pub fn fmt_time(ns: u64, span: u64) -> String {
    let x = ns as f64;
    if span >= 2_000_000_000 {
        format!("{:.2} s", x / 1e9)
    } else if span >= 2_000_000 {
        format!("{:.2} ms", x / 1e6)
    } else {
        format!("{:.1} µs", x / 1e3)
    }
}

/// A duration in words: `1.30 ms`, `2.05 s`.
pub fn fmt_duration(ns: u64) -> String {
    crate::check::linearizable::report::fmt_ns(ns)
}

/// `12345` → `12,345`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An operation's function and arguments: `write 3`, `read → 2`,
/// `cas 1→2`, `append 7`, `read` (no value known).
pub fn op_brief(op: &Operation<'_>) -> String {
    match &op.client().action {
        Action::Read(_) => match op.read_value() {
            Some(v) => format!("read → {}", short_value(v)),
            None => "read".to_string(),
        },
        Action::Write(v) => format!("write {v}"),
        Action::Append(v) => format!("append {v}"),
        Action::Cas(c) => format!(
            "cas {}→{}",
            c.expected.map_or("nil".to_string(), |e| e.to_string()),
            c.new
        ),
        Action::Str(s) => s.to_string(),
    }
}

/// A value, lists abbreviated to their last elements.
pub fn short_value(v: &Value) -> String {
    match v {
        Value::List(l) if l.len() > 6 => {
            let tail: Vec<String> = l[l.len() - 3..].iter().map(i64::to_string).collect();
            format!("[… {} more, {}]", l.len() - 3, tail.join(", "))
        }
        v => v.to_string(),
    }
}

/// The outcome as a CSS class and a word.
pub fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
        Outcome::Pending => "pending",
    }
}

/// The CSS class an operation is drawn with: its outcome, except that a
/// cas that failed with `mismatch` (an ordinary answer: the value differed)
/// is told apart from failures such as `not-leader`.
pub fn op_class(op: &Operation<'_>) -> &'static str {
    match op.completion_client() {
        Some(c) if op.outcome() == Outcome::Fail && c.is_mismatch() => "mismatch",
        _ => outcome_class(op.outcome()),
    }
}

/// One line about an operation, for tooltips: `op 12 · process 3 · write 4
/// on k2 via n1 · ok · 1.20 s → 1.21 s (1.30 ms)`.
pub fn op_title(op: &Operation<'_>, span: u64) -> String {
    let c = op.client();
    let mut s = format!(
        "op {} · process {} · {} on {}",
        op.index(),
        c.process,
        op_brief(op),
        c.key
    );
    if let Some(n) = &c.node {
        let _ = write!(s, " via {n}");
    }
    let _ = write!(s, " · {}", outcome_class(op.outcome()));
    if let Some(e) = op.error() {
        let _ = write!(s, " ({e})");
    }
    let _ = write!(s, " · {}", fmt_time(op.invoke.time, span));
    match (op.completion, op.latency()) {
        (Some(c), Some(l)) => {
            let _ = write!(s, " → {} ({})", fmt_time(c.time, span), fmt_duration(l));
        }
        _ => s.push_str(" → no completion"),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_forbidden_characters() {
        assert_eq!(
            esc("<script>alert('x&y')</script>\"\u{1}"),
            "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;&quot;\u{fffd}"
        );
        assert_eq!(esc("k1\tok\n"), "k1\tok\n");
    }

    #[test]
    fn link_segments_cannot_escape_the_directory() {
        assert_eq!(href_segment("n1"), "n1");
        assert_eq!(href_segment(".."), "%2E%2E");
        assert_eq!(href_segment("a/b c\""), "a%2Fb%20c%22");
        assert_eq!(href_segment("javascript:x"), "javascript%3Ax");
    }

    #[test]
    fn numbers_and_times_read_well() {
        assert_eq!(thousands(12345678), "12,345,678");
        assert_eq!(thousands(12), "12");
        assert_eq!(fmt_time(12_410_000_000, 60_000_000_000), "12.41 s");
        assert_eq!(fmt_time(7_000_000, 9_000_000), "7.00 ms");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
