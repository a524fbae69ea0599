//! One history action performed against etcd, recorded as Jepsen would:
//! the same [`Outcome`] our node's client gives, so a run loop can drive
//! either database.
//!
//! - read: Range (linearizable unless the options say serializable);
//! - write: Put;
//! - cas: a Txn comparing the value (`expected` absent: `create_revision
//!   == 0`); a failed compare is `fail` with error `mismatch` and the value
//!   the Txn read instead;
//! - append: read the list (linearizable), then a Txn comparing `mod_revision` that puts
//!   the extended list (see [`EtcdClient::append`]); a failed compare is a
//!   definite `fail` with error `mismatch`.
//!
//! The operation goes to one member and follows nobody: etcd forwards
//! proposals to its leader itself. Errors are classified by
//! [`super::error::classify`]; the history's `error` is the short label.

use std::time::Duration;

use crate::client::Outcome;
use crate::history::{Action, Cas, MISMATCH, Value};

use super::client::{AppendResult, CasResult, Consistency, EtcdClient};
use super::error::EtcdError;
use super::value::{self, Kind};

/// How operations are performed.
#[derive(Clone, Debug)]
pub struct OpOptions {
    /// What the keys hold, for decoding reads.
    pub kind: Kind,
    /// How reads are served.
    pub reads: Consistency,
    /// Conditional writes per append before it fails with `mismatch`
    /// (each after a failed compare, from the state that Txn read). 1 is
    /// one attempt per history operation.
    pub append_attempts: u32,
    /// The whole operation's deadline.
    pub timeout: Duration,
}

/// Performs `action` on `key` through `member`.
pub async fn perform(
    client: &EtcdClient,
    member: usize,
    key: &str,
    action: &Action,
    o: &OpOptions,
) -> Outcome {
    let k = key.as_bytes();
    match action {
        Action::Read(_) => match client.get(member, k, o.reads, o.timeout).await {
            Ok(r) => match value::decode(o.kind, r.value.as_deref()) {
                Ok(v) => Outcome::Ok(Action::Read(Some(v))),
                // A value the workload never writes: worth seeing, and a
                // read changes nothing, so it is a failed read.
                Err(e) => fail(format!("unreadable value: {e}"), action),
            },
            Err(e) => failed(e, action),
        },
        Action::Write(v) => match client
            .put(member, k, value::encode_int(*v), o.timeout)
            .await
        {
            Ok(_) => Outcome::Ok(action.clone()),
            Err(e) => failed(e, action),
        },
        Action::Cas(cas) => {
            let expected = cas.expected.map(value::encode_int);
            let new = value::encode_int(cas.new);
            match client.cas(member, k, expected, new, o.timeout).await {
                Ok(CasResult::Swapped { .. }) => Outcome::Ok(action.clone()),
                Ok(CasResult::Mismatch { actual }) => Outcome::Fail {
                    error: MISMATCH.to_string(),
                    action: Action::Cas(Cas {
                        actual: match value::decode(Kind::Register, actual.as_deref()) {
                            Ok(Value::Nil) => Some(None),
                            Ok(Value::Int(v)) => Some(Some(v)),
                            _ => None,
                        },
                        ..*cas
                    }),
                },
                Err(e) => failed(e, action),
            }
        }
        Action::Append(token) => {
            match client
                .append(member, k, *token, o.append_attempts.max(1), o.timeout)
                .await
            {
                Ok(AppendResult::Appended { .. }) => Outcome::Ok(action.clone()),
                Ok(AppendResult::Mismatch { .. }) => fail(MISMATCH.to_string(), action),
                Err(e) => failed(e, action),
            }
        }
        // Only imported histories hold string operations; no workload
        // makes one, and nothing was sent.
        Action::Str(_) => fail("string operations are not an etcd workload".into(), action),
    }
}

fn failed(e: EtcdError, action: &Action) -> Outcome {
    if e.is_definite() {
        fail(e.label.to_string(), action)
    } else {
        Outcome::Info(e.label.to_string())
    }
}

fn fail(error: String, action: &Action) -> Outcome {
    Outcome::Fail {
        error,
        action: action.clone(),
    }
}
