//! What keys hold before the history begins. Absent, unless said: by
//! `--initial-value` (every key, or `KEY=VALUE` for one), or by a
//! convention of the history's format (Porcupine's kv starts keys at "").
//! Knossos's `cas-register` model takes its initial value in code (its own
//! tests use 0), so a Jepsen history may need `--initial-value 0` when its
//! register did not start with a write.

use std::collections::BTreeMap;

use crate::history::{Text, Value};

/// The initial values of keys; a key not named starts as `all`, else absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InitialValues {
    /// What every key not in `keys` starts as (`None` or `Nil`: absent).
    pub all: Option<Value>,
    /// Per-key values (`KEY=VALUE`), which win over `all`.
    pub keys: BTreeMap<String, Value>,
    /// Where `all` came from, when not from the command line.
    pub convention: Option<&'static str>,
}

impl InitialValues {
    /// The value `key` starts with (`None`: absent).
    pub fn of(&self, key: &str) -> Option<&Value> {
        self.keys
            .get(key)
            .or(self.all.as_ref())
            .filter(|v| **v != Value::Nil)
    }

    /// Whether nothing was said: every key starts absent, unless the
    /// history's format has a convention.
    pub fn is_empty(&self) -> bool {
        self.all.is_none() && self.keys.is_empty()
    }

    /// Adds one `--initial-value` argument: `JSON` (every key) or
    /// `KEY=JSON`.
    pub fn add_arg(&mut self, arg: &str) -> Result<(), String> {
        if let Ok(v) = parse_value(arg) {
            self.all = Some(v);
            self.convention = None;
            return Ok(());
        }
        let Some((key, json)) = arg.split_once('=') else {
            return Err(format!(
                "expected a JSON value (every key) or KEY=VALUE, got {arg:?} \
                 (a string is written with its quotes: '\"a\"')"
            ));
        };
        let v = parse_value(json).map_err(|e| format!("{key}={json}: {e}"))?;
        self.keys.insert(key.to_string(), v);
        Ok(())
    }
}

/// A value as JSON: null (absent), an integer, a string, or a list of
/// integers.
fn parse_value(json: &str) -> Result<Value, String> {
    let want = "expected null, an integer, a string (in quotes) or a list of integers";
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|_| format!("{json:?} is not JSON; {want}"))?;
    Ok(match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::String(s) => Value::Str(Text::from(s)),
        serde_json::Value::Array(items) => Value::List(
            items
                .iter()
                .map(serde_json::Value::as_i64)
                .collect::<Option<_>>()
                .ok_or_else(|| want.to_string())?,
        ),
        v => Value::Int(v.as_i64().ok_or_else(|| want.to_string())?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_or_one_key() {
        let mut i = InitialValues::default();
        i.add_arg("0").unwrap();
        i.add_arg("k=\"x\"").unwrap();
        i.add_arg("l=[1,2]").unwrap();
        i.add_arg("m=null").unwrap();
        assert_eq!(i.of("other"), Some(&Value::Int(0)));
        assert_eq!(i.of("k"), Some(&Value::Str("x".into())));
        assert_eq!(i.of("l"), Some(&Value::List(vec![1, 2])));
        assert_eq!(i.of("m"), None, "null is absent");
        assert!(i.add_arg("k=x").unwrap_err().contains("not JSON"));
        assert!(i.add_arg("x").unwrap_err().contains("KEY=VALUE"));
        assert!(i.add_arg("1.5").is_err());
        let mut s = InitialValues::default();
        s.add_arg("\"a=b\"").unwrap();
        assert_eq!(s.of("k"), Some(&Value::Str("a=b".into())));
    }
}
