//! The client of our Raft KV node. One per worker: a session (client id,
//! sequence) and a home node. As in Jepsen, a worker is bound to its node:
//! every operation starts there, so a node cut off from the others keeps
//! being asked and shows what it answers.
//!
//! A "not leader" answer is definite, so the client follows it to the named
//! leader within the same operation, as long as its deadline allows. An
//! update whose attempt ended in doubt (connection lost, attempt timed out)
//! is retried at another node under the same (client, seq), as a
//! production client would: the node's sessions must apply it at most
//! once. Once in doubt, the operation can only end ok or info, never fail.
//! A read has no effect, so a read that did not succeed is a failure, and
//! one whose attempt was lost is simply asked again elsewhere.
//!
//! The client needs one thing of a node: [`Endpoint::call`]. The real
//! endpoint is a [`Conn`] (unary or stream); the tests below use scripted
//! ones.

use std::future::Future;
use std::time::{Duration, Instant};

use node::client::{CallError, Conn, ErrorKind, Reply, Request, Session};

use super::Outcome;
use super::values::{decode, encode};
use crate::history::{Action, Cas, MISMATCH, Value};
use crate::workload::Workload;

/// Attempts of one operation, redirects and retries together.
const MAX_HOPS: u32 = 10;
/// Between retries of an update in doubt: long enough for an election to
/// make progress, short next to the operation's deadline.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Less time than this left: the operation is over.
const TOO_LATE: Duration = Duration::from_millis(5);

/// A connection to one node, as the client uses it.
pub trait Endpoint: Send + Sync {
    /// Sends `request` and waits for the answer at most `timeout`.
    fn call(
        &self,
        request: Request,
        timeout: Duration,
    ) -> impl Future<Output = Result<Reply, CallError>> + Send;
}

impl Endpoint for Conn {
    fn call(
        &self,
        request: Request,
        timeout: Duration,
    ) -> impl Future<Output = Result<Reply, CallError>> + Send {
        Conn::call(self, request, timeout)
    }
}

/// One worker's client: its nodes, its home among them, its session.
pub struct Client<E = Conn> {
    workload: Workload,
    /// Each node's id and connection.
    nodes: Vec<(String, E)>,
    home: usize,
    /// The node the current attempt goes to.
    target: usize,
    client_id: u64,
    seq: u64,
    /// How long one operation may take, redirects and retries included.
    timeout: Duration,
    /// Whether one attempt may take the whole deadline (see [`Client::patient`]).
    patient: bool,
}

impl<E: Endpoint> Client<E> {
    /// A client of `nodes` whose home is node `first_target` (modulo their
    /// number), giving each operation `timeout`.
    pub fn new(
        workload: Workload,
        nodes: Vec<(String, E)>,
        first_target: usize,
        timeout: Duration,
    ) -> Client<E> {
        let home = first_target % nodes.len().max(1);
        Client {
            workload,
            nodes,
            home,
            target: home,
            client_id: 0,
            seq: 0,
            timeout,
            patient: false,
        }
    }

    /// A client whose every attempt may wait the operation's whole
    /// deadline, as a production client with one long timeout does: it is
    /// still waiting when a deposed leader answers late, where the others
    /// have moved on to the next node.
    pub fn patient(mut self) -> Client<E> {
        self.patient = true;
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
        &self.nodes[self.home].0
    }

    /// Performs `action` on `key`, following not-leader redirects and
    /// retrying what is in doubt until the operation's deadline.
    pub async fn perform(&mut self, key: &str, action: &Action) -> Outcome {
        self.seq += 1;
        let session = Session {
            client_id: self.client_id,
            seq: self.seq,
        };
        let Some(request) = request(self.workload, key, action, session) else {
            // The workloads generate integers only; string operations come
            // from other tools' histories, which are only checked.
            return fail("string operations are not generated", action);
        };
        let is_read = request.is_read();
        let deadline = Instant::now() + self.timeout;
        self.target = self.home;
        let mut hops = 0;
        // Set once an attempt may have reached the log: the first error
        // that left the update in doubt.
        let mut in_doubt: Option<ErrorKind> = None;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining < TOO_LATE {
                return if is_read {
                    fail("timeout", action)
                } else {
                    info(in_doubt.unwrap_or(ErrorKind::Timeout))
                };
            }
            // One attempt may not use the whole deadline: a node that has
            // silently lost its leadership must not hold the operation.
            let left = remaining.min(self.attempt_timeout());
            let answer = self.nodes[self.target].1.call(request.clone(), left).await;
            let error = match answer {
                Ok(Reply::NotLeader { leader_id, .. }) => {
                    hops += 1;
                    let leader =
                        leader_id.and_then(|l| self.nodes.iter().position(|(id, _)| *id == l));
                    match leader {
                        Some(i) if i != self.target && hops <= MAX_HOPS => self.target = i,
                        // An earlier attempt may be in the log: wait for a
                        // leader and ask again under the same session.
                        _ if in_doubt.is_some() && hops <= MAX_HOPS => {
                            self.next_target();
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                        _ => {
                            return match in_doubt {
                                Some(first) => info(first),
                                None => fail("not-leader", action),
                            };
                        }
                    }
                    continue;
                }
                Ok(reply) => return self.completed(action, reply),
                Err(e) => e.kind,
            };
            if is_read || error.is_refusal() {
                // Nothing happened. A read has no effect: simply ask another node.
                if is_read && error.is_transient() && hops < MAX_HOPS {
                    hops += 1;
                    self.next_target();
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
                return match in_doubt {
                    Some(first) => info(first),
                    None => fail(error.as_str(), action),
                };
            }
            // The connection broke or the attempt timed out: the request may
            // be in a log, or may never have arrived.
            self.next_target();
            hops += 1;
            let first = *in_doubt.get_or_insert(error);
            if !(error.is_transient() && hops <= MAX_HOPS) {
                return info(first);
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    fn next_target(&mut self) {
        self.target = (self.target + 1) % self.nodes.len();
    }

    /// A quarter of the operation's deadline, at least 100 ms (all of it
    /// for a patient client).
    fn attempt_timeout(&self) -> Duration {
        if self.patient {
            return self.timeout;
        }
        (self.timeout / 4).max(Duration::from_millis(100))
    }

    /// What a definite reply means for `action`.
    fn completed(&self, action: &Action, reply: Reply) -> Outcome {
        let mismatch = matches!(reply, Reply::Mismatch { .. });
        let value = reply.value().map(|v| &v[..]);
        match action {
            Action::Read(_) => match decode(self.workload, value) {
                Ok(v) => Outcome::Ok(Action::Read(Some(v))),
                // A value the workload never writes is a bug worth seeing;
                // as a read it changes nothing, so it is recorded as failed.
                Err(e) => fail(&format!("unreadable value: {e}"), action),
            },
            Action::Cas(cas) if mismatch => {
                let actual = match decode(self.workload, value) {
                    Ok(Value::Nil) => Some(None),
                    Ok(Value::Int(v)) => Some(Some(v)),
                    _ => None,
                };
                Outcome::Fail {
                    error: MISMATCH.to_string(),
                    action: Action::Cas(Cas { actual, ..*cas }),
                }
            }
            _ if mismatch => Outcome::Info("unexpected mismatch".into()),
            _ => Outcome::Ok(action.clone()),
        }
    }
}

/// The request that performs `action` on `key` (none for string actions,
/// which no workload generates).
fn request(workload: Workload, key: &str, action: &Action, session: Session) -> Option<Request> {
    let value = |v: i64| encode(workload, v);
    Some(match action {
        Action::Read(_) => Request::get(key),
        Action::Write(v) => session.put(key, value(*v)),
        Action::Cas(cas) => session.cas(key, cas.expected.map(value), value(cas.new)),
        Action::Append(v) => session.append(key, value(*v)),
        Action::Str(_) => return None,
    })
}

fn fail(error: &str, action: &Action) -> Outcome {
    Outcome::Fail {
        error: error.to_string(),
        action: action.clone(),
    }
}

fn info(first: ErrorKind) -> Outcome {
    Outcome::Info(first.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;

    use super::*;

    type Answer = Result<Reply, CallError>;

    /// Nodes that answer from a script, and a log of what they were asked.
    #[derive(Clone, Default)]
    struct Script {
        answers: Arc<Mutex<HashMap<String, VecDeque<Answer>>>>,
        asked: Arc<Mutex<Vec<(String, Request)>>>,
    }

    struct Scripted {
        name: String,
        script: Script,
    }

    impl Endpoint for Scripted {
        fn call(&self, request: Request, _: Duration) -> impl Future<Output = Answer> + Send {
            let s = &self.script;
            s.asked.lock().unwrap().push((self.name.clone(), request));
            let answer = s
                .answers
                .lock()
                .unwrap()
                .get_mut(&self.name)
                .and_then(VecDeque::pop_front)
                .unwrap_or_else(|| Err(error(ErrorKind::Unavailable)));
            async move { answer }
        }
    }

    impl Script {
        /// A register client homed at n1 of n1, n2, n3, with one
        /// operation's answers for each node.
        fn client(answers: &[(&str, Vec<Answer>)]) -> (Client<Scripted>, Script) {
            let script = Script::default();
            for (node, a) in answers {
                script
                    .answers
                    .lock()
                    .unwrap()
                    .insert(node.to_string(), a.iter().cloned().collect());
            }
            let nodes = ["n1", "n2", "n3"]
                .map(|n| {
                    let name = n.to_string();
                    let endpoint = Scripted {
                        name: name.clone(),
                        script: script.clone(),
                    };
                    (name, endpoint)
                })
                .into_iter()
                .collect();
            let mut client = Client::new(Workload::Register, nodes, 0, Duration::from_secs(2));
            client.new_session(7);
            (client, script)
        }

        fn asked(&self) -> Vec<(String, Request)> {
            self.asked.lock().unwrap().clone()
        }
    }

    fn error(kind: ErrorKind) -> CallError {
        CallError {
            kind,
            message: "scripted".into(),
        }
    }

    fn done(value: Option<&'static str>) -> Answer {
        Ok(Reply::Done {
            value: value.map(Bytes::from),
            index: 1,
        })
    }

    fn not_leader(leader: Option<&str>) -> Answer {
        Ok(Reply::NotLeader {
            leader_id: leader.map(String::from),
            leader_addr: None,
        })
    }

    #[tokio::test]
    async fn a_not_leader_answer_is_followed_to_the_named_leader() {
        let (mut c, script) = Script::client(&[
            ("n1", vec![not_leader(Some("n3"))]),
            ("n3", vec![done(None)]),
        ]);
        let outcome = c.perform("k", &Action::Write(4)).await;
        assert_eq!(outcome, Outcome::Ok(Action::Write(4)));
        let put = Session::new(7, 1).put("k", "4");
        assert_eq!(
            script.asked(),
            [("n1".to_string(), put.clone()), ("n3".to_string(), put)]
        );
        assert_eq!(c.target(), "n1", "the home node stays");
    }

    #[tokio::test]
    async fn an_update_in_doubt_is_retried_under_the_same_session_and_never_fails() {
        let (mut c, script) = Script::client(&[
            ("n1", vec![Err(error(ErrorKind::Timeout))]),
            ("n2", vec![done(None)]),
        ]);
        assert_eq!(
            c.perform("k", &Action::Append(5)).await,
            Outcome::Ok(Action::Append(5))
        );
        let asked = script.asked();
        assert_eq!(asked.len(), 2);
        assert_eq!(asked[0].1, asked[1].1, "the retry is the same request");

        // In doubt, then refused: still unknown, named by the first error.
        let (mut c, _) = Script::client(&[
            ("n1", vec![Err(error(ErrorKind::Unavailable))]),
            ("n2", vec![Err(error(ErrorKind::FailedPrecondition))]),
        ]);
        assert_eq!(
            c.perform("k", &Action::Write(1)).await,
            Outcome::Info("unavailable".into())
        );
        // An error that is neither a refusal nor worth a retry ends it.
        let (mut c, script) = Script::client(&[("n1", vec![Err(error(ErrorKind::Aborted))])]);
        assert_eq!(
            c.perform("k", &Action::Write(1)).await,
            Outcome::Info("aborted".into())
        );
        assert_eq!(script.asked().len(), 1);
    }

    #[tokio::test]
    async fn refusals_fail_and_a_lost_read_is_asked_elsewhere() {
        let (mut c, _) = Script::client(&[("n1", vec![Err(error(ErrorKind::FailedPrecondition))])]);
        assert_eq!(
            c.perform("k", &Action::Write(1)).await,
            Outcome::Fail {
                error: "failedprecondition".into(),
                action: Action::Write(1)
            }
        );
        let (mut c, _) = Script::client(&[("n1", vec![not_leader(None)])]);
        assert_eq!(
            c.perform("k", &Action::Write(1)).await,
            Outcome::Fail {
                error: "not-leader".into(),
                action: Action::Write(1)
            }
        );
        let (mut c, script) = Script::client(&[
            ("n1", vec![Err(error(ErrorKind::Unavailable))]),
            ("n2", vec![done(Some("5"))]),
        ]);
        assert_eq!(
            c.perform("k", &Action::Read(None)).await,
            Outcome::Ok(Action::Read(Some(Value::Int(5))))
        );
        assert_eq!(script.asked()[1], ("n2".to_string(), Request::get("k")));
        // Every node down: the read fails (it changed nothing).
        let (mut c, script) = Script::client(&[]);
        assert_eq!(
            c.perform("k", &Action::Read(None)).await,
            Outcome::Fail {
                error: "unavailable".into(),
                action: Action::Read(None)
            }
        );
        assert_eq!(script.asked().len(), MAX_HOPS as usize + 1);
    }

    #[tokio::test]
    async fn a_mismatch_fails_with_the_value_seen_and_garbage_is_named() {
        let (mut c, _) = Script::client(&[(
            "n1",
            vec![Ok(Reply::Mismatch {
                current: Some(Bytes::from_static(b"3")),
                index: 2,
            })],
        )]);
        let cas = Action::cas(Some(1), 2);
        let Outcome::Fail { error, action } = c.perform("k", &cas).await else {
            panic!("a mismatch is a failure");
        };
        assert_eq!(error, MISMATCH);
        assert_eq!(
            action,
            Action::Cas(Cas {
                actual: Some(Some(3)),
                expected: Some(1),
                new: 2
            })
        );

        let (mut c, _) = Script::client(&[("n1", vec![done(Some("x1"))])]);
        let Outcome::Fail { error, .. } = c.perform("k", &Action::Read(None)).await else {
            panic!("an unreadable value fails the read");
        };
        assert!(error.starts_with("unreadable value: "), "{error}");
    }

    #[tokio::test]
    async fn every_operation_has_a_sequence_number_of_its_own() {
        let (mut c, script) = Script::client(&[("n1", vec![done(None), done(None)])]);
        c.perform("k", &Action::Write(1)).await;
        c.perform("k", &Action::Write(2)).await;
        let seqs: Vec<u64> = script
            .asked()
            .iter()
            .map(|(_, r)| match r {
                Request::Put { session, .. } => session.seq,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(seqs, [1, 2]);
    }
}
