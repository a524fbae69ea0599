//! A checker's verdict, written in `results.json` as `true`, `false` or
//! `"unknown"` (as Jepsen does).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a checker concluded. `Unknown` is not a soft `Valid`: the process
/// exits 2, not 0, because nothing was shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Checked, and no anomaly found.
    Valid,
    /// An anomaly was found.
    Invalid,
    /// No anomaly found, but the checker could not decide (time or memory
    /// budget spent, or nothing to decide on).
    Unknown,
}

impl Verdict {
    /// Any invalid makes the whole invalid; else any unknown makes it unknown.
    pub fn combine(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let mut out = Verdict::Valid;
        for v in verdicts {
            match v {
                Verdict::Invalid => return Verdict::Invalid,
                Verdict::Unknown => out = Verdict::Unknown,
                Verdict::Valid => {}
            }
        }
        out
    }

    /// The verdict in words, as summaries and reports print it (not as
    /// `results.json` writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Verdict::Valid => s.serialize_bool(true),
            Verdict::Invalid => s.serialize_bool(false),
            Verdict::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Verdict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Verdict, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(true) => Ok(Verdict::Valid),
            serde_json::Value::Bool(false) => Ok(Verdict::Invalid),
            serde_json::Value::String(s) if s == "unknown" => Ok(Verdict::Unknown),
            other => Err(serde::de::Error::custom(format!(
                "expected true, false or \"unknown\", got {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combines_and_serializes() {
        use Verdict::*;
        assert_eq!(Verdict::combine([Valid, Unknown, Valid]), Unknown);
        assert_eq!(Verdict::combine([Unknown, Invalid]), Invalid);
        assert_eq!(Verdict::combine([]), Valid);
        for (v, json) in [
            (Valid, "true"),
            (Invalid, "false"),
            (Unknown, "\"unknown\""),
        ] {
            assert_eq!(serde_json::to_string(&v).unwrap(), json);
            assert_eq!(serde_json::from_str::<Verdict>(json).unwrap(), v);
        }
        assert!(serde_json::from_str::<Verdict>("1").is_err());
    }
}
