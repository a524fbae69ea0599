//! A workload client: performs one history action against the cluster and
//! says what happened, as Jepsen would record it.
//!
//! - ok: the operation took effect (or the read saw this value);
//! - fail: it certainly did not and will not take effect (a refusal before
//!   anything happened, a cas mismatch, any unsuccessful read);
//! - info: unknown (timeout, connection lost, node stopped mid-request).
//!
//! A "not leader" answer is definite, so the client follows it to the named
//! leader within the same operation, as long as its deadline allows. An
//! update whose attempt ended in doubt (connection lost) is retried at
//! another node under the same (client, seq), as a production client
//! would: the node's sessions must apply it at most once. Once in doubt, the
//! operation can only end ok or info, never fail.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use node::client::{Conn, KvResponse, NodeClient};
use tonic::Code;

use crate::history::{Action, Cas, Value};
use crate::sim::Workload;

/// Attempts of one operation, redirects and retries together.
const MAX_HOPS: u32 = 10;
/// Between retries of an update in doubt: long enough for an election to
/// make progress, short next to the operation's deadline.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// What happened to one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Took effect; for reads, the action now carries the value read.
    Ok(Action),
    /// Did not and will not take effect. A cas mismatch carries what the node saw.
    Fail { error: String, action: Action },
    /// Unknown.
    Info(String),
}

/// How one response or error is classified, before redirects are followed.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Done(KvResponse),
    NotLeader(Option<String>),
    Fail(String),
    Info(String),
}

/// Sorts a node's answer into definite and unknown outcomes. A read has no
/// effect, so any read that did not succeed is a definite failure.
pub fn classify(is_read: bool, result: Result<KvResponse, tonic::Status>) -> Verdict {
    match result {
        Ok(r) if r.status == proto::kv::Status::NotLeader as i32 => {
            Verdict::NotLeader((!r.leader_id.is_empty()).then_some(r.leader_id))
        }
        Ok(r) => Verdict::Done(r),
        Err(s) => {
            let error = match s.code() {
                Code::DeadlineExceeded => "timeout".to_string(),
                Code::Unavailable => "unavailable".to_string(),
                code => format!("{code:?}").to_lowercase(),
            };
            // Refused before anything could happen: the request was malformed
            // or not for this cluster.
            let definite = matches!(
                s.code(),
                Code::InvalidArgument
                    | Code::FailedPrecondition
                    | Code::Unimplemented
                    | Code::Unauthenticated
            );
            if is_read || definite {
                Verdict::Fail(error)
            } else {
                Verdict::Info(error)
            }
        }
    }
}

/// Register values and appended tokens as the node stores them.
pub fn encode(workload: Workload, v: i64) -> Bytes {
    match workload {
        Workload::Register => Bytes::from(v.to_string()),
        Workload::Append => Bytes::from(format!("{v},")),
    }
}

/// What a stored value means to the workload, or why it makes no sense.
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

/// One worker's connection to the cluster: a session (client id, sequence)
/// and its home node. As in Jepsen, a worker is bound to its node: every
/// operation starts there (redirects are followed within the operation), so
/// a node cut off from the others keeps being asked and shows what it
/// answers.
pub struct Client {
    workload: Workload,
    cluster_id: String,
    addrs: Vec<(String, SocketAddr)>,
    conns: HashMap<String, Conn>,
    home: usize,
    /// The node the current attempt goes to.
    target: usize,
    client_id: u64,
    seq: u64,
    timeout: Duration,
}

impl Client {
    pub fn new(
        workload: Workload,
        cluster_id: &str,
        addrs: Vec<(String, SocketAddr)>,
        first_target: usize,
        timeout: Duration,
    ) -> Client {
        let target = first_target % addrs.len().max(1);
        Client {
            workload,
            cluster_id: cluster_id.to_string(),
            addrs,
            conns: HashMap::new(),
            home: target,
            target,
            client_id: 0,
            seq: 0,
            timeout,
        }
    }

    /// Uses these connections (one per node, as `addrs`) instead of its
    /// own: the workers' shared streams.
    pub fn sharing(mut self, shared: &[Conn]) -> Client {
        for ((id, _), conn) in self.addrs.iter().zip(shared) {
            self.conns.insert(id.clone(), conn.clone());
        }
        self
    }

    /// Starts a new session: a new process must not share the old one's
    /// (client, seq) space, or a late duplicate could be answered from it.
    pub fn new_session(&mut self, client_id: u64) {
        self.client_id = client_id;
        self.seq = 0;
    }

    /// The node the next operation goes to first.
    pub fn target(&self) -> &str {
        &self.addrs[self.home].0
    }

    fn conn(&mut self, i: usize) -> Conn {
        let (id, addr) = &self.addrs[i];
        self.conns
            .entry(id.clone())
            .or_insert_with(|| {
                Conn::Unary(Box::new(
                    NodeClient::new(
                        &addr.to_string(),
                        &self.cluster_id,
                        Duration::from_millis(500),
                    )
                    .expect("node addresses are socket addresses"),
                ))
            })
            .clone()
    }

    /// Performs `action` on `key`, following not-leader redirects until the
    /// operation's deadline.
    pub async fn perform(&mut self, key: &str, action: &Action) -> Outcome {
        self.seq += 1;
        let session = (self.client_id, self.seq);
        let deadline = Instant::now() + self.timeout;
        let is_read = matches!(action, Action::Read(_));
        self.target = self.home;
        let mut hops = 0;
        // Set once an attempt may have reached the log.
        let mut in_doubt: Option<String> = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining < Duration::from_millis(5) {
                return if is_read {
                    fail("timeout", action)
                } else {
                    Outcome::Info(in_doubt.unwrap_or_else(|| "timeout".into()))
                };
            }
            // One attempt may not use the whole deadline: a node that has
            // silently lost its leadership must not hold the operation.
            let left = remaining.min(self.attempt_timeout());
            let mut c = self.conn(self.target);
            let w = self.workload;
            let result = match action {
                Action::Read(_) => c.get(key, left).await,
                Action::Write(v) => c.put(key, encode(w, *v), session, left).await,
                Action::Cas(cas) => {
                    c.cas(
                        key,
                        cas.expected.map(|e| encode(w, e)),
                        encode(w, cas.new),
                        session,
                        left,
                    )
                    .await
                }
                Action::Append(v) => c.append(key, encode(w, *v), session, left).await,
                // The workloads generate integers only; string operations
                // come from other tools' histories, which are only checked.
                Action::Str(_) => return fail("string operations are not generated", action),
            };
            match classify(is_read, result) {
                Verdict::Done(r) => return self.completed(action, r),
                Verdict::NotLeader(leader) => {
                    hops += 1;
                    match leader.and_then(|l| self.addrs.iter().position(|(id, _)| *id == l)) {
                        Some(i) if i != self.target && hops <= MAX_HOPS => self.target = i,
                        // An earlier attempt may be in the log: wait for a
                        // leader and ask again under the same session.
                        _ if in_doubt.is_some() && hops <= MAX_HOPS => {
                            self.target = (self.target + 1) % self.addrs.len();
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                        _ => {
                            return match in_doubt {
                                Some(e) => Outcome::Info(e),
                                None => fail("not-leader", action),
                            };
                        }
                    }
                }
                Verdict::Fail(e) if is_read && is_transient(&e) && hops < MAX_HOPS => {
                    // A read has no effect: simply ask another node.
                    hops += 1;
                    self.target = (self.target + 1) % self.addrs.len();
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Verdict::Fail(e) => {
                    return match in_doubt {
                        Some(first) => Outcome::Info(first),
                        None => fail(&e, action),
                    };
                }
                Verdict::Info(e) => {
                    self.target = (self.target + 1) % self.addrs.len();
                    hops += 1;
                    // The connection broke or the attempt timed out: the
                    // request may be in a log, or may never have arrived.
                    let retry = is_transient(&e) && hops <= MAX_HOPS;
                    let e = in_doubt.take().unwrap_or(e);
                    if !retry {
                        return Outcome::Info(e);
                    }
                    in_doubt = Some(e);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    /// A quarter of the operation's deadline, at least 100 ms.
    fn attempt_timeout(&self) -> Duration {
        (self.timeout / 4).max(Duration::from_millis(100))
    }

    fn completed(&self, action: &Action, r: KvResponse) -> Outcome {
        let mismatch = r.status == proto::kv::Status::Mismatch as i32;
        match action {
            Action::Read(_) => match decode(self.workload, r.value.as_deref()) {
                Ok(v) => Outcome::Ok(Action::Read(Some(v))),
                // A value the workload never writes is a bug worth seeing;
                // as a read it changes nothing, so it is recorded as failed.
                Err(e) => fail(&format!("unreadable value: {e}"), action),
            },
            Action::Cas(cas) if mismatch => {
                let actual = match decode(self.workload, r.value.as_deref()) {
                    Ok(Value::Nil) => Some(None),
                    Ok(Value::Int(v)) => Some(Some(v)),
                    _ => None,
                };
                Outcome::Fail {
                    error: crate::history::MISMATCH.to_string(),
                    action: Action::Cas(Cas { actual, ..*cas }),
                }
            }
            _ if mismatch => Outcome::Info("unexpected mismatch".into()),
            _ => Outcome::Ok(action.clone()),
        }
    }
}

/// Errors after which another attempt may succeed.
fn is_transient(error: &str) -> bool {
    matches!(error, "unavailable" | "cancelled" | "unknown" | "timeout")
}

fn fail(error: &str, action: &Action) -> Outcome {
    Outcome::Fail {
        error: error.to_string(),
        action: action.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Status;

    fn resp(status: proto::kv::Status) -> KvResponse {
        KvResponse {
            status: status as i32,
            ..Default::default()
        }
    }

    #[test]
    fn outcomes_are_classified_as_jepsen_would() {
        // Success and the definite refusals.
        assert!(matches!(
            classify(false, Ok(resp(proto::kv::Status::Ok))),
            Verdict::Done(_)
        ));
        let mut nl = resp(proto::kv::Status::NotLeader);
        nl.leader_id = "n2".into();
        assert_eq!(
            classify(false, Ok(nl)),
            Verdict::NotLeader(Some("n2".into()))
        );
        assert_eq!(
            classify(false, Ok(resp(proto::kv::Status::NotLeader))),
            Verdict::NotLeader(None)
        );
        assert_eq!(
            classify(false, Err(Status::failed_precondition("cluster"))),
            Verdict::Fail("failedprecondition".into())
        );
        // A write whose answer was lost may still happen: unknown.
        assert_eq!(
            classify(false, Err(Status::deadline_exceeded("x"))),
            Verdict::Info("timeout".into())
        );
        assert_eq!(
            classify(false, Err(Status::unavailable("x"))),
            Verdict::Info("unavailable".into())
        );
        assert_eq!(
            classify(false, Err(Status::aborted("x"))),
            Verdict::Info("aborted".into())
        );
        // A read that did not succeed changed nothing: definite.
        assert_eq!(
            classify(true, Err(Status::deadline_exceeded("x"))),
            Verdict::Fail("timeout".into())
        );
    }

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
