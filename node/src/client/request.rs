//! What a client asks of a node and what it gets back, in our own types:
//! the one place that knows how a [`Request`] travels as protobuf and how
//! an answer or a gRPC status comes back as a [`Reply`] or a [`CallError`].

use std::fmt;

use bytes::Bytes;
use proto::kv as pb;
use proto::kv::kv_call::Op;
use tonic::{Code, Status};

/// A client session: the node applies an update at most once per
/// `(client_id, seq)` and answers a retry with the first answer, so an
/// update whose outcome is in doubt can be sent again, to any node.
/// `client_id` 0 is refused; `seq` grows with each new update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Session {
    /// Who sends the update; unique per client process.
    pub client_id: u64,
    /// The update's number within the session.
    pub seq: u64,
}

impl Session {
    /// Update `seq` of client `client_id`.
    pub fn new(client_id: u64, seq: u64) -> Session {
        Session { client_id, seq }
    }

    /// A write of `value` to `key`, as this update.
    pub fn put(self, key: impl Into<String>, value: impl Into<Bytes>) -> Request {
        Request::Put {
            key: key.into(),
            value: value.into(),
            session: self,
        }
    }

    /// A compare-and-set of `key` from `expected` (`None`: absent) to
    /// `new`, as this update.
    pub fn cas(
        self,
        key: impl Into<String>,
        expected: Option<Bytes>,
        new: impl Into<Bytes>,
    ) -> Request {
        Request::Cas {
            key: key.into(),
            expected,
            new: new.into(),
            session: self,
        }
    }

    /// An append of `suffix` to `key`, as this update.
    pub fn append(self, key: impl Into<String>, suffix: impl Into<Bytes>) -> Request {
        Request::Append {
            key: key.into(),
            suffix: suffix.into(),
            session: self,
        }
    }
}

/// One key-value request, the same whichever API carries it. A read is
/// made with [`Request::get`], an update within its session
/// ([`Session::put`], [`Session::cas`], [`Session::append`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A linearizable read of `key`.
    Get {
        /// The key read.
        key: String,
    },
    /// Sets `key` to `value`.
    Put {
        /// The key written.
        key: String,
        /// Its new value.
        value: Bytes,
        /// Makes a retry harmless.
        session: Session,
    },
    /// Sets `key` to `new` if it holds `expected` (`None`: if it has no value).
    Cas {
        /// The key compared and written.
        key: String,
        /// The value the key must hold; `None`: the key must not exist.
        expected: Option<Bytes>,
        /// Its new value.
        new: Bytes,
        /// Makes a retry harmless.
        session: Session,
    },
    /// Appends `suffix` to `key`'s value (a missing key counts as empty).
    Append {
        /// The key written.
        key: String,
        /// What is added at the end of its value.
        suffix: Bytes,
        /// Makes a retry harmless.
        session: Session,
    },
}

impl Request {
    /// A read of `key`.
    pub fn get(key: impl Into<String>) -> Request {
        Request::Get { key: key.into() }
    }

    /// Whether the request only reads: it has no effect, so a read that
    /// did not succeed certainly changed nothing.
    pub fn is_read(&self) -> bool {
        matches!(self, Request::Get { .. })
    }

    /// The protobuf message for the cluster `cluster_id`, as both APIs send it.
    pub(super) fn into_op(self, cluster_id: &str) -> Op {
        let cluster_id = cluster_id.to_string();
        match self {
            Request::Get { key } => Op::Get(pb::GetRequest { cluster_id, key }),
            Request::Put {
                key,
                value,
                session,
            } => Op::Put(pb::PutRequest {
                cluster_id,
                key,
                value,
                client_id: session.client_id,
                seq: session.seq,
            }),
            Request::Cas {
                key,
                expected,
                new,
                session,
            } => Op::Cas(pb::CasRequest {
                cluster_id,
                key,
                expected,
                new,
                client_id: session.client_id,
                seq: session.seq,
            }),
            Request::Append {
                key,
                suffix,
                session,
            } => Op::Append(pb::AppendRequest {
                cluster_id,
                key,
                suffix,
                client_id: session.client_id,
                seq: session.seq,
            }),
        }
    }
}

/// The node's answer to a request. Each kind is definite: the request
/// took effect, or certainly did not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The update took effect, or the read saw the current value.
    Done {
        /// What a get read (`None`: no such key).
        value: Option<Bytes>,
        /// The log index the update was applied at, or the read index the
        /// get was served at.
        index: u64,
    },
    /// A cas found another value than it expected, and changed nothing.
    Mismatch {
        /// The value found (`None`: no such key).
        current: Option<Bytes>,
        /// The log index the cas was decided at.
        index: u64,
    },
    /// This node does not lead, and changed nothing.
    NotLeader {
        /// The leader's id, when the node knows it.
        leader_id: Option<String>,
        /// The leader's client address, when the node knows it.
        leader_addr: Option<String>,
    },
}

impl Reply {
    /// The value a get read or a cas found, if any.
    pub fn value(&self) -> Option<&Bytes> {
        match self {
            Reply::Done { value, .. } => value.as_ref(),
            Reply::Mismatch { current, .. } => current.as_ref(),
            Reply::NotLeader { .. } => None,
        }
    }

    /// Whether the node refused because it does not lead.
    pub fn is_not_leader(&self) -> bool {
        matches!(self, Reply::NotLeader { .. })
    }
}

/// A call that ended without a [`Reply`]: the gRPC status the node (or
/// the connection) ended it with, or the client's own deadline.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct CallError {
    /// What the error means for the request.
    pub kind: ErrorKind,
    /// Why, in the node's or the transport's words.
    pub message: String,
}

impl From<Status> for CallError {
    fn from(s: Status) -> CallError {
        CallError {
            kind: ErrorKind::from(s.code()),
            message: s.message().to_string(),
        }
    }
}

/// The kinds of [`CallError`], by what they say about the request. The
/// node's own refusals come first; a transport may end a call with any
/// other gRPC code ([`ErrorKind::Other`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No answer in time (DEADLINE_EXCEEDED, or the client's deadline):
    /// the request may or may not take effect.
    Timeout,
    /// No connection, or it broke, or the node is stopping (UNAVAILABLE):
    /// the request may or may not take effect.
    Unavailable,
    /// The call was cancelled on the way (CANCELLED).
    Cancelled,
    /// The transport failed in a way it could not name (UNKNOWN).
    Unknown,
    /// The node refused a malformed request (INVALID_ARGUMENT): an empty
    /// or oversized key, `client_id` 0. Nothing happened.
    InvalidArgument,
    /// The request was for another cluster (FAILED_PRECONDITION). Nothing
    /// happened.
    FailedPrecondition,
    /// The update is older than its session's latest, so the node no
    /// longer knows its outcome (ABORTED).
    Aborted,
    /// A message over the node's limits (RESOURCE_EXHAUSTED).
    ResourceExhausted,
    /// The node or the transport broke a rule of its own (INTERNAL).
    Internal,
    /// Any other gRPC code.
    Other(Code),
}

impl ErrorKind {
    /// The name the harness's history gives the error: `timeout`,
    /// `unavailable`, else the gRPC code's name in lower case without
    /// separators (`invalidargument`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Unknown => "unknown",
            ErrorKind::InvalidArgument => "invalidargument",
            ErrorKind::FailedPrecondition => "failedprecondition",
            ErrorKind::Aborted => "aborted",
            ErrorKind::ResourceExhausted => "resourceexhausted",
            ErrorKind::Internal => "internal",
            ErrorKind::Other(code) => match code {
                Code::Ok => "ok",
                Code::NotFound => "notfound",
                Code::AlreadyExists => "alreadyexists",
                Code::PermissionDenied => "permissiondenied",
                Code::OutOfRange => "outofrange",
                Code::Unimplemented => "unimplemented",
                Code::DataLoss => "dataloss",
                Code::Unauthenticated => "unauthenticated",
                // The codes with a kind of their own are never `Other`.
                _ => "other",
            },
        }
    }

    /// Whether the request was refused before anything could happen: it
    /// did not and will not take effect.
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            ErrorKind::InvalidArgument
                | ErrorKind::FailedPrecondition
                | ErrorKind::Other(Code::Unimplemented | Code::Unauthenticated)
        )
    }

    /// Whether the same request may succeed if sent again (to this node or
    /// another): the call was lost on the way or ran out of time.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout | ErrorKind::Unavailable | ErrorKind::Cancelled | ErrorKind::Unknown
        )
    }
}

impl From<Code> for ErrorKind {
    fn from(code: Code) -> ErrorKind {
        match code {
            Code::DeadlineExceeded => ErrorKind::Timeout,
            Code::Unavailable => ErrorKind::Unavailable,
            Code::Cancelled => ErrorKind::Cancelled,
            Code::Unknown => ErrorKind::Unknown,
            Code::InvalidArgument => ErrorKind::InvalidArgument,
            Code::FailedPrecondition => ErrorKind::FailedPrecondition,
            Code::Aborted => ErrorKind::Aborted,
            Code::ResourceExhausted => ErrorKind::ResourceExhausted,
            Code::Internal => ErrorKind::Internal,
            other => ErrorKind::Other(other),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node's answer, or the status its call ended with, in our types.
pub(super) fn reply(answer: Result<pb::KvResponse, Status>) -> Result<Reply, CallError> {
    let r = answer?;
    let known = |s: String| (!s.is_empty()).then_some(s);
    match pb::Status::try_from(r.status) {
        Ok(pb::Status::Ok) => Ok(Reply::Done {
            value: r.value,
            index: r.index,
        }),
        Ok(pb::Status::Mismatch) => Ok(Reply::Mismatch {
            current: r.value,
            index: r.index,
        }),
        Ok(pb::Status::NotLeader) => Ok(Reply::NotLeader {
            leader_id: known(r.leader_id),
            leader_addr: known(r.leader_addr),
        }),
        Err(_) => Err(CallError {
            kind: ErrorKind::Internal,
            message: format!("the node answered with an unknown status {}", r.status),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grpc_code_keeps_the_name_the_history_has_always_used() {
        for code in [
            Code::Ok,
            Code::Cancelled,
            Code::Unknown,
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::ResourceExhausted,
            Code::FailedPrecondition,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unimplemented,
            Code::Internal,
            Code::DataLoss,
            Code::Unauthenticated,
        ] {
            assert_eq!(
                ErrorKind::from(code).as_str(),
                format!("{code:?}").to_lowercase()
            );
        }
        assert_eq!(ErrorKind::from(Code::DeadlineExceeded).as_str(), "timeout");
        assert_eq!(ErrorKind::from(Code::Unavailable).as_str(), "unavailable");
    }

    #[test]
    fn refusals_are_definite_and_lost_calls_are_worth_another_try() {
        let kind = |c| ErrorKind::from(c);
        assert!(kind(Code::FailedPrecondition).is_refusal());
        assert!(kind(Code::Unauthenticated).is_refusal());
        assert!(!kind(Code::Aborted).is_refusal());
        assert!(!kind(Code::DeadlineExceeded).is_refusal());
        assert!(kind(Code::DeadlineExceeded).is_transient());
        assert!(kind(Code::Unknown).is_transient());
        assert!(!kind(Code::Aborted).is_transient());
        assert!(!kind(Code::InvalidArgument).is_transient());
    }

    #[test]
    fn answers_become_replies_and_statuses_errors() {
        let response = |status: pb::Status| pb::KvResponse {
            status: status as i32,
            value: Some(Bytes::from_static(b"1")),
            index: 7,
            ..Default::default()
        };
        assert_eq!(
            reply(Ok(response(pb::Status::Ok))),
            Ok(Reply::Done {
                value: Some(Bytes::from_static(b"1")),
                index: 7
            })
        );
        assert_eq!(
            reply(Ok(response(pb::Status::Mismatch)))
                .unwrap()
                .value()
                .cloned(),
            Some(Bytes::from_static(b"1"))
        );
        let mut not_leader = response(pb::Status::NotLeader);
        not_leader.leader_id = "n2".into();
        assert_eq!(
            reply(Ok(not_leader)),
            Ok(Reply::NotLeader {
                leader_id: Some("n2".into()),
                leader_addr: None
            })
        );
        let e = reply(Err(Status::failed_precondition("cluster id"))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::FailedPrecondition);
        assert_eq!(e.to_string(), "failedprecondition: cluster id");
        let mut odd = response(pb::Status::Ok);
        odd.status = 99;
        assert_eq!(reply(Ok(odd)).unwrap_err().kind, ErrorKind::Internal);
    }

    #[test]
    fn requests_travel_with_their_cluster_and_session() {
        let op = Session::new(3, 4).cas("k", None, "v").into_op("c");
        assert_eq!(
            op,
            Op::Cas(pb::CasRequest {
                cluster_id: "c".into(),
                key: "k".into(),
                expected: None,
                new: Bytes::from_static(b"v"),
                client_id: 3,
                seq: 4,
            })
        );
        assert!(Request::get("k").is_read());
        assert!(!Session::new(1, 1).append("k", "x").is_read());
    }
}
