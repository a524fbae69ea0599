//! etcd as a [`Db`], over [`crate::etcd`].
//!
//! - Members: `etcd` from `PATH` or `--db-bin`, named after the harness's
//!   ids (`n1`, ...), each with its data directory (`nodes/<id>/data`),
//!   a client and a peer URL on the network's addresses (198.18.1.x:7000
//!   and :7001 on netns), `--initial-cluster` of every member's peer URL,
//!   the run's cluster id as `--initial-cluster-token`, and zap JSON logs
//!   on stderr, which go to `nodes/<id>/node.log`. `--db-arg` flags come
//!   last and override ours.
//! - Network: each member dials the one peer URL a peer advertises, so a
//!   proxy cannot tell A→B from C→B: on proxies members are connected
//!   directly and partitions are refused ([`unsupported`]).
//! - Leaders: `Maintenance.Status` of every member (leader id, raft term).
//! - Workers: [`crate::etcd::workload`], one shared connection per member;
//!   an operation goes to the worker's home member, which forwards to its
//!   leader itself.
//! - Evidence: role changes from each member's zap log ("became leader at
//!   term N"); at the end of the run, `Maintenance.HashKV` of every member
//!   at one revision, written to `hashkv.json` and read as one apply event
//!   per member at that revision, so the state-machine checker names the
//!   revision and the members whose stores differ.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use lazyfs::Metadata;
use serde_json::{Value as Json, json};

use super::{
    BenchAnswer, BenchOp, Db, DbError, DbKind, DbSpec, Leader, MemberSpec, Members, Worker,
};
use crate::client::Outcome;
use crate::etcd::member::{self, ClusterState, MemberAddrs, MemberConfig};
use crate::etcd::survey::{self, HashCheck};
use crate::etcd::value::Kind as ValueKind;
use crate::etcd::workload::{self, OpOptions};
use crate::etcd::{ClientOptions, Consistency, EtcdClient, EtcdError, logs};
use crate::history::Action;
use crate::history::events::{EventKind, NodeEvent, NodeLog, RunEvents};
use crate::launch::NodeBin;
use crate::net::Ports;
use crate::workload::Workload;

/// etcd fsyncs its WAL files and the WAL directory after renaming a new
/// segment into place, but creates its data directory, `member/`,
/// `member/snap/` and the first WAL directory without an fsync of their
/// parents (etcd 3.4: `fileutil.TouchDirAll`, `wal.Create` before its
/// rename). On a disk that keeps only what POSIX promises (lazyfs's
/// `strict`), a power cut soon after the first start throws the whole
/// member away, a loss etcd never claims to prevent. The default for etcd
/// is therefore `durable`: names and metadata survive at once, file
/// contents only once fsynced, which still catches a member that
/// acknowledges writes it has not fsynced (`--unsafe-no-fsync`).
/// `--lazyfs-metadata strict` holds etcd to POSIX all the same.
pub const METADATA: Metadata = Metadata::Durable;

/// How long the end-of-run comparison waits for the members to reach one
/// revision before it compares at the lowest.
const SETTLE: Duration = Duration::from_secs(10);
/// One Status or HashKV call.
const CALL: Duration = Duration::from_secs(3);
/// A membership change.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(30);
/// Conditional writes per append (each after a failed compare, which
/// changed nothing) before the append fails with `mismatch`.
const APPEND_ATTEMPTS: u32 = 3;
/// The file the end-of-run comparison writes in the run directory.
pub const HASHKV_FILE: &str = "hashkv.json";

/// etcd: its binary and flags.
pub struct Etcd {
    bin: NodeBin,
    args: Vec<String>,
    token: String,
    reads: Consistency,
}

impl Etcd {
    /// `spec.bin`, or `etcd` on `PATH`; missing: bad arguments naming the
    /// package to install.
    pub fn open(spec: &DbSpec) -> Result<Etcd, DbError> {
        let bin = member::find_binary(spec.bin.as_deref())
            .map_err(|e| DbError::BadArgs(e.to_string()))?;
        Ok(Etcd {
            bin: NodeBin::External(bin),
            args: spec.args.clone(),
            token: spec.cluster_id.clone(),
            reads: if spec.serializable_reads {
                Consistency::Serializable
            } else {
                Consistency::Linearizable
            },
        })
    }
}

impl Db for Etcd {
    fn kind(&self) -> DbKind {
        DbKind::Etcd
    }

    fn bin(&self) -> &NodeBin {
        &self.bin
    }

    fn ports(&self) -> Ports {
        Ports::Separate
    }

    fn dials_per_link(&self) -> bool {
        false
    }

    fn member_args(&self, m: &MemberSpec) -> Vec<String> {
        let me = MemberAddrs {
            name: m.id.to_string(),
            client: m.listen.client,
            peer: m.listen.peer,
        };
        // --initial-cluster only holds names and peer URLs.
        let cluster: Vec<MemberAddrs> = m
            .cluster
            .iter()
            .map(|(id, peer)| MemberAddrs {
                name: id.clone(),
                client: *peer,
                peer: *peer,
            })
            .collect();
        member::command_line(&MemberConfig {
            member: &me,
            cluster: &cluster,
            data_dir: m.data_dir,
            state: ClusterState::New,
            token: &self.token,
            extra: &self.args,
        })
    }

    fn connect(&self, addrs: &[(String, SocketAddr)]) -> Result<Arc<dyn Members>, DbError> {
        let urls: Vec<(String, String)> = addrs
            .iter()
            .map(|(id, a)| (id.clone(), format!("http://{a}")))
            .collect();
        let client = EtcdClient::new(&urls, ClientOptions::default())
            .map_err(|e| DbError::Connect(e.to_string()))?;
        Ok(Arc::new(EtcdMembers {
            addrs: addrs.to_vec(),
            client,
            reads: self.reads,
        }))
    }
}

/// The running members.
pub struct EtcdMembers {
    addrs: Vec<(String, SocketAddr)>,
    client: EtcdClient,
    reads: Consistency,
}

impl EtcdMembers {
    /// A member to send a membership change through: the leader if one is
    /// known, else the first.
    async fn via(&self) -> usize {
        survey::find_leader(&self.client, CALL)
            .await
            .map_or(0, |(i, _)| i)
    }

    /// The etcd member id of the member named `name`.
    async fn member_id(&self, via: usize, name: &str) -> Result<u64, DbError> {
        let list = self
            .client
            .member_list(via, CALL)
            .await
            .map_err(change_error)?;
        list.iter()
            .find(|m| m.name == name)
            .map(|m| m.id)
            .ok_or_else(|| DbError::Refused(format!("no member named {name}")))
    }

    /// Removes or promotes the member named `name`, through the leader.
    async fn change_named(&self, name: String, change: Change) -> Result<(), DbError> {
        let via = self.via().await;
        let member = self.member_id(via, &name).await?;
        match change {
            Change::Remove => self.client.member_remove(via, member, MEMBER_TIMEOUT).await,
            Change::Promote => {
                self.client
                    .member_promote(via, member, MEMBER_TIMEOUT)
                    .await
            }
        }
        .map(|_| ())
        .map_err(change_error)
    }

    /// Waits (at most [`SETTLE`]) for every member to report the same
    /// revision, so the hashes cover everything every member applied.
    async fn settle(&self) {
        let deadline = Instant::now() + SETTLE;
        while Instant::now() < deadline {
            let revisions: Vec<Option<i64>> = survey::statuses(&self.client, CALL)
                .await
                .into_iter()
                .map(|s| s.ok().map(|s| s.revision))
                .collect();
            if revisions.iter().all(|r| r.is_some() && *r == revisions[0]) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A change to an existing member.
enum Change {
    Remove,
    Promote,
}

fn change_error(e: EtcdError) -> DbError {
    if e.is_definite() {
        DbError::Refused(e.to_string())
    } else {
        DbError::Unknown(e.to_string())
    }
}

impl Members for EtcdMembers {
    fn addrs(&self) -> &[(String, SocketAddr)] {
        &self.addrs
    }

    fn leader(&self, timeout: Duration) -> BoxFuture<'_, Option<Leader>> {
        Box::pin(async move {
            let (i, s) = survey::find_leader(&self.client, timeout).await?;
            Some(Leader {
                id: self.client.name(i).to_string(),
                term: s.raft_term,
            })
        })
    }

    fn worker(&self, workload: Workload, home: usize, timeout: Duration) -> Box<dyn Worker> {
        let home = home % self.addrs.len().max(1);
        Box::new(EtcdWorker {
            client: self.client.clone(),
            home,
            name: self.addrs[home].0.clone(),
            opts: OpOptions {
                kind: match workload {
                    Workload::Register => ValueKind::Register,
                    Workload::Append => ValueKind::List,
                },
                reads: self.reads,
                append_attempts: APPEND_ATTEMPTS,
                timeout,
            },
        })
    }

    fn compare(&self, dir: &Path) -> BoxFuture<'_, String> {
        let path = dir.join(HASHKV_FILE);
        Box::pin(async move {
            self.settle().await;
            let check = survey::check_hashes(&self.client, CALL).await;
            let hashes = |named: &mut dyn Iterator<Item = (&str, u32)>| -> Json {
                named
                    .map(|(n, h)| (n.to_string(), json!(format!("{h:08x}"))))
                    .collect::<serde_json::Map<_, _>>()
                    .into()
            };
            let (record, line) = match &check {
                HashCheck::Agree { revision, hash } => (
                    json!({"revision": revision,
                           "hashes": hashes(&mut self.addrs.iter().map(|(id, _)| (id.as_str(), *hash)))}),
                    format!("HashKV at revision {revision}: every member {hash:08x}"),
                ),
                HashCheck::Mismatch {
                    revision,
                    hashes: got,
                } => (
                    json!({"revision": revision,
                           "hashes": hashes(&mut got.iter().map(|(n, h)| (n.as_str(), *h)))}),
                    format!(
                        "HashKV at revision {revision} DIFFERS: {}",
                        got.iter()
                            .map(|(n, h)| format!("{n} {h:08x}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                HashCheck::Unknown(why) => (
                    json!({"unknown": why}),
                    format!("HashKV could not be compared: {why}"),
                ),
            };
            let text = serde_json::to_string_pretty(&record).expect("json") + "\n";
            if let Err(e) = std::fs::write(&path, text) {
                return format!("{line}; warning: cannot write {}: {e}", path.display());
            }
            line
        })
    }

    fn add_member(
        &self,
        _id: &str,
        peer: SocketAddr,
        learner: bool,
    ) -> BoxFuture<'_, Result<(), DbError>> {
        Box::pin(async move {
            let via = self.via().await;
            self.client
                .member_add(via, vec![format!("http://{peer}")], learner, MEMBER_TIMEOUT)
                .await
                .map(|_| ())
                .map_err(change_error)
        })
    }

    fn remove_member(&self, id: &str) -> BoxFuture<'_, Result<(), DbError>> {
        Box::pin(self.change_named(id.to_string(), Change::Remove))
    }

    fn promote_member(&self, id: &str) -> BoxFuture<'_, Result<(), DbError>> {
        Box::pin(self.change_named(id.to_string(), Change::Promote))
    }

    fn bench_call(
        &self,
        member: usize,
        _worker: usize,
        op: BenchOp,
        timeout: Duration,
    ) -> BoxFuture<'_, BenchAnswer> {
        Box::pin(async move {
            let answer = match op {
                BenchOp::Put { key, value, .. } => self
                    .client
                    .put(member, key.as_bytes(), value.to_vec(), timeout)
                    .await
                    .map(|_| ()),
                BenchOp::Get(key) => self
                    .client
                    .get(member, key.as_bytes(), self.reads, timeout)
                    .await
                    .map(|_| ()),
            };
            match answer {
                Ok(()) => BenchAnswer::Ok,
                Err(_) => BenchAnswer::Error,
            }
        })
    }
}

/// One worker's client: its home member, which forwards to the leader.
struct EtcdWorker {
    client: EtcdClient,
    home: usize,
    name: String,
    opts: OpOptions,
}

impl Worker for EtcdWorker {
    fn target(&self) -> &str {
        &self.name
    }

    // etcd has no client sessions: a request is never retried, so there
    // is nothing a new process must not share.
    fn new_session(&mut self, _client_id: u64) {}

    fn perform<'a>(&'a mut self, key: &'a str, action: &'a Action) -> BoxFuture<'a, Outcome> {
        Box::pin(workload::perform(
            &self.client,
            self.home,
            key,
            action,
            &self.opts,
        ))
    }
}

/// The checkers' evidence from an etcd run directory: each member's role
/// changes from `nodes/<id>/node.log`, and the end-of-run hashes from
/// `hashkv.json` as one apply event per member at the compared revision.
/// A log that cannot be read makes the election checker unknown, and
/// hashes that are missing or were not comparable make the state-machine
/// checker unknown, each with the reason.
pub fn run_events(dir: &Path) -> RunEvents {
    let mut found = RunEvents::default();
    let mut unreadable = Vec::new();
    for (id, node_dir) in member_dirs(dir) {
        let path = node_dir.join("node.log");
        let mut log = match logs::read_etcd_log(&path, &id) {
            Ok(l) => l.log,
            Err(e) => {
                unreadable.push(e.to_string());
                NodeLog {
                    node: id.clone(),
                    path,
                    ..NodeLog::default()
                }
            }
        };
        log.node = id;
        found.logs.push(log);
    }
    if !unreadable.is_empty() {
        found.election_unknown = Some(unreadable.join("; "));
    }
    match read_hashes(dir) {
        Ok((revision, hashes)) => {
            for (id, digest) in hashes {
                let Some(log) = found.logs.iter_mut().find(|l| l.node == id) else {
                    found.state_machine_unknown = Some(format!(
                        "{}: member {id} has no directory under nodes/",
                        dir.join(HASHKV_FILE).display()
                    ));
                    continue;
                };
                log.events.push(NodeEvent {
                    line: 0,
                    time: None,
                    node: id.clone(),
                    kind: EventKind::Apply {
                        index: revision,
                        term: 0,
                        digest: format!("hashkv:{digest}"),
                    },
                });
            }
            for log in &found.logs {
                let hashed = log
                    .events
                    .iter()
                    .any(|e| matches!(e.kind, EventKind::Apply { .. }));
                if !hashed {
                    found.state_machine_unknown = Some(format!(
                        "{}: no hash of member {}",
                        dir.join(HASHKV_FILE).display(),
                        log.node
                    ));
                }
            }
        }
        Err(why) => found.state_machine_unknown = Some(why),
    }
    found
}

/// `nodes/<id>/` of every member, sorted by id.
fn member_dirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir.join("nodes"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

/// The revision and each member's hash from `hashkv.json`, or why there
/// are none.
fn read_hashes(dir: &Path) -> Result<(u64, Vec<(String, String)>), String> {
    let path = dir.join(HASHKV_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (the run did not reach its end-of-run HashKV comparison)",
            path.display()
        )
    })?;
    let v: Json = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(why) = v["unknown"].as_str() {
        return Err(format!("the members' HashKV could not be compared: {why}"));
    }
    let revision = v["revision"]
        .as_u64()
        .ok_or_else(|| format!("{}: no \"revision\"", path.display()))?;
    let hashes = v["hashes"]
        .as_object()
        .ok_or_else(|| format!("{}: no \"hashes\"", path.display()))?
        .iter()
        .map(|(id, h)| {
            h.as_str()
                .map(|h| (id.clone(), h.to_string()))
                .ok_or_else(|| format!("{}: hash of {id} is not a string", path.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((revision, hashes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEADER_LINE: &str = r#"{"level":"info","ts":"2026-12-02T04:44:49.075Z","caller":"raft/raft.go:771","msg":"c3146e312e839a31 became leader at term 2"}"#;

    fn run_dir(logs: &[(&str, &str)], hashkv: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (id, text) in logs {
            let d = dir.path().join("nodes").join(id);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("node.log"), text).unwrap();
        }
        if let Some(h) = hashkv {
            std::fs::write(dir.path().join(HASHKV_FILE), h).unwrap();
        }
        dir
    }

    #[test]
    fn role_changes_and_hashes_become_events() {
        let dir = run_dir(
            &[("n1", LEADER_LINE), ("n2", LEADER_LINE)],
            Some(r#"{"revision": 41, "hashes": {"n1": "0000000a", "n2": "0000000b"}}"#),
        );
        let ev = run_events(dir.path());
        assert_eq!(ev.election_unknown, None);
        assert_eq!(ev.state_machine_unknown, None);
        assert_eq!(ev.logs.len(), 2);
        // Two leaders in term 2, and different stores at revision 41.
        let election = crate::check::election::check(&ev.logs);
        assert_eq!(election.violations[0].term, 2);
        let sm = crate::check::state_machine::check(&ev.logs);
        assert_eq!(sm.violations[0].index, 41);
        assert_eq!(sm.violations[0].nodes, ["n1", "n2"]);
    }

    #[test]
    fn an_unreadable_log_or_missing_hashes_is_unknown_with_the_reason() {
        let dir = run_dir(
            &[
                ("n1", LEADER_LINE),
                (
                    "n2",
                    "raft2026/12/02 04:45:33 INFO: 1 became leader at term 2\n",
                ),
            ],
            None,
        );
        let ev = run_events(dir.path());
        let why = ev.election_unknown.unwrap();
        assert!(
            why.contains("n2/node.log") && why.contains("capnslog"),
            "{why}"
        );
        assert!(ev.state_machine_unknown.unwrap().contains("hashkv.json"));

        let dir = run_dir(
            &[("n1", LEADER_LINE)],
            Some(r#"{"unknown": "n1: status: timeout"}"#),
        );
        let why = run_events(dir.path()).state_machine_unknown.unwrap();
        assert!(why.contains("n1: status: timeout"), "{why}");
    }
}
