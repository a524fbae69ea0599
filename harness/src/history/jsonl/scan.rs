//! A JSON scanner for one line of `history.jsonl`: it finds the fields of
//! the top-level object as raw byte slices without building a tree, and
//! decodes the few scalars the history uses. Reading a million operations
//! is mostly this loop, so it does no more than the format needs; anything
//! unusual (a nemesis value, an error that is not a string) is handed to
//! serde_json from the raw slice.

use std::borrow::Cow;

/// How deeply a value may nest (as the EDN reader: no history needs more).
const MAX_DEPTH: usize = 256;

/// The top-level fields of one line, as raw JSON slices (a string keeps its
/// quotes). A repeated field keeps its last value, as serde_json does.
/// Each field holds the JSON field of its name (`kind` holds `type`);
/// `None`: the line has no such field.
#[derive(Debug, Default)]
pub struct Fields<'a> {
    pub index: Option<&'a [u8]>,
    pub time: Option<&'a [u8]>,
    pub process: Option<&'a [u8]>,
    pub kind: Option<&'a [u8]>,
    pub f: Option<&'a [u8]>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub node: Option<&'a [u8]>,
    pub error: Option<&'a [u8]>,
    pub actual: Option<&'a [u8]>,
}

/// A syntax error at a byte of the line.
#[derive(Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub at: usize,
    pub message: String,
}

/// Splits a line into its top-level fields; checks that the line is one
/// JSON object (unknown fields are checked and skipped).
pub fn fields(line: &[u8]) -> Result<Fields<'_>, SyntaxError> {
    let mut s = Scanner { b: line, i: 0 };
    let mut out = Fields::default();
    s.ws();
    match s.peek() {
        Some(b'{') => {}
        Some(c @ (b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')) => {
            let what = match c {
                b'[' => "an array",
                b'"' => "a string",
                b't' | b'f' => "a boolean",
                b'n' => "null",
                _ => "a number",
            };
            return Err(SyntaxError {
                at: s.i,
                message: format!("expected a JSON object, got {what}"),
            });
        }
        _ => return Err(s.err("expected a JSON object")),
    }
    s.i += 1;
    s.ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            s.ws();
            let name_start = s.i;
            let escaped = s.skip_string()?;
            let raw_name = &line[name_start + 1..s.i - 1];
            // Field names are ASCII; only an escaped one needs decoding.
            let decoded;
            let name: &[u8] = if escaped {
                decoded = decode_string(&line[name_start..s.i]).map_err(|message| SyntaxError {
                    at: name_start,
                    message: format!("invalid JSON: {message}"),
                })?;
                decoded.as_bytes()
            } else {
                raw_name
            };
            s.ws();
            s.expect(b':')?;
            s.ws();
            let start = s.i;
            s.value()?;
            let raw = &line[start..s.i];
            let slot = match name {
                b"index" => &mut out.index,
                b"time" => &mut out.time,
                b"process" => &mut out.process,
                b"type" => &mut out.kind,
                b"f" => &mut out.f,
                b"key" => &mut out.key,
                b"value" => &mut out.value,
                b"node" => &mut out.node,
                b"error" => &mut out.error,
                b"actual" => &mut out.actual,
                _ => &mut None,
            };
            *slot = Some(raw);
            s.ws();
            match s.peek() {
                Some(b',') => s.i += 1,
                Some(b'}') => {
                    s.i += 1;
                    break;
                }
                _ => return Err(s.err("expected ',' or '}'")),
            }
        }
    }
    s.ws();
    if s.i != line.len() {
        return Err(s.err("trailing characters after the object"));
    }
    Ok(out)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[cold]
    #[inline(never)]
    fn err(&self, message: &str) -> SyntaxError {
        let message = match self.peek() {
            None => format!("invalid JSON: {message}, found the end of the line"),
            Some(c) if c.is_ascii_graphic() || c == b' ' => {
                format!("invalid JSON: {message}, found '{}'", c as char)
            }
            Some(c) => format!("invalid JSON: {message}, found byte 0x{c:02x}"),
        };
        SyntaxError {
            at: self.i,
            message,
        }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.peek() {
            self.i += 1;
        }
    }

    #[inline]
    fn expect(&mut self, c: u8) -> Result<(), SyntaxError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.expected(c))
        }
    }

    #[cold]
    #[inline(never)]
    fn expected(&self, c: u8) -> SyntaxError {
        self.err(&format!("expected '{}'", c as char))
    }

    /// Skips a string; returns whether it has escapes.
    #[inline]
    fn skip_string(&mut self) -> Result<bool, SyntaxError> {
        self.expect(b'"')?;
        let mut escaped = false;
        loop {
            let rest = &self.b[self.i..];
            // Most strings are short and plain: look for the end directly.
            let Some(n) = rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
            else {
                self.i = self.b.len();
                return Err(self.err("unterminated string"));
            };
            self.i += n;
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    return Ok(escaped);
                }
                b'\\' => {
                    escaped = true;
                    self.i += 2;
                }
                _ => return Err(self.err("control character in a string")),
            }
        }
    }

    fn skip_number(&mut self) -> Result<(), SyntaxError> {
        let digits = |s: &mut Scanner<'_>| {
            let from = s.i;
            while s.peek().is_some_and(|c| c.is_ascii_digit()) {
                s.i += 1;
            }
            s.i - from
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let lead = self.peek();
        match digits(self) {
            0 => return Err(self.err("expected a digit")),
            n if n > 1 && lead == Some(b'0') => {
                return Err(self.err("a number cannot start with 0"));
            }
            _ => {}
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.err("expected a digit after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("expected a digit in the exponent"));
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), SyntaxError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err("expected a value"))
        }
    }

    /// Skips one value, checking its syntax. Iterative: a line of twenty
    /// thousand `[` is an error, not a stack overflow.
    fn value(&mut self) -> Result<(), SyntaxError> {
        // What each open container expects next: true for an object.
        let mut open: Vec<bool> = Vec::new();
        loop {
            self.ws();
            // A value.
            match self.peek() {
                Some(b'{') | Some(b'[') => {
                    if open.len() >= MAX_DEPTH {
                        return Err(self.err(&format!(
                            "nested more than {MAX_DEPTH} levels deep (no history needs that)"
                        )));
                    }
                    let object = self.peek() == Some(b'{');
                    self.i += 1;
                    self.ws();
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                    } else {
                        open.push(object);
                        if object {
                            self.skip_string()?;
                            self.ws();
                            self.expect(b':')?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.skip_string()?;
                }
                Some(b'-' | b'0'..=b'9') => self.skip_number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => return Err(self.err("expected a value")),
            }
            // After a value: close containers, or go on to the next item.
            loop {
                let Some(&object) = open.last() else {
                    return Ok(());
                };
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if object {
                            self.ws();
                            self.skip_string()?;
                            self.ws();
                            self.expect(b':')?;
                        }
                        break;
                    }
                    Some(b'}') if object => {
                        self.i += 1;
                        open.pop();
                    }
                    Some(b']') if !object => {
                        self.i += 1;
                        open.pop();
                    }
                    _ => {
                        return Err(self.err(if object {
                            "expected ',' or '}'"
                        } else {
                            "expected ',' or ']'"
                        }));
                    }
                }
            }
        }
    }
}

/// A raw JSON string (quotes included) as text, escapes decoded.
pub fn decode_string(raw: &[u8]) -> Result<Cow<'_, str>, String> {
    let inner = &raw[1..raw.len() - 1];
    fn text(b: &[u8]) -> Result<&str, String> {
        std::str::from_utf8(b)
            .map_err(|e| format!("not UTF-8 at byte {} of the string", e.valid_up_to() + 1))
    }
    if !inner.contains(&b'\\') {
        return text(inner).map(Cow::Borrowed);
    }
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(at) = rest.iter().position(|&c| c == b'\\') {
        out.push_str(text(&rest[..at])?);
        let (c, used) = match rest.get(at + 1) {
            Some(b'"') => ('"', 2),
            Some(b'\\') => ('\\', 2),
            Some(b'/') => ('/', 2),
            Some(b'b') => ('\u{8}', 2),
            Some(b'f') => ('\u{c}', 2),
            Some(b'n') => ('\n', 2),
            Some(b'r') => ('\r', 2),
            Some(b't') => ('\t', 2),
            Some(b'u') => {
                let hex = |from: usize| {
                    rest.get(from..from + 4)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .ok_or_else(|| "invalid \\u escape".to_string())
                };
                let first = hex(at + 2)?;
                if (0xd800..0xdc00).contains(&first) {
                    let low = (rest.get(at + 6..at + 8) == Some(b"\\u"))
                        .then(|| hex(at + 8))
                        .transpose()?
                        .filter(|l| (0xdc00..0xe000).contains(l))
                        .ok_or("a lone surrogate in a \\u escape")?;
                    let c = char::from_u32(0x10000 + ((first - 0xd800) << 10) + (low - 0xdc00))
                        .ok_or("invalid \\u escape")?;
                    (c, 12)
                } else {
                    (
                        char::from_u32(first).ok_or("a lone surrogate in a \\u escape")?,
                        6,
                    )
                }
            }
            _ => return Err("invalid escape in a string".into()),
        };
        out.push(c);
        rest = &rest[at + used..];
    }
    out.push_str(text(rest)?);
    Ok(Cow::Owned(out))
}

/// A raw JSON number that is a non-negative integer.
#[inline]
pub fn as_u64(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() || raw.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &c in raw {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

/// A raw JSON number that is an integer.
#[inline]
pub fn as_i64(raw: &[u8]) -> Option<i64> {
    match raw.strip_prefix(b"-") {
        Some(digits) => {
            let n = as_u64(digits)?;
            if n == 1 << 63 {
                Some(i64::MIN)
            } else {
                i64::try_from(n).ok().map(|n| -n)
            }
        }
        None => i64::try_from(as_u64(raw)?).ok(),
    }
}

/// A raw JSON string without escapes, as its contents (`None`: it has
/// escapes, or is not a string). Not yet checked to be UTF-8.
#[inline]
pub fn plain_string(raw: &[u8]) -> Option<&[u8]> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    (!inner.contains(&b'\\')).then_some(inner)
}

pub fn is_null(raw: &[u8]) -> bool {
    raw == b"null"
}

pub fn is_string(raw: &[u8]) -> bool {
    raw.first() == Some(&b'"')
}

/// The items of a raw JSON array, as raw slices (`None`: not an array).
pub fn array_items(raw: &[u8]) -> Option<Vec<&[u8]>> {
    if raw.first() != Some(&b'[') {
        return None;
    }
    let mut s = Scanner { b: raw, i: 1 };
    let mut items = Vec::new();
    s.ws();
    if s.peek() == Some(b']') {
        return Some(items);
    }
    loop {
        s.ws();
        let start = s.i;
        s.value().ok()?;
        items.push(&raw[start..s.i]);
        s.ws();
        match s.peek()? {
            b',' => s.i += 1,
            b']' => return Some(items),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fields_and_skips_the_rest() {
        let line = br#" {"index":3, "time" : 7,"x":{"a":[1,{"b":null}],"c":"}"},"key":"k\"1","value":[null,-2.5e3]} "#;
        let f = fields(line).unwrap();
        assert_eq!(f.index, Some(&b"3"[..]));
        assert_eq!(f.time, Some(&b"7"[..]));
        assert_eq!(decode_string(f.key.unwrap()).unwrap(), "k\"1");
        assert_eq!(
            array_items(f.value.unwrap()).unwrap(),
            vec![&b"null"[..], &b"-2.5e3"[..]]
        );
        assert!(f.process.is_none());
    }

    #[test]
    fn rejects_what_json_rejects() {
        for (line, want) in [
            (&b"{\"a\":1"[..], "expected ',' or '}', found the end"),
            (b"{\"a\":01}", "cannot start with 0"),
            (b"{\"a\":1} x", "trailing characters"),
            (b"[1]", "expected a JSON object, got an array"),
            (b"{\"a\":tru}", "expected a value"),
            (b"{\"a\":\"x\x01\"}", "control character"),
            (b"{a:1}", "expected '\"'"),
            (
                b"\x00\x01",
                "invalid JSON: expected a JSON object, found byte 0x00",
            ),
        ] {
            let e = fields(line).unwrap_err();
            assert!(
                e.message.contains(want),
                "{:?}: {e:?}",
                String::from_utf8_lossy(line)
            );
        }
        let deep = format!("{{\"a\":{}}}", "[".repeat(20_000));
        assert!(
            fields(deep.as_bytes())
                .unwrap_err()
                .message
                .contains("nested more than 256")
        );
    }

    #[test]
    fn decodes_escapes_and_numbers() {
        assert_eq!(
            decode_string(br#""a\u00e9\ud83d\ude00\n""#).unwrap(),
            "aé😀\n"
        );
        assert!(decode_string(br#""\ud83d""#).is_err());
        assert!(
            decode_string(b"\"\xff\"")
                .unwrap_err()
                .contains("not UTF-8")
        );
        assert_eq!(as_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(as_u64(b"-1"), None);
        assert_eq!(as_u64(b"1.0"), None);
        assert_eq!(as_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(as_i64(b"9223372036854775808"), None);
        assert_eq!(as_i64(b"-0"), Some(0));
        assert_eq!(as_u64(b"18446744073709551616"), None);
        assert_eq!(as_u64(b""), None);
        assert_eq!(plain_string(br#""abc""#), Some(&b"abc"[..]));
        assert_eq!(plain_string(br#""a\"c""#), None);
    }
}
