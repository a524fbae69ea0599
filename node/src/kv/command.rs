//! Commands as stored in log entries: the protobuf `kv.Command`, validated on
//! the way in so the state machine never sees a malformed one.

use bytes::Bytes;
use prost::Message as _;
use proto::kv;

/// Largest key accepted, in bytes.
pub const MAX_KEY: usize = 1024;
/// Largest value (or appended suffix) accepted, in bytes.
pub const MAX_VALUE: usize = 1 << 20;

/// What a command does to its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Set the value.
    Put {
        /// The new value.
        value: Bytes,
    },
    /// Set the value if it is `expected` (`None`: if the key is absent).
    Cas {
        /// The value the key must hold.
        expected: Option<Bytes>,
        /// The value it gets.
        new: Bytes,
    },
    /// Add to the end of the value (an absent key is empty).
    Append {
        /// What to add.
        suffix: Bytes,
    },
}

/// A client's write, as the state machine applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The client's session.
    pub client_id: u64,
    /// Its number in the session: a retried (client_id, seq) is applied once.
    pub seq: u64,
    /// The key written.
    pub key: String,
    /// What is done to it.
    pub op: Op,
}

/// A command that must not reach the log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    /// The key is empty.
    #[error("key is empty")]
    EmptyKey,
    /// The key is longer than [`MAX_KEY`].
    #[error("key is {0} bytes, the limit is {MAX_KEY}")]
    KeyTooLong(usize),
    /// A value is longer than [`MAX_VALUE`].
    #[error("value is {0} bytes, the limit is {MAX_VALUE}")]
    ValueTooLong(usize),
    /// No client session.
    #[error("client_id must be non-zero")]
    NoClient,
    /// Log entry data that is not a command.
    #[error("undecodable command: {0}")]
    Decode(String),
}

impl Command {
    /// Checks the limits before the command is proposed.
    pub fn validate(&self) -> Result<(), CommandError> {
        if self.key.is_empty() {
            return Err(CommandError::EmptyKey);
        }
        if self.key.len() > MAX_KEY {
            return Err(CommandError::KeyTooLong(self.key.len()));
        }
        if self.client_id == 0 {
            return Err(CommandError::NoClient);
        }
        let len = match &self.op {
            Op::Put { value } => value.len(),
            Op::Cas { expected, new } => new.len().max(expected.as_ref().map_or(0, |e| e.len())),
            Op::Append { suffix } => suffix.len(),
        };
        if len > MAX_VALUE {
            return Err(CommandError::ValueTooLong(len));
        }
        Ok(())
    }

    /// A hash of what the command does (key, kind, values; not its
    /// session), which a session keeps so that a retry of its `(client_id,
    /// seq)` carrying another command is told apart from a true retry.
    /// Never 0, which stands for "not remembered" (images of version 1).
    pub fn fingerprint(&self) -> u64 {
        let mut bytes = Vec::with_capacity(16 + self.key.len());
        let mut field = |tag: u8, b: &[u8]| {
            bytes.push(tag);
            bytes.extend_from_slice(&(b.len() as u64).to_le_bytes());
            bytes.extend_from_slice(b);
        };
        field(b'k', self.key.as_bytes());
        match &self.op {
            Op::Put { value } => field(b'p', value),
            Op::Cas { expected, new } => {
                match expected {
                    Some(e) => field(b'e', e),
                    None => field(b'a', b""),
                }
                field(b'n', new);
            }
            Op::Append { suffix } => field(b's', suffix),
        }
        crate::fnv::fnv1a(bytes).max(1)
    }

    /// The command as a log entry's data (a protobuf `kv.Command`).
    pub fn encode(&self) -> Bytes {
        let key = self.key.clone();
        let op = match &self.op {
            Op::Put { value } => kv::command::Op::Put(kv::PutRequest {
                key,
                value: value.clone(),
                ..Default::default()
            }),
            Op::Cas { expected, new } => kv::command::Op::Cas(kv::CasRequest {
                key,
                expected: expected.clone(),
                new: new.clone(),
                ..Default::default()
            }),
            Op::Append { suffix } => kv::command::Op::Append(kv::AppendRequest {
                key,
                suffix: suffix.clone(),
                ..Default::default()
            }),
        };
        let msg = kv::Command {
            client_id: self.client_id,
            seq: self.seq,
            op: Some(op),
        };
        Bytes::from(msg.encode_to_vec())
    }

    /// The command in a log entry's data.
    pub fn decode(data: &[u8]) -> Result<Command, CommandError> {
        let msg = kv::Command::decode(data).map_err(|e| CommandError::Decode(e.to_string()))?;
        let (key, op) = match msg.op {
            Some(kv::command::Op::Put(p)) => (p.key, Op::Put { value: p.value }),
            Some(kv::command::Op::Cas(c)) => (
                c.key,
                Op::Cas {
                    expected: c.expected,
                    new: c.new,
                },
            ),
            Some(kv::command::Op::Append(a)) => (a.key, Op::Append { suffix: a.suffix }),
            None => return Err(CommandError::Decode("no operation".into())),
        };
        Ok(Command {
            client_id: msg.client_id,
            seq: msg.seq,
            key,
            op,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for op in [
            Op::Put {
                value: Bytes::from("v"),
            },
            Op::Cas {
                expected: None,
                new: Bytes::from("1"),
            },
            Op::Cas {
                expected: Some(Bytes::from("")),
                new: Bytes::from("1"),
            },
            Op::Append {
                suffix: Bytes::from("x,"),
            },
        ] {
            let c = Command {
                client_id: 9,
                seq: 3,
                key: "k".into(),
                op,
            };
            assert_eq!(Command::decode(&c.encode()).unwrap(), c);
        }
    }

    #[test]
    fn rejects_bad_commands() {
        let mut c = Command {
            client_id: 1,
            seq: 1,
            key: String::new(),
            op: Op::Put {
                value: Bytes::new(),
            },
        };
        assert_eq!(c.validate(), Err(CommandError::EmptyKey));
        c.key = "k".repeat(MAX_KEY + 1);
        assert!(matches!(c.validate(), Err(CommandError::KeyTooLong(_))));
        c.key = "k".into();
        c.client_id = 0;
        assert_eq!(c.validate(), Err(CommandError::NoClient));
        assert!(Command::decode(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn fingerprints_tell_commands_apart_but_not_sessions() {
        let c = |client_id, key: &str, op| Command {
            client_id,
            seq: 1,
            key: key.into(),
            op,
        };
        let put = |v: &'static str| Op::Put {
            value: Bytes::from(v),
        };
        let cas = |e: Option<&'static str>, n: &'static str| Op::Cas {
            expected: e.map(Bytes::from),
            new: Bytes::from(n),
        };
        let f = |cmd: Command| cmd.fingerprint();
        assert_eq!(f(c(1, "k", put("1"))), f(c(2, "k", put("1"))));
        let distinct = [
            f(c(1, "k", put("1"))),
            f(c(1, "k", put("2"))),
            f(c(1, "j", put("1"))),
            f(c(
                1,
                "k",
                Op::Append {
                    suffix: Bytes::from("1"),
                },
            )),
            f(c(1, "k", cas(None, "1"))),
            f(c(1, "k", cas(Some(""), "1"))),
            f(c(1, "k", cas(Some("1"), ""))),
            // Where one field ends and the next begins is part of the hash.
            f(c(1, "k1", put(""))),
        ];
        for (i, a) in distinct.iter().enumerate() {
            assert_ne!(*a, 0);
            for b in &distinct[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
