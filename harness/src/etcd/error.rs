//! What a failed etcd request means for the history: did it certainly not
//! take effect (`fail`), or may it still (`info`)?
//!
//! etcd answers with a gRPC status whose message is one of its own error
//! descriptions (`etcdserver/api/v3rpc/rpctypes/error.go`), or, for the few
//! server errors missing from `toGRPCErrorMap` (`etcdserver/api/v3rpc/util.go`),
//! code `Unknown` with the error's text. The code alone does not decide:
//! etcd returns `Unavailable` both for "no leader" (refused before
//! anything happened) and for "request timed out" (the proposal may commit
//! later). So [`classify`] matches etcd's exact messages first ([`ETCD_ERRORS`],
//! each with the place in etcd 3.4.23 that returns it and why it is definite
//! or not), then the transport: a request that never left because the
//! connection could not be made is definite; anything else (deadline,
//! connection lost after sending, an unrecognised message) is unknown for
//! an update. Unknown is the safe default: it can hide an anomaly, never
//! invent one.
//!
//! A server-side `DeadlineExceeded` ("context deadline exceeded") is the
//! raw context error of `s.r.Propose` (etcdserver/v3_server.go:675), which
//! returns it whether the deadline passed before Raft took the proposal
//! (as it always does while the member knows no leader: raft/node.go:334)
//! or just after (the second select of `stepWithWaitOption`,
//! raft/node.go:481-488, races the result against the context): unknown.
//!
//! A read (Range) has no effect, so every failed read is definite.

use std::error::Error as _;

use tonic::{Code, Status};

/// Whether a failed request may still take effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Certainty {
    /// It did not and will not take effect (Jepsen's `fail`).
    Definite,
    /// It may have taken effect, or may yet (Jepsen's `info`).
    Unknown,
}

/// Whether the request could change the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Range, Status, HashKV, MemberList: no effect whatever happened.
    ReadOnly,
    /// Put, Txn with a Put, member changes.
    Update,
}

/// A failed etcd request, classified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{label}: {message}")]
pub struct EtcdError {
    /// Whether it may still take effect.
    pub certainty: Certainty,
    /// A short name for the history's `error` field (`no-leader`,
    /// `timeout`, `mismatch`...).
    pub label: &'static str,
    /// What etcd or the transport said.
    pub message: String,
}

impl EtcdError {
    /// A failure that proves the request had no effect.
    pub fn definite(label: &'static str, message: impl Into<String>) -> EtcdError {
        EtcdError {
            certainty: Certainty::Definite,
            label,
            message: message.into(),
        }
    }

    /// A failure after which the request may still take effect.
    pub fn unknown(label: &'static str, message: impl Into<String>) -> EtcdError {
        EtcdError {
            certainty: Certainty::Unknown,
            label,
            message: message.into(),
        }
    }

    /// Whether the request certainly had no effect.
    pub fn is_definite(&self) -> bool {
        self.certainty == Certainty::Definite
    }

    /// The same error for a request that had no effect anyway.
    fn read_only(mut self) -> EtcdError {
        self.certainty = Certainty::Definite;
        self
    }
}

/// One error etcd 3.4 sends, and what it proves about an update.
#[derive(Clone, Copy, Debug)]
pub struct KnownError {
    /// The status message, exactly as etcd sends it.
    pub message: &'static str,
    /// The status code etcd sends with it.
    pub code: Code,
    /// The label [`EtcdError::label`] gets.
    pub label: &'static str,
    /// What it proves about an update.
    pub certainty: Certainty,
    /// Where etcd 3.4.23 returns it, and why that makes it definite or not.
    pub why: &'static str,
}

const fn known(
    message: &'static str,
    code: Code,
    label: &'static str,
    certainty: Certainty,
    why: &'static str,
) -> KnownError {
    KnownError {
        message,
        code,
        label,
        certainty,
        why,
    }
}

use Certainty::{Definite, Unknown};

/// etcd 3.4's errors as the harness reads them. Paths are in etcd-io/etcd
/// at tag v3.4.23; "before Propose" means the request never reached the
/// Raft log, so it cannot take effect.
pub const ETCD_ERRORS: &[KnownError] = &[
    // Refused before the proposal was handed to Raft.
    known(
        "etcdserver: no leader",
        Code::Unavailable,
        "no-leader",
        Definite,
        "the unary interceptor refuses a request carrying `hasleader: true` when the member \
         knows no leader, before calling the handler (v3rpc/interceptor.go:65); the other \
         sources are lease forwarding and watch streams (v3_server.go:395/399, lease.go:100, \
         interceptor.go:217/318), never a KV proposal. Without `hasleader` such a member \
         takes no proposal at all (raft/node.go:334 stops reading proposals while there is \
         no leader): the request waits out its deadline and ends unknown",
    ),
    known(
        "raft proposal dropped",
        Code::Unknown,
        "proposal-dropped",
        Definite,
        "raft.ErrProposalDropped, not in toGRPCErrorMap: raft refused to append the entry (a \
         leader transferring leadership or removed from the configuration, or the role \
         changed between the node loop taking the proposal and stepping it; \
         raft/raft.go:1036/1040/1083/1283/1320/1323); Propose returns \
         it from s.r.Propose and processInternalRaftRequestOnce returns at once (v3_server.go:675-680)",
    ),
    known(
        "etcdserver: too many requests",
        Code::Unknown,
        "too-many-requests",
        Definite,
        "applied index too far behind the committed one, checked before Propose \
         (v3_server.go:640); sent with code Unknown because util.go maps it to \
         rpctypes.ErrTooManyRequests, a client-side error type grpc-go cannot convert",
    ),
    known(
        "etcdserver: request is too large",
        Code::InvalidArgument,
        "request-too-large",
        Definite,
        "checked before Propose (v3_server.go:662)",
    ),
    known(
        "etcdserver: rpc not supported for learner",
        Code::Unavailable,
        "learner",
        Definite,
        "the unary interceptor refuses it before the handler (v3rpc/interceptor.go:52)",
    ),
    known(
        "etcdserver: not capable",
        Code::Unavailable,
        "not-capable",
        Definite,
        "the unary interceptor refuses it before the handler (v3rpc/interceptor.go:48)",
    ),
    known(
        "etcdserver: not leader",
        Code::FailedPrecondition,
        "not-leader",
        Definite,
        "MoveLeader and member promotion on a non-leader, checked before any proposal \
         (maintenance.go:253, server.go:1805)",
    ),
    known(
        "etcdserver: mvcc: database space exceeded",
        Code::ResourceExhausted,
        "no-space",
        Definite,
        "the quota check before the handler (v3rpc/quota.go:49), or the capped applier once \
         the NOSPACE alarm, itself a Raft entry, is active on every member (apply.go:695); \
         either way the put is not applied anywhere",
    ),
    known(
        "etcdserver: corrupt cluster",
        Code::DataLoss,
        "corrupt",
        Definite,
        "the corruption applier refuses every request once the CORRUPT alarm, a Raft entry, \
         is active (corrupt.go:390-414)",
    ),
    known(
        "etcdserver: unhealthy cluster",
        Code::Unavailable,
        "unhealthy",
        Definite,
        "member add/remove/promote refused by a pre-check before the conf change is proposed \
         (server.go:1520/1669/1876)",
    ),
    known(
        "etcdserver: re-configuration failed due to not enough started members",
        Code::Unknown,
        "not-enough-started",
        Definite,
        "member add/remove/promote pre-check before proposing (server.go:1655/1791/1853); code Unknown as for \
         too-many-requests (util.go maps it to a client-side error type)",
    ),
    known(
        "etcdserver: key is not provided",
        Code::InvalidArgument,
        "invalid-argument",
        Definite,
        "request validation before the handler (v3rpc/key.go:122-161)",
    ),
    known(
        "etcdserver: too many operations in txn request",
        Code::InvalidArgument,
        "invalid-argument",
        Definite,
        "request validation before the handler (v3rpc/key.go)",
    ),
    known(
        "etcdserver: duplicate key given in txn request",
        Code::InvalidArgument,
        "invalid-argument",
        Definite,
        "request validation before the handler (v3rpc/key.go)",
    ),
    known(
        "etcdserver: mvcc: required revision has been compacted",
        Code::OutOfRange,
        "compacted",
        Definite,
        "a Range or HashKV at a compacted revision: read-only",
    ),
    known(
        "etcdserver: mvcc: required revision is a future revision",
        Code::OutOfRange,
        "future-revision",
        Definite,
        "a Range or HashKV beyond the member's revision: read-only",
    ),
    known(
        "etcdserver: permission denied",
        Code::PermissionDenied,
        "auth",
        Definite,
        "auth checks run before Propose or deterministically in apply on every member, so a \
         refused put is applied nowhere",
    ),
    known(
        "etcdserver: invalid auth token",
        Code::Unauthenticated,
        "auth",
        Definite,
        "token check before Propose (v3_server.go AuthInfoFromCtx)",
    ),
    known(
        "etcdserver: member ID already exist",
        Code::FailedPrecondition,
        "member-exists",
        Definite,
        "membership validation before the conf change is proposed",
    ),
    known(
        "etcdserver: Peer URLs already exists",
        Code::FailedPrecondition,
        "peer-url-exists",
        Definite,
        "membership validation before the conf change is proposed",
    ),
    known(
        "etcdserver: member not found",
        Code::NotFound,
        "member-not-found",
        Definite,
        "membership validation before the conf change is proposed",
    ),
    known(
        "etcdserver: can only promote a learner member",
        Code::FailedPrecondition,
        "member-not-learner",
        Definite,
        "promotion pre-check before proposing",
    ),
    known(
        "etcdserver: can only promote a learner member which is in sync with leader",
        Code::FailedPrecondition,
        "learner-not-ready",
        Definite,
        "promotion pre-check on the leader before proposing (server.go:1824)",
    ),
    known(
        "etcdserver: too many learner members in cluster",
        Code::FailedPrecondition,
        "too-many-learners",
        Definite,
        "membership validation before the conf change is proposed",
    ),
    known(
        "etcdserver: given member URLs are invalid",
        Code::InvalidArgument,
        "invalid-argument",
        Definite,
        "request validation before the handler",
    ),
    // The proposal may be in the log: it can still commit and apply.
    known(
        "etcdserver: request timed out",
        Code::Unavailable,
        "request-timeout",
        Unknown,
        "parseProposeCtxErr once Propose has returned (v3_server.go:690, server.go:2646): the \
         entry was handed to Raft and may commit later",
    ),
    known(
        "etcdserver: request timed out, possibly due to previous leader failure",
        Code::Unavailable,
        "request-timeout",
        Unknown,
        "as request timed out (server.go:2631)",
    ),
    known(
        "etcdserver: request timed out, possibly due to connection lost",
        Code::Unavailable,
        "request-timeout",
        Unknown,
        "as request timed out (server.go:2639/2643)",
    ),
    known(
        "etcdserver: request timed out, waiting for the applied index took too long",
        Code::Unavailable,
        "request-timeout",
        Unknown,
        "lease and auth paths (v3_server.go:272); kept unknown like every timeout",
    ),
    known(
        "etcdserver: request cancelled",
        Code::Unknown,
        "cancelled",
        Unknown,
        "ErrCanceled, not in toGRPCErrorMap: the client's context ended after Propose \
         returned (server.go:2623), so the entry may commit",
    ),
    known(
        "etcdserver: server stopped",
        Code::Unavailable,
        "stopped",
        Unknown,
        "the member stopped while waiting for the applied result (v3_server.go:692): it may \
         have appended and replicated the entry first",
    ),
    known(
        "etcdserver: leader changed",
        Code::Unavailable,
        "leader-changed",
        Unknown,
        "returned by the ReadIndex loop (v3_server.go:798), which only linearizable reads and \
         read-only txns use; an update never sees it, but if one did, nothing would prove \
         it was not proposed",
    ),
];

/// Classifies a failed request. `effect` says whether it could change the
/// store; a read-only request is always definite.
pub fn classify(status: &Status, effect: Effect) -> EtcdError {
    let e = classify_update(status);
    match effect {
        Effect::ReadOnly => e.read_only(),
        Effect::Update => e,
    }
}

fn classify_update(status: &Status) -> EtcdError {
    let message = status.message();
    if let Some(k) = ETCD_ERRORS.iter().find(|k| k.message == message) {
        return EtcdError {
            certainty: k.certainty,
            label: k.label,
            message: message.to_string(),
        };
    }
    if never_sent(status) {
        return EtcdError::definite("connect-failed", describe(status));
    }
    let label = match status.code() {
        // tonic ends a call whose `grpc-timeout` expired locally with
        // Cancelled("Timeout expired"), not DeadlineExceeded.
        _ if has_source::<tonic::TimeoutExpired>(status) => "timeout",
        Code::DeadlineExceeded => "timeout",
        Code::Cancelled => "cancelled",
        Code::Unavailable => "unavailable",
        _ => "unknown",
    };
    EtcdError::unknown(label, describe(status))
}

/// Whether the request failed because no connection could be made: tonic
/// then never wrote it anywhere. (A lazily connected channel queues a call
/// until the connection is up; a failed connect fails the queued calls.)
fn never_sent(status: &Status) -> bool {
    has_source::<tonic::ConnectError>(status)
}

fn has_source<E: std::error::Error + 'static>(status: &Status) -> bool {
    let mut source = status.source();
    while let Some(e) = source {
        if e.is::<E>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The status message and its sources: tonic's transport messages alone
/// ("transport error") do not say what broke.
fn describe(status: &Status) -> String {
    let mut s = format!("{:?}: {}", status.code(), status.message());
    let mut source = status.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = e.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(code: Code, message: &str) -> EtcdError {
        classify(&Status::new(code, message), Effect::Update)
    }

    #[test]
    fn refusals_before_the_log_are_definite() {
        for (code, message, label) in [
            (Code::Unavailable, "etcdserver: no leader", "no-leader"),
            (Code::Unknown, "raft proposal dropped", "proposal-dropped"),
            (
                Code::Unknown,
                "etcdserver: too many requests",
                "too-many-requests",
            ),
            (
                Code::InvalidArgument,
                "etcdserver: request is too large",
                "request-too-large",
            ),
            (
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded",
                "no-space",
            ),
            (
                Code::PermissionDenied,
                "etcdserver: permission denied",
                "auth",
            ),
        ] {
            let e = update(code, message);
            assert_eq!(e.certainty, Certainty::Definite, "{message}");
            assert_eq!(e.label, label);
            assert_eq!(e.message, message);
        }
    }

    #[test]
    fn anything_that_may_have_been_proposed_is_unknown() {
        for (message, label) in [
            ("etcdserver: request timed out", "request-timeout"),
            (
                "etcdserver: request timed out, possibly due to previous leader failure",
                "request-timeout",
            ),
            (
                "etcdserver: request timed out, possibly due to connection lost",
                "request-timeout",
            ),
            ("etcdserver: leader changed", "leader-changed"),
            ("etcdserver: server stopped", "stopped"),
        ] {
            let e = update(Code::Unavailable, message);
            assert_eq!(e.certainty, Certainty::Unknown, "{message}");
            assert_eq!(e.label, label);
        }
        assert_eq!(
            update(Code::Unknown, "etcdserver: request cancelled").certainty,
            Certainty::Unknown
        );
        // The transport: our deadline, a lost connection, anything unrecognised.
        let e = update(Code::DeadlineExceeded, "client timeout");
        assert_eq!((e.certainty, e.label), (Certainty::Unknown, "timeout"));
        let e = update(Code::Unavailable, "error reading a body from connection");
        assert_eq!((e.certainty, e.label), (Certainty::Unknown, "unavailable"));
        let e = update(Code::Unknown, "etcdserver: some error of a newer etcd");
        assert_eq!((e.certainty, e.label), (Certainty::Unknown, "unknown"));
        // The code alone proves nothing: etcd's own messages decide.
        let e = update(Code::InvalidArgument, "decoded message length too large");
        assert_eq!(e.certainty, Certainty::Unknown);
    }

    #[test]
    fn a_failed_read_is_always_definite() {
        let e = classify(
            &Status::unavailable("etcdserver: request timed out"),
            Effect::ReadOnly,
        );
        assert_eq!(e.certainty, Certainty::Definite);
        assert_eq!(e.label, "request-timeout");
        let e = classify(&Status::deadline_exceeded("x"), Effect::ReadOnly);
        assert_eq!((e.certainty, e.label), (Certainty::Definite, "timeout"));
    }

    #[test]
    fn the_table_has_one_entry_per_message_and_etcd_prefixes() {
        let mut seen = std::collections::HashSet::new();
        for k in ETCD_ERRORS {
            assert!(seen.insert(k.message), "{} twice", k.message);
            assert!(
                k.message.starts_with("etcdserver: ") || k.message == "raft proposal dropped",
                "{}",
                k.message
            );
            assert!(!k.why.is_empty());
            // What etcd sends is classified as the table says.
            assert_eq!(update(k.code, k.message).certainty, k.certainty);
        }
    }

    #[tokio::test]
    async fn a_server_that_never_answers_leaves_an_update_unknown() {
        // Accepts connections and says nothing.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let client = crate::etcd::EtcdClient::new(
            &[("silent".to_string(), url)],
            crate::etcd::ClientOptions::default(),
        )
        .unwrap();
        let e = client
            .put(
                0,
                b"k",
                b"v".to_vec(),
                std::time::Duration::from_millis(200),
            )
            .await
            .unwrap_err();
        assert_eq!(
            (e.certainty, e.label),
            (Certainty::Unknown, "timeout"),
            "{e}"
        );
        silent.abort();
    }

    #[tokio::test]
    async fn a_connection_that_cannot_be_made_is_definite() {
        // A port nothing listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect_lazy();
        let mut kv = etcd_proto::etcdserverpb::kv_client::KvClient::new(channel);
        let status = kv
            .put(etcd_proto::etcdserverpb::PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        let e = classify(&status, Effect::Update);
        assert_eq!(e.certainty, Certainty::Definite, "{e}");
        assert_eq!(e.label, "connect-failed");
        assert!(e.message.contains("refused"), "{e}");
    }
}
