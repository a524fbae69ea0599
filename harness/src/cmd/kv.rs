//! `harness kv`: one request to a running cluster, by hand.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use node::client::{NodeClient, Reply, Request, Session, StatusResponse};

use crate::check::Verdict;
use crate::cli::{KvArgs, KvOp};
use crate::run::RunError;

/// Runs `harness kv`: one request, following redirects to the leader, the
/// answer printed. A cas mismatch or no known leader is `Invalid` (exit 1).
pub fn run(args: &KvArgs) -> Result<Verdict, RunError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Harness(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(request(args))
}

async fn request(args: &KvArgs) -> Result<Verdict, RunError> {
    let timeout = Duration::from_secs_f64(args.timeout);
    use std::net::ToSocketAddrs;
    if let Err(e) = args.node.to_socket_addrs() {
        return Err(RunError::BadArgs(format!(
            "--node {}: not a HOST:PORT address ({e})",
            args.node
        )));
    }
    let request = match to_request(&args.op) {
        Some(r) => r,
        None => {
            let c = client(&args.node, args)?;
            let s = c
                .status(timeout)
                .await
                .map_err(|e| unreachable(&args.node, e))?;
            print_status(&s);
            return Ok(Verdict::Valid);
        }
    };
    let mut addr = args.node.clone();
    for _ in 0..5 {
        let c = client(&addr, args)?;
        let reply = c
            .call(request.clone(), timeout)
            .await
            .map_err(|e| unreachable(&addr, e))?;
        match reply {
            Reply::NotLeader {
                leader_id,
                leader_addr: Some(leader_addr),
            } => {
                eprintln!(
                    "redirected to leader {} at {leader_addr}",
                    leader_id.unwrap_or_default()
                );
                addr = leader_addr;
            }
            Reply::NotLeader { .. } => {
                println!("not-leader: no leader known yet");
                return Ok(Verdict::Invalid);
            }
            Reply::Mismatch { current, .. } => {
                println!("mismatch: current value {}", shown(current));
                return Ok(Verdict::Invalid);
            }
            Reply::Done { value, index } => {
                match &args.op {
                    KvOp::Get { .. } => println!("{}", shown(value)),
                    _ => println!("ok (log index {index})"),
                }
                return Ok(Verdict::Valid);
            }
        }
    }
    Err(RunError::Harness("too many redirects".into()))
}

/// The request an operation sends; `None` for `status`, which is not one.
/// Each invocation is a fresh session, so retries inside it are
/// deduplicated.
fn to_request(op: &KvOp) -> Option<Request> {
    let session = Session {
        client_id: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        seq: 1,
    };
    Some(match op {
        KvOp::Status => return None,
        KvOp::Get { key } => Request::get(key),
        KvOp::Put { key, value } => session.put(key, bytes(value)),
        KvOp::Append { key, suffix } => session.append(key, bytes(suffix)),
        KvOp::Cas {
            key,
            expect,
            new,
            absent,
        } => {
            let expected = if *absent {
                None
            } else {
                expect.as_deref().map(bytes)
            };
            session.cas(key, expected, bytes(new))
        }
    })
}

fn client(addr: &str, args: &KvArgs) -> Result<NodeClient, RunError> {
    NodeClient::new(
        addr,
        &args.cluster_id,
        Duration::from_secs_f64(args.timeout),
    )
    .map_err(|e| RunError::BadArgs(format!("--node {addr}: {e}")))
}

fn unreachable(addr: &str, e: node::client::CallError) -> RunError {
    RunError::Harness(format!("{addr}: {}", e.message))
}

fn print_status(s: &StatusResponse) {
    println!(
        "{} {} term {} leader {} voted-for {} commit {} applied {} log {}..{} snapshot {} members {}",
        s.id,
        s.role,
        s.term,
        or_none(&s.leader_id),
        or_none(&s.voted_for),
        s.commit_index,
        s.last_applied,
        s.first_log_index,
        s.last_log_index,
        s.snapshot_index,
        s.members.join(",")
    );
}

/// A value as the user typed it, or `(absent)`.
fn shown(value: Option<Bytes>) -> String {
    value.map_or("(absent)".to_string(), |v| {
        String::from_utf8_lossy(&v).into_owned()
    })
}

fn bytes(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}
