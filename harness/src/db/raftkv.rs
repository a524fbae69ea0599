//! Our node as a [`Db`]: the behaviour the harness always had, moved
//! behind the interface. One port for clients and peers, a `--peer` per
//! other member (so proxies cut each ordered link), leaders from
//! `Admin.Status`, workers from [`crate::client::raftkv`], evidence from
//! each node's `events.jsonl`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{BoxFuture, join_all};
use lazyfs::Metadata;
use node::client::{
    Api, CallError, Conn, MemberChange, MemberReply, NodeClient, Reply, Request, Session,
};

use super::{
    BenchAnswer, BenchOp, Db, DbError, DbKind, DbSpec, Leader, MemberSpec, Members, Worker,
};
use crate::client::{Client, Outcome};
use crate::history::events::{RunEvents, find_run_events};
use crate::history::{Action, HistoryError};
use crate::launch::NodeBin;
use crate::net::Ports;
use crate::workload::Workload;

/// The node fsyncs every directory it changes (docs/contract.md, "The data
/// directory"), so its disks are held to POSIX.
pub const METADATA: Metadata = Metadata::Strict;

/// A membership change may wait for a learner to catch up.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(30);

/// Our node: its binary and flags.
pub struct RaftKv {
    bin: NodeBin,
    args: Vec<String>,
    cluster_id: String,
    api: Api,
    bench_workers: usize,
}

/// Workers that share one HTTP/2 connection to a node in `bench`, as the
/// threads of a real application share a channel. A connection per worker
/// cost about 40% more CPU per operation (client and leader together:
/// every request and response a system call of its own) on this 2-core
/// machine, where the client competes with the nodes for the CPU.
const WORKERS_PER_CONNECTION: usize = 64;

impl RaftKv {
    /// `spec.bin`, or the harness's own executable in node mode.
    pub fn open(spec: &DbSpec) -> Result<RaftKv, DbError> {
        let bin = match &spec.bin {
            Some(p) => NodeBin::External(p.clone()),
            None => NodeBin::this_executable().map_err(|e| DbError::BadArgs(e.to_string()))?,
        };
        if spec.serializable_reads {
            return Err(DbError::BadArgs(
                "--etcd-serializable-reads is for --db etcd".into(),
            ));
        }
        Ok(RaftKv {
            bin,
            args: spec.args.clone(),
            cluster_id: spec.cluster_id.clone(),
            api: spec.api,
            bench_workers: spec.bench_workers,
        })
    }
}

impl Db for RaftKv {
    fn kind(&self) -> DbKind {
        DbKind::Raftkv
    }

    fn bin(&self) -> &NodeBin {
        &self.bin
    }

    fn ports(&self) -> Ports {
        Ports::Shared
    }

    fn dials_per_link(&self) -> bool {
        true
    }

    fn member_args(&self, m: &MemberSpec) -> Vec<String> {
        let mut args = vec![
            "--id".to_string(),
            m.id.to_string(),
            "--listen".into(),
            m.listen.client.to_string(),
            "--data-dir".into(),
            m.data_dir.display().to_string(),
            "--events-file".into(),
            m.events_path.display().to_string(),
            "--cluster-id".into(),
            self.cluster_id.clone(),
        ];
        for (peer, addr) in m.cluster.iter().filter(|(p, _)| p != m.id) {
            args.push("--peer".into());
            args.push(format!("{peer}={addr}"));
        }
        args.extend(self.args.iter().cloned());
        args
    }

    fn connect(&self, addrs: &[(String, SocketAddr)]) -> Result<Arc<dyn Members>, DbError> {
        let conn = |api| {
            addrs
                .iter()
                .map(|(_, a)| {
                    Conn::new(api, &a.to_string(), &self.cluster_id, CONNECT_TIMEOUT)
                        .map_err(|e| DbError::Connect(e.to_string()))
                })
                .collect::<Result<Vec<Conn>, DbError>>()
        };
        let pool = connection_pool(self.api, addrs, &self.cluster_id)?;
        let per_node = self.bench_workers.div_ceil(WORKERS_PER_CONNECTION);
        let mut bench = vec![Vec::new(); addrs.len()];
        for _ in 0..per_node {
            for (node, c) in bench.iter_mut().zip(conn(self.api)?) {
                node.push(c);
            }
        }
        Ok(Arc::new(RaftKvMembers {
            addrs: addrs.to_vec(),
            cluster_id: self.cluster_id.clone(),
            pool,
            bench,
        }))
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// One worker in this many is patient ([`Client::patient`]).
const PATIENT_EVERY: usize = 5;

/// Unary connections per node, at most, for a run's workers.
pub const MAX_CONNECTION_SLOTS: usize = 32;

/// The workers' connections: slots of one connection per node (as
/// `addrs`). Workers past [`MAX_CONNECTION_SLOTS`] share them (HTTP/2
/// carries their calls side by side), which bounds the descriptors a run
/// holds whatever `--concurrency` says and however the nodes behave; with
/// `--api stream` one slot of streams serves every worker. Connections are
/// made on first use.
fn connection_pool(
    api: Api,
    addrs: &[(String, SocketAddr)],
    cluster_id: &str,
) -> Result<Vec<Vec<Conn>>, DbError> {
    let slots = match api {
        Api::Unary => MAX_CONNECTION_SLOTS,
        Api::Stream => 1,
    };
    (0..slots)
        .map(|_| {
            addrs
                .iter()
                .map(|(_, a)| {
                    Conn::new(api, &a.to_string(), cluster_id, CONNECT_TIMEOUT)
                        .map_err(|e| DbError::Connect(e.to_string()))
                })
                .collect()
        })
        .collect()
}

/// The running nodes.
pub struct RaftKvMembers {
    addrs: Vec<(String, SocketAddr)>,
    cluster_id: String,
    /// Slots of one connection per node (as `addrs`); worker `w` uses slot
    /// `w % slots`. With `--api stream`, one slot of streams every worker
    /// shares; with unary calls, [`MAX_CONNECTION_SLOTS`] slots.
    pool: Vec<Vec<Conn>>,
    /// For each node, the connections bench workers share (in the API
    /// asked; they reconnect by themselves).
    bench: Vec<Vec<Conn>>,
}

impl RaftKvMembers {
    fn admin(&self, addr: &SocketAddr, timeout: Duration) -> Option<NodeClient> {
        NodeClient::new(&addr.to_string(), &self.cluster_id, timeout).ok()
    }

    /// Asks any node for a change; follows the leader it names.
    async fn change(&self, change: MemberChange) -> Result<(), DbError> {
        let mut target = 0;
        for _ in 0..=self.addrs.len() {
            let Some(c) = self.admin(&self.addrs[target].1, CONNECT_TIMEOUT) else {
                break;
            };
            match c.change_members(change.clone(), MEMBER_TIMEOUT).await {
                Ok(MemberReply::Done { .. }) => return Ok(()),
                Ok(MemberReply::Refused(why)) => return Err(DbError::Refused(why)),
                Ok(MemberReply::NotLeader { leader_id, .. }) => {
                    target = leader_id
                        .and_then(|l| self.addrs.iter().position(|(id, _)| *id == l))
                        .unwrap_or((target + 1) % self.addrs.len());
                }
                Err(e) => return Err(unknown(e)),
            }
        }
        Err(DbError::Refused("no leader known".into()))
    }
}

fn unknown(e: CallError) -> DbError {
    DbError::Unknown(e.to_string())
}

impl Members for RaftKvMembers {
    fn addrs(&self) -> &[(String, SocketAddr)] {
        &self.addrs
    }

    fn leader(&self, timeout: Duration) -> BoxFuture<'_, Option<Leader>> {
        Box::pin(async move {
            let queries = self.addrs.iter().map(|(id, addr)| {
                let id = id.clone();
                let client = self.admin(addr, timeout);
                async move {
                    let s = client?.status(timeout).await.ok()?;
                    (s.role == "leader").then_some(Leader { id, term: s.term })
                }
            });
            let found = join_all(queries).await;
            found.into_iter().flatten().max_by_key(|l| l.term)
        })
    }

    fn worker(&self, workload: Workload, home: usize, timeout: Duration) -> Box<dyn Worker> {
        let slot = &self.pool[home % self.pool.len()];
        let ids = self.addrs.iter().map(|(id, _)| id.clone());
        let conns: Vec<(String, Conn)> = ids.zip(slot.iter().cloned()).collect();
        let client = Client::new(workload, conns, home, timeout);
        // One worker in five is patient: its attempts wait the whole
        // deadline, so late answers of deposed leaders are heard too.
        if home % PATIENT_EVERY == PATIENT_EVERY - 1 {
            Box::new(client.patient())
        } else {
            Box::new(client)
        }
    }

    fn compare(&self, _dir: &Path) -> BoxFuture<'_, String> {
        // The nodes' events.jsonl carry every applied entry's digest.
        Box::pin(async { String::new() })
    }

    fn add_member(
        &self,
        id: &str,
        peer: SocketAddr,
        learner: bool,
    ) -> BoxFuture<'_, Result<(), DbError>> {
        let change = MemberChange::Add {
            id: id.to_string(),
            addr: peer.to_string(),
            learner,
        };
        Box::pin(self.change(change))
    }

    fn remove_member(&self, id: &str) -> BoxFuture<'_, Result<(), DbError>> {
        Box::pin(self.change(MemberChange::Remove(id.to_string())))
    }

    fn promote_member(&self, id: &str) -> BoxFuture<'_, Result<(), DbError>> {
        Box::pin(self.change(MemberChange::Promote(id.to_string())))
    }

    fn bench_call(
        &self,
        member: usize,
        worker: usize,
        op: BenchOp,
        timeout: Duration,
    ) -> BoxFuture<'_, BenchAnswer> {
        Box::pin(async move {
            let request = match op {
                // Every bench worker is a session of its own.
                BenchOp::Put { key, value, seq } => {
                    Session::new(worker as u64 + 1, seq).put(key, value)
                }
                BenchOp::Get(key) => Request::get(key),
            };
            let conns = &self.bench[member];
            let Some(conn) = conns.get(worker % conns.len().max(1)) else {
                return BenchAnswer::Error;
            };
            match conn.call(request, timeout).await {
                Ok(Reply::NotLeader { leader_id, .. }) => BenchAnswer::NotLeader(
                    leader_id.and_then(|l| self.addrs.iter().position(|(id, _)| *id == l)),
                ),
                Ok(_) => BenchAnswer::Ok,
                Err(_) => BenchAnswer::Error,
            }
        })
    }

    fn raftkv_clients(&self) -> Option<Vec<(String, NodeClient)>> {
        Some(
            self.addrs
                .iter()
                .filter_map(|(id, a)| Some((id.clone(), self.admin(a, CONNECT_TIMEOUT)?)))
                .collect(),
        )
    }
}

impl Worker for Client {
    fn target(&self) -> &str {
        Client::target(self)
    }

    fn new_session(&mut self, client_id: u64) {
        Client::new_session(self, client_id);
    }

    fn perform<'a>(&'a mut self, key: &'a str, action: &'a Action) -> BoxFuture<'a, Outcome> {
        Box::pin(Client::perform(self, key, action))
    }
}

/// Each node's `events.jsonl` (docs/contract.md, "events.jsonl").
pub fn run_events(dir: &Path) -> Result<RunEvents, HistoryError> {
    find_run_events(dir)
}

#[cfg(test)]
mod pool_tests {
    use super::*;

    #[tokio::test]
    async fn workers_share_a_bounded_pool_of_connections() {
        let addrs: Vec<(String, SocketAddr)> = (1..=3)
            .map(|i| {
                (
                    format!("n{i}"),
                    SocketAddr::from(([127, 0, 0, 1], 7000 + i)),
                )
            })
            .collect();
        for (api, slots) in [(Api::Unary, MAX_CONNECTION_SLOTS), (Api::Stream, 1)] {
            let pool = connection_pool(api, &addrs, "c").unwrap();
            assert_eq!(pool.len(), slots);
            assert!(pool.iter().all(|slot| slot.len() == 3));
        }
    }
}
