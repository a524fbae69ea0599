//! How the workloads' values are stored as bytes: a register holds its
//! integer in decimal; an append list holds its tokens, each followed by a
//! comma (`1,7,`), so an append is one string concatenation.

use bytes::Bytes;

use crate::history::Value;
use crate::workload::Workload;

/// Register values and appended tokens as the node stores them.
pub fn encode(workload: Workload, v: i64) -> Bytes {
    match workload {
        Workload::Register => Bytes::from(v.to_string()),
        Workload::Append => Bytes::from(format!("{v},")),
    }
}

/// What a stored value means to the workload (`None`: no value), or why it
/// makes no sense.
pub fn decode(workload: Workload, v: Option<&[u8]>) -> Result<Value, String> {
    let Some(v) = v else { return Ok(Value::Nil) };
    let text = std::str::from_utf8(v).map_err(|_| format!("value is not UTF-8: {v:?}"))?;
    match workload {
        Workload::Register => text
            .parse()
            .map(Value::Int)
            .map_err(|_| format!("register value `{text}` is not an integer")),
        Workload::Append => text
            .split(',')
            .filter(|t| !t.is_empty())
            .map(|t| {
                t.parse()
                    .map_err(|_| format!("list value `{text}` has a non-integer token `{t}`"))
            })
            .collect::<Result<Vec<i64>, String>>()
            .map(Value::List),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_garbage_is_named() {
        assert_eq!(
            decode(Workload::Register, Some(&encode(Workload::Register, 42))),
            Ok(Value::Int(42))
        );
        assert_eq!(decode(Workload::Register, None), Ok(Value::Nil));
        let mut list = encode(Workload::Append, 1).to_vec();
        list.extend_from_slice(&encode(Workload::Append, 7));
        assert_eq!(
            decode(Workload::Append, Some(&list)),
            Ok(Value::List(vec![1, 7]))
        );
        assert_eq!(decode(Workload::Append, Some(b"")), Ok(Value::List(vec![])));
        assert!(
            decode(Workload::Register, Some(b"x1"))
                .unwrap_err()
                .contains("x1")
        );
        assert!(
            decode(Workload::Append, Some(b"1,z,"))
                .unwrap_err()
                .contains("`z`")
        );
    }
}
