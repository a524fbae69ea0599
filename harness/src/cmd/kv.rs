//! `harness kv`: one request to a running cluster, by hand.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use node::client::{NodeClient, is_not_leader};
use proto::kv::KvResponse;

use crate::check::Verdict;
use crate::cli::{KvArgs, KvOp};
use crate::run::RunError;

pub fn run(args: &KvArgs) -> Result<Verdict, RunError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Harness(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(request(args))
}

async fn request(args: &KvArgs) -> Result<Verdict, RunError> {
    let timeout = Duration::from_secs_f64(args.timeout);
    // A fresh session per invocation: retries inside it are deduplicated.
    let session = (
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        1,
    );
    use std::net::ToSocketAddrs;
    if let Err(e) = args.node.to_socket_addrs() {
        return Err(RunError::BadArgs(format!(
            "--node {}: not a HOST:PORT address ({e})",
            args.node
        )));
    }
    let mut addr = args.node.clone();
    for _ in 0..5 {
        let mut c = NodeClient::new(&addr, &args.cluster_id, timeout)
            .map_err(|e| RunError::BadArgs(format!("--node {addr}: {e}")))?;
        let unreachable = |e: tonic::Status| RunError::Harness(format!("{addr}: {}", e.message()));
        let resp: KvResponse = match &args.op {
            KvOp::Status => {
                let s = c.status(timeout).await.map_err(unreachable)?;
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
                return Ok(Verdict::Valid);
            }
            KvOp::Get { key } => c.get(key, timeout).await,
            KvOp::Put { key, value } => c.put(key, bytes(value), session, timeout).await,
            KvOp::Append { key, suffix } => c.append(key, bytes(suffix), session, timeout).await,
            KvOp::Cas {
                key,
                expect,
                new,
                absent,
            } => {
                let expected = if *absent { None } else { expect.as_deref().map(bytes) };
                c.cas(key, expected, bytes(new), session, timeout).await
            }
        }
        .map_err(unreachable)?;
        if is_not_leader(&resp) {
            if resp.leader_addr.is_empty() {
                println!("not-leader: no leader known yet");
                return Ok(Verdict::Invalid);
            }
            eprintln!(
                "redirected to leader {} at {}",
                resp.leader_id, resp.leader_addr
            );
            addr = resp.leader_addr;
            continue;
        }
        return Ok(print_answer(&args.op, &resp));
    }
    Err(RunError::Harness("too many redirects".into()))
}

fn print_answer(op: &KvOp, r: &KvResponse) -> Verdict {
    let value = r.value.as_ref().map_or("(absent)".to_string(), |v| {
        String::from_utf8_lossy(v).into_owned()
    });
    if r.status == proto::kv::Status::Mismatch as i32 {
        println!("mismatch: current value {value}");
        return Verdict::Invalid;
    }
    match op {
        KvOp::Get { .. } => println!("{value}"),
        _ => println!("ok (log index {})", r.index),
    }
    Verdict::Valid
}

fn bytes(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}
