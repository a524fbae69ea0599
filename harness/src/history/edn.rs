//! A small EDN reader: just what Jepsen's `history.edn` needs.
//!
//! Reads nil, booleans, integers (with an optional `N`), floats, strings,
//! characters, keywords, symbols, lists, vectors, maps, sets, tagged
//! literals (`#inst "..."`, records such as `#jepsen.independent.Tuple{...}`,
//! `#object[...]`), comments and `#_` discards. Every error carries the line
//! it was found on. Maps keep their entries in order as a list of pairs: op
//! maps are small and this keeps [`Edn`] free of hashing rules.
//!
//! Nesting is bounded ([`MAX_DEPTH`]): the reader recurses, and a file of
//! twenty thousand `[` must be an error, not a stack overflow.

use std::fmt;

/// An EDN value.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// An integer (`42`, `42N`, or hex as Clojure prints addresses); one
    /// that does not fit in 64 bits is an error, not a float.
    Int(i64),
    /// A floating-point number (`1.5`, `1e3`, `2M`).
    Float(f64),
    /// A string, escapes decoded.
    Str(String),
    /// A character literal (`\a`, `\newline`).
    Char(char),
    /// A keyword without its colon: `:type` is `Keyword("type")`.
    Keyword(String),
    /// A bare name (`jepsen.util`, `+`); Jepsen writes few.
    Symbol(String),
    /// `(...)`: how Knossos's test data writes a history.
    List(Vec<Edn>),
    /// `[...]`: a history, an op tuple, a cas's `[expected new]`.
    Vector(Vec<Edn>),
    /// `{...}`: the entries in the order written (duplicates kept).
    Map(Vec<(Edn, Edn)>),
    /// `#{...}`: the items in the order written.
    Set(Vec<Edn>),
    /// `#tag value`, tag without the `#`.
    Tagged(String, Box<Edn>),
}

impl Edn {
    /// The value of keyword key `:name` in a map.
    pub fn get(&self, name: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => entries.iter().find_map(|(k, v)| match k {
                Edn::Keyword(k) if k == name => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// A short name of the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Edn::Nil => "nil",
            Edn::Bool(_) => "a boolean",
            Edn::Int(_) => "an integer",
            Edn::Float(_) => "a float",
            Edn::Str(_) => "a string",
            Edn::Char(_) => "a character",
            Edn::Keyword(_) => "a keyword",
            Edn::Symbol(_) => "a symbol",
            Edn::List(_) => "a list",
            Edn::Vector(_) => "a vector",
            Edn::Map(_) => "a map",
            Edn::Set(_) => "a set",
            Edn::Tagged(..) => "a tagged literal",
        }
    }
}

impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(f: &mut fmt::Formatter<'_>, open: &str, items: &[Edn], close: &str) -> fmt::Result {
            f.write_str(open)?;
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{x}")?;
            }
            f.write_str(close)
        }
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::Float(x) => write!(f, "{x:?}"),
            Edn::Str(s) => write!(f, "{s:?}"),
            Edn::Char(c) => write!(f, "\\{c}"),
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::List(l) => seq(f, "(", l, ")"),
            Edn::Vector(v) => seq(f, "[", v, "]"),
            Edn::Set(s) => seq(f, "#{", s, "}"),
            Edn::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
            Edn::Tagged(t, v) => write!(f, "#{t} {v}"),
        }
    }
}

/// A syntax error, at a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EdnError {
    /// 1-based line of the text where the error was found.
    pub line: usize,
    /// What was expected and what was found.
    pub message: String,
}

/// How deeply collections and tagged literals may nest. A Jepsen op needs
/// a handful of levels; the bound keeps the recursion far from the end of
/// the stack.
pub const MAX_DEPTH: usize = 256;

/// Reads forms one at a time from a text, tracking the line.
pub struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
    depth: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`, line 1.
    pub fn new(text: &'a str) -> Reader<'a> {
        Reader {
            src: text.as_bytes(),
            pos: 0,
            line: 1,
            depth: 0,
        }
    }

    /// The current line (1-based).
    pub fn line(&self) -> usize {
        self.line
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, EdnError> {
        Err(EdnError {
            line: self.line,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    /// Skips whitespace, commas, comments and `#_` discarded forms, and
    /// returns the next byte without consuming it.
    pub fn peek_form_start(&mut self) -> Result<Option<u8>, EdnError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r' | b',') => {
                    self.bump();
                }
                Some(b';') => {
                    while let Some(b) = self.bump() {
                        if b == b'\n' {
                            break;
                        }
                    }
                }
                Some(b'#') if self.src.get(self.pos + 1) == Some(&b'_') => {
                    self.pos += 2;
                    self.read_form()?;
                }
                other => return Ok(other),
            }
        }
    }

    /// Consumes one byte that [`Self::peek_form_start`] just returned.
    pub fn consume(&mut self) {
        self.bump();
    }

    /// Reads the next form; `None` at the end of the text. Returns the line
    /// the form starts on.
    pub fn next_form(&mut self) -> Result<Option<(usize, Edn)>, EdnError> {
        if self.peek_form_start()?.is_none() {
            return Ok(None);
        }
        let line = self.line;
        Ok(Some((line, self.read_form()?)))
    }

    fn read_form(&mut self) -> Result<Edn, EdnError> {
        if self.depth >= MAX_DEPTH {
            return self.err(format!(
                "nested more than {MAX_DEPTH} levels deep (no history needs that)"
            ));
        }
        self.depth += 1;
        let form = self.read_form_here();
        self.depth -= 1;
        form
    }

    fn read_form_here(&mut self) -> Result<Edn, EdnError> {
        let Some(b) = self.peek_form_start()? else {
            return self.err("unexpected end of input, expected a value");
        };
        match b {
            b'(' => {
                self.bump();
                Ok(Edn::List(self.read_seq(b')')?))
            }
            b'[' => {
                self.bump();
                Ok(Edn::Vector(self.read_seq(b']')?))
            }
            b'{' => {
                self.bump();
                self.read_map()
            }
            b')' | b']' | b'}' => self.err(format!("unexpected {:?}", b as char)),
            b'"' => {
                self.bump();
                self.read_string()
            }
            b'\\' => {
                self.bump();
                self.read_char()
            }
            b'#' => {
                self.bump();
                match self.peek() {
                    Some(b'{') => {
                        self.bump();
                        Ok(Edn::Set(self.read_seq(b'}')?))
                    }
                    Some(b) if is_symbol_byte(b) => {
                        let tag = self.read_token();
                        let value = self.read_form()?;
                        Ok(Edn::Tagged(tag, Box::new(value)))
                    }
                    _ => self.err("expected a tag, a set or a discard after '#'"),
                }
            }
            b':' => {
                self.bump();
                let name = self.read_token();
                if name.is_empty() {
                    return self.err("empty keyword");
                }
                Ok(Edn::Keyword(name))
            }
            b if b.is_ascii_digit()
                || ((b == b'-' || b == b'+')
                    && self.src.get(self.pos + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                let token = self.read_token();
                self.number(&token)
            }
            b if is_symbol_byte(b) => {
                let token = self.read_token();
                Ok(match token.as_str() {
                    "nil" => Edn::Nil,
                    "true" => Edn::Bool(true),
                    "false" => Edn::Bool(false),
                    _ => Edn::Symbol(token),
                })
            }
            b => self.err(format!("unexpected character {:?}", b as char)),
        }
    }

    fn read_seq(&mut self, close: u8) -> Result<Vec<Edn>, EdnError> {
        let start = self.line;
        let mut items = Vec::new();
        loop {
            match self.peek_form_start()? {
                None => {
                    return self.err(format!(
                        "unexpected end of input, expected {:?} to close the collection opened on line {start}",
                        close as char
                    ));
                }
                Some(b) if b == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(_) => items.push(self.read_form()?),
            }
        }
    }

    fn read_map(&mut self) -> Result<Edn, EdnError> {
        let line = self.line;
        let items = self.read_seq(b'}')?;
        if items.len() % 2 != 0 {
            return Err(EdnError {
                line,
                message: "a map needs an even number of forms".into(),
            });
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            entries.push((k, v));
        }
        Ok(Edn::Map(entries))
    }

    fn read_string(&mut self) -> Result<Edn, EdnError> {
        let start = self.line;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.bump() else {
                return self.err(format!(
                    "unexpected end of input in the string opened on line {start}"
                ));
            };
            match b {
                b'"' => break,
                b'\\' => {
                    let esc = self.bump();
                    match esc {
                        Some(b'n') => out.push(b'\n'),
                        Some(b't') => out.push(b'\t'),
                        Some(b'r') => out.push(b'\r'),
                        Some(b'"') => out.push(b'"'),
                        Some(b'\\') => out.push(b'\\'),
                        Some(b'u') => {
                            let c = self.read_unicode_escape()?;
                            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        _ => return self.err("invalid escape in string"),
                    }
                }
                b => out.push(b),
            }
        }
        match String::from_utf8(out) {
            Ok(s) => Ok(Edn::Str(s)),
            Err(_) => self.err("string is not valid UTF-8"),
        }
    }

    fn read_unicode_escape(&mut self) -> Result<char, EdnError> {
        let hex = self.src.get(self.pos..self.pos + 4).unwrap_or_default();
        let code = std::str::from_utf8(hex)
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32);
        match code {
            Some(c) => {
                self.pos += 4;
                Ok(c)
            }
            None => self.err("invalid \\u escape"),
        }
    }

    fn read_char(&mut self) -> Result<Edn, EdnError> {
        // A character is `\` then one character, or a name such as `newline`.
        let Some(first) = self.bump() else {
            return self.err("unexpected end of input after '\\'");
        };
        let mut token = vec![first];
        while let Some(b) = self.peek() {
            if !b.is_ascii_alphanumeric() {
                break;
            }
            token.push(b);
            self.pos += 1;
        }
        let token = String::from_utf8_lossy(&token).into_owned();
        let c = match token.as_str() {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            t if t.chars().count() == 1 => t.chars().next().unwrap_or(' '),
            t if t.starts_with('u') && t.len() == 5 => {
                match u32::from_str_radix(&t[1..], 16)
                    .ok()
                    .and_then(char::from_u32)
                {
                    Some(c) => c,
                    None => return self.err(format!("invalid character \\{t}")),
                }
            }
            t => return self.err(format!("invalid character \\{t}")),
        };
        Ok(Edn::Char(c))
    }

    fn read_token(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_symbol_byte) {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.src[start..self.pos]).into_owned()
    }

    fn number(&self, token: &str) -> Result<Edn, EdnError> {
        let int = token.strip_suffix('N').unwrap_or(token);
        if let Ok(i) = int.parse::<i64>() {
            return Ok(Edn::Int(i));
        }
        // Clojure prints object addresses in hex (`#object[Foo 0x1f "..."]`).
        let (negative, unsigned) = match int.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, int.strip_prefix('+').unwrap_or(int)),
        };
        if let Some(hex) = unsigned
            .strip_prefix("0x")
            .or_else(|| unsigned.strip_prefix("0X"))
        {
            return match i64::from_str_radix(hex, 16) {
                Ok(i) => Ok(Edn::Int(if negative { -i } else { i })),
                Err(_) => self.err(format!("invalid number {token:?}")),
            };
        }
        let digits = int.strip_prefix(['-', '+']).unwrap_or(int);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return self.err(format!("integer {token} does not fit in 64 bits"));
        }
        let float = token.strip_suffix('M').unwrap_or(token);
        match float.parse::<f64>() {
            Ok(x) => Ok(Edn::Float(x)),
            Err(_) => self.err(format!("invalid number {token:?}")),
        }
    }
}

fn is_symbol_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || b"._*+!-?$%&=<>/':#".contains(&b)
}

/// Reads every top-level form of a text.
pub fn parse_all(text: &str) -> Result<Vec<(usize, Edn)>, EdnError> {
    let mut r = Reader::new(text);
    let mut out = Vec::new();
    while let Some(form) = r.next_form()? {
        out.push(form);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Edn {
        let forms = parse_all(text).unwrap();
        assert_eq!(forms.len(), 1, "{forms:?}");
        forms.into_iter().next().unwrap().1
    }

    fn kw(s: &str) -> Edn {
        Edn::Keyword(s.into())
    }

    #[test]
    fn scalars() {
        assert_eq!(one("nil"), Edn::Nil);
        assert_eq!(one("true"), Edn::Bool(true));
        assert_eq!(one("-42"), Edn::Int(-42));
        assert_eq!(one("+7"), Edn::Int(7));
        assert_eq!(one("12N"), Edn::Int(12));
        assert_eq!(one("0x1f"), Edn::Int(31));
        assert_eq!(one("1.5"), Edn::Float(1.5));
        assert_eq!(one("1e3"), Edn::Float(1000.0));
        assert_eq!(one(r#""a\"b\n\u00e9""#), Edn::Str("a\"b\né".into()));
        assert_eq!(one(r"\a"), Edn::Char('a'));
        assert_eq!(one(r"\newline"), Edn::Char('\n'));
        assert_eq!(one(":jepsen.independent/key"), kw("jepsen.independent/key"));
        assert_eq!(one("foo.bar/baz?"), Edn::Symbol("foo.bar/baz?".into()));
        assert_eq!(one("-"), Edn::Symbol("-".into()));
    }

    #[test]
    fn collections_comments_and_discards() {
        let v = one("{:a [1 2 (3)], :b #{:x}, ; comment\n :c #_ ignored nil}");
        assert_eq!(
            v.get("a"),
            Some(&Edn::Vector(vec![
                Edn::Int(1),
                Edn::Int(2),
                Edn::List(vec![Edn::Int(3)])
            ]))
        );
        assert_eq!(v.get("b"), Some(&Edn::Set(vec![kw("x")])));
        assert_eq!(v.get("c"), Some(&Edn::Nil));
        assert_eq!(v.get("d"), None);
    }

    #[test]
    fn tagged_literals_and_records() {
        let v = one("#jepsen.independent.Tuple{:key 3, :value [1 2]}");
        let Edn::Tagged(tag, inner) = v else { panic!() };
        assert_eq!(tag, "jepsen.independent.Tuple");
        assert_eq!(inner.get("key"), Some(&Edn::Int(3)));
        let v = one(r#"#inst "2020-01-01T00:00:00Z""#);
        assert!(matches!(v, Edn::Tagged(t, _) if t == "inst"));
        let v = one(r#"#object[java.lang.Exception 0x1f "boom"]"#);
        assert!(matches!(v, Edn::Tagged(t, _) if t == "object"));
    }

    #[test]
    fn forms_carry_their_line() {
        let forms = parse_all("{:a 1}\n\n{:b\n 2}\n  [3]").unwrap();
        let lines: Vec<usize> = forms.iter().map(|f| f.0).collect();
        assert_eq!(lines, vec![1, 3, 5]);
    }

    #[test]
    fn errors_carry_their_line() {
        let cases = [
            ("{:a 1}\n{:b 2", 2, "expected '}'"),
            ("{:a 1}\n\n{:b}", 3, "even number"),
            ("[1 2]\n)", 2, "unexpected ')'"),
            ("\n\"abc", 2, "string opened on line 2"),
            ("\n\n99999999999999999999", 3, "does not fit"),
            ("1.2.3", 1, "invalid number"),
            ("#", 1, "expected a tag"),
            ("\n:", 2, "empty keyword"),
        ];
        for (text, line, msg) in cases {
            let e = parse_all(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(msg), "{text:?}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_with_its_line_not_a_crash() {
        let text = format!("\n{}{}", "[".repeat(20_000), "]".repeat(20_000));
        let e = parse_all(&text).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("nested more than 256 levels"), "{e}");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_all(&ok).is_ok());
        let e = parse_all(&format!("{}1{}", "#_".repeat(20_000), "")).unwrap_err();
        assert!(e.message.contains("nested"), "{e}");
    }

    #[test]
    fn display_round_trips() {
        let text = r#"{:a [1 nil "x"], :b #{:k}, :c #t (sym 1.5)}"#;
        let v = one(text);
        assert_eq!(one(&v.to_string()), v);
    }
}
