//! `harness kv`: one request to a running cluster, by hand.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use node::client::{
    ErrorKind, Member, MemberChange, MemberReply, NodeClient, Reply, Request, Session,
    StatusResponse,
};
use node::kv::command::MAX_VALUE;

use crate::check::Verdict;
use crate::cli::{KvArgs, KvOp, MemberOp};
use crate::run::RunError;

/// A membership change waits at least this long: adding a voter waits for
/// it to catch up.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(30);

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
    if let KvOp::Member { op } = &args.op {
        return member(args, op).await;
    }
    let request = match to_request(&args.op)? {
        Some(r) => r,
        None => {
            let c = client(&args.node, args)?;
            let s = c
                .status(timeout)
                .await
                .map_err(|e| call_failed(&args.node, args, e))?;
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
            .map_err(|e| call_failed(&addr, args, e))?;
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
/// deduplicated. A value above the node's limit is bad input, refused
/// here whatever its size (the node would refuse it too, once it has read
/// it all).
fn to_request(op: &KvOp) -> Result<Option<Request>, RunError> {
    let session = Session {
        client_id: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        seq: 1,
    };
    let checked = |what: &str, b: Bytes| {
        if b.len() > MAX_VALUE {
            return Err(RunError::BadArgs(format!(
                "{what} is {} bytes; the node's limit is {MAX_VALUE} bytes",
                b.len()
            )));
        }
        Ok(b)
    };
    Ok(Some(match op {
        KvOp::Status | KvOp::Member { .. } => return Ok(None),
        KvOp::Get { key } => Request::get(key),
        KvOp::Put {
            key,
            value,
            value_file,
        } => {
            let value = match (value, value_file) {
                (_, Some(path)) => read_value(path)?,
                (Some(v), None) => bytes(v),
                (None, None) => return Err(RunError::BadArgs("put: no value".into())),
            };
            let what = match value_file {
                Some(p) => format!("--value-file {}", p.display()),
                None => "the value".into(),
            };
            session.put(key, checked(&what, value)?)
        }
        KvOp::Append { key, suffix } => session.append(key, checked("the suffix", bytes(suffix))?),
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
            let new = checked("the new value", bytes(new))?;
            session.cas(key, expected, new)
        }
    }))
}

/// The bytes of `--value-file PATH` (`-`: standard input), read up to one
/// byte past the node's limit: a bigger file is refused without being read
/// whole.
fn read_value(path: &std::path::Path) -> Result<Bytes, RunError> {
    use std::io::Read;
    let named = || format!("--value-file {}", path.display());
    let reader: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(path)
            .map_err(|e| RunError::BadArgs(format!("{}: {e}", named())))?;
        Box::new(f)
    };
    let mut buf = Vec::new();
    reader
        .take(MAX_VALUE as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| RunError::BadArgs(format!("{}: {e}", named())))?;
    if buf.len() > MAX_VALUE {
        return Err(RunError::BadArgs(format!(
            "{} holds more than the node's limit of {MAX_VALUE} bytes",
            named()
        )));
    }
    Ok(Bytes::from(buf))
}

/// `harness kv member ...`: asked of the leader, following redirects.
async fn member(args: &KvArgs, op: &MemberOp) -> Result<Verdict, RunError> {
    let change = match op.clone() {
        MemberOp::List => None,
        MemberOp::Add { id, addr, learner } => Some(MemberChange::Add { id, addr, learner }),
        MemberOp::Remove { id } => Some(MemberChange::Remove(id)),
        MemberOp::Promote { id } => Some(MemberChange::Promote(id)),
        MemberOp::Readd { id } => Some(MemberChange::Readd(id)),
        MemberOp::Transfer { id } => Some(MemberChange::Transfer(id)),
    };
    let asked = Duration::from_secs_f64(args.timeout);
    let timeout = if change.is_some() {
        asked.max(MEMBER_TIMEOUT)
    } else {
        asked
    };
    let mut addr = args.node.clone();
    for _ in 0..5 {
        let c = client(&addr, args)?;
        let reply = match &change {
            None => c.members(timeout).await,
            Some(change) => c.change_members(change.clone(), timeout).await,
        };
        let reply = reply.map_err(|e| {
            if matches!(
                e.kind,
                ErrorKind::FailedPrecondition | ErrorKind::InvalidArgument
            ) {
                return call_failed(&addr, args, e);
            }
            let unknown = if change.is_some() {
                " (the change may or may not take effect: `member list` shows)"
            } else {
                ""
            };
            RunError::Harness(format!("{addr}: {}{unknown}", e.message))
        })?;
        match reply {
            MemberReply::NotLeader {
                leader_id,
                leader_addr: Some(leader_addr),
            } => {
                eprintln!(
                    "redirected to leader {} at {leader_addr}",
                    leader_id.unwrap_or_default()
                );
                addr = leader_addr;
            }
            MemberReply::NotLeader { .. } => {
                println!("not-leader: no leader known yet");
                return Ok(Verdict::Invalid);
            }
            MemberReply::Refused(why) => {
                println!("refused: {why}");
                return Ok(Verdict::Invalid);
            }
            MemberReply::Done {
                index,
                members,
                leader_id,
            } => {
                print_members(op, index, &members, leader_id.as_deref());
                return Ok(Verdict::Valid);
            }
        }
    }
    Err(RunError::Harness("too many redirects".into()))
}

fn print_members(op: &MemberOp, index: u64, members: &[Member], leader: Option<&str>) {
    match op {
        MemberOp::List => {}
        MemberOp::Transfer { .. } => {
            match leader {
                Some(l) => println!("ok: {l} leads"),
                None => println!("ok: the old leader stepped down; the new one is not known yet"),
            }
            return;
        }
        _ => println!("ok (configuration at log index {index})"),
    }
    for line in member_lines(members) {
        println!("{line}");
    }
}

/// One line per member: `n1 voter 127.0.0.1:7001 incarnation 0123456789abcdef match 42 caught-up`.
fn member_lines(members: &[Member]) -> Vec<String> {
    members
        .iter()
        .map(|m| {
            let mut line = format!(
                "{} {} {} incarnation {:016x} match {}",
                m.id,
                m.role,
                or_none(&m.addr),
                m.incarnation,
                m.match_index
            );
            if m.caught_up {
                line.push_str(" caught-up");
            }
            if m.awaiting_readd {
                line.push_str(" awaiting-readd");
            }
            line
        })
        .collect()
}

fn client(addr: &str, args: &KvArgs) -> Result<NodeClient, RunError> {
    NodeClient::new(
        addr,
        &args.cluster_id,
        Duration::from_secs_f64(args.timeout),
    )
    .map_err(|e| RunError::BadArgs(format!("--node {addr}: {e}")))
}

/// What a failed call means for the user: a node of another cluster
/// (their `--cluster-id` is wrong) or a request it refused as malformed is
/// bad input (254); anything else left the node unreached or the outcome
/// unknown (255).
fn call_failed(addr: &str, args: &KvArgs, e: node::client::CallError) -> RunError {
    match e.kind {
        ErrorKind::FailedPrecondition => RunError::BadArgs(format!(
            "--cluster-id {}: the node at {addr} is of another cluster ({})",
            args.cluster_id, e.message
        )),
        ErrorKind::InvalidArgument => RunError::BadArgs(format!(
            "the node at {addr} refused the request: {}",
            e.message
        )),
        _ => RunError::Harness(format!(
            "{addr}: {} (the node could not be reached, or the outcome is unknown)",
            e.message
        )),
    }
}

fn print_status(s: &StatusResponse) {
    let list = |ids: &[String]| {
        if ids.is_empty() {
            "-".to_string()
        } else {
            ids.join(",")
        }
    };
    println!(
        "{} {} term {} leader {} voted-for {} commit {} applied {} log {}..{} snapshot {} members {} voters {} learners {} awaiting-readd {} incarnation {:016x} {}",
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
        s.members.join(","),
        list(&s.voters),
        list(&s.learners),
        list(&s.awaiting_readd),
        s.incarnation,
        or_none(&s.standing),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_lines_say_role_address_incarnation_and_state() {
        let m = |id: &str, role: &str, caught_up, awaiting| Member {
            id: id.into(),
            addr: "127.0.0.1:7001".into(),
            role: role.into(),
            incarnation: 0xab,
            awaiting_readd: awaiting,
            match_index: 42,
            caught_up,
        };
        assert_eq!(
            member_lines(&[m("n1", "voter", true, false), m("n3", "voter", false, true)]),
            [
                "n1 voter 127.0.0.1:7001 incarnation 00000000000000ab match 42 caught-up",
                "n3 voter 127.0.0.1:7001 incarnation 00000000000000ab match 42 awaiting-readd",
            ]
        );
    }
}
