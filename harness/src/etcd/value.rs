//! How workload values are stored in etcd.
//!
//! - register: the integer in decimal ASCII (`42`), as our node stores it;
//! - append: the whole list as a JSON array (`[1,7,12]`). etcd has no
//!   append, so each append rewrites the list; JSON makes the value
//!   self-describing in `etcdctl get` and strict to parse.
//!
//! Decoding is strict: a value the workload never writes is an error that
//! names it, never a guess.

use crate::history::Value;

/// Which workload's values a key holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An integer (the register workload).
    Register,
    /// A list of integers (the append workload).
    List,
}

/// A register value as stored.
pub fn encode_int(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// A list as stored.
pub fn encode_list(list: &[i64]) -> Vec<u8> {
    serde_json::to_vec(list).expect("a list of integers serialises")
}

/// A stored register value, or why it is not one.
pub fn decode_int(bytes: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("register value {} is not an integer", shown(bytes)))
}

/// A stored list, or why it is not one.
pub fn decode_list(bytes: &[u8]) -> Result<Vec<i64>, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "list value {} is not a JSON array of integers: {e}",
            shown(bytes)
        )
    })
}

/// A stored value (`None`: the key is absent) as the history shows it.
pub fn decode(kind: Kind, bytes: Option<&[u8]>) -> Result<Value, String> {
    match (kind, bytes) {
        (_, None) => Ok(Value::Nil),
        (Kind::Register, Some(b)) => decode_int(b).map(Value::Int),
        (Kind::List, Some(b)) => decode_list(b).map(Value::List),
    }
}

/// Bytes for a message: the text if it is UTF-8, else the bytes.
fn shown(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    match std::str::from_utf8(bytes) {
        Ok(s) if s.len() <= MAX => format!("`{s}`"),
        Ok(s) => {
            let cut = (0..=MAX)
                .rev()
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(0);
            format!("`{}...` ({} bytes)", &s[..cut], s.len())
        }
        Err(_) => format!("{:?}", &bytes[..bytes.len().min(MAX)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for v in [0, 4, -3, i64::MAX, i64::MIN] {
            assert_eq!(decode_int(&encode_int(v)), Ok(v));
        }
        assert_eq!(encode_int(42), b"42");
        for l in [vec![], vec![1], vec![3, 1, 2, i64::MAX]] {
            assert_eq!(decode_list(&encode_list(&l)), Ok(l));
        }
        assert_eq!(encode_list(&[1, 7, 12]), b"[1,7,12]");
        assert_eq!(decode(Kind::List, None), Ok(Value::Nil));
        assert_eq!(decode(Kind::Register, Some(b"3")), Ok(Value::Int(3)));
        assert_eq!(
            decode(Kind::List, Some(b"[2, 5]")),
            Ok(Value::List(vec![2, 5]))
        );
    }

    #[test]
    fn garbage_is_named() {
        let e = decode_int(b"x1").unwrap_err();
        assert!(e.contains("`x1`"), "{e}");
        assert!(decode_int(b"").is_err());
        assert!(decode_int(b"1.5").is_err());
        let e = decode_list(b"1,2,").unwrap_err();
        assert!(e.contains("`1,2,`"), "{e}");
        assert!(decode_list(b"[1,\"a\"]").is_err());
        assert!(decode_list(b"[1.5]").is_err());
        assert!(decode_list(b"{}").is_err());
        let e = decode_int(&[0xff, 0x00]).unwrap_err();
        assert!(e.contains("[255, 0]"), "{e}");
        let long = "9".repeat(100);
        let e = decode_int(long.as_bytes()).unwrap_err();
        assert!(e.contains("(100 bytes)"), "{e}");
    }
}
