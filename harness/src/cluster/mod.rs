//! The cluster under test: node processes, each with its data dir and log
//! under the run directory, on the network of [`crate::net`] (a namespace
//! per node, or loopback ports wired through the harness's proxies).
//!
//! - `process`: starting, signalling and reaping one node process.
//! - `disk`: each node's disk, plain or a lazyfs mount whose power can be cut.
//! - `membership`: the cluster's members through the node's Admin API (add,
//!   remove, re-add, list), the one place that speaks it.
//! - this file: the set of nodes and their layout on disk. What each node
//!   runs, and how its leader is found, is the database's ([`crate::db`]).

pub mod disk;
pub mod membership;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use disk::{Disk, DiskKind};

use crate::db::{Db, MemberSpec};
use crate::launch::{LaunchError, NodeProcess};
use crate::net::{Net, NetError, NetSpec, Placement};

/// Why the cluster could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The node binary is missing or cannot be run.
    #[error("{0}")]
    Binary(String),
    /// A node's directory, log or port could not be set up.
    #[error("{0}")]
    Io(String),
    /// The network could not be built or changed.
    #[error("network: {0}")]
    Net(String),
    /// No node became leader in time (the node logs say why).
    #[error("no leader elected within {0:?}; see the node logs under {1}")]
    NoLeader(Duration, String),
    /// An id that is not a member.
    #[error("unknown node `{0}`")]
    UnknownNode(String),
    /// A node's disk could not be mounted, power-cycled or unmounted.
    #[error("disk: {0}")]
    Disk(String),
}

impl From<LaunchError> for ClusterError {
    fn from(e: LaunchError) -> ClusterError {
        match e {
            LaunchError::Binary(m) => ClusterError::Binary(m),
            LaunchError::Io(m) => ClusterError::Io(m),
        }
    }
}

/// What cluster to start.
#[derive(Clone)]
pub struct ClusterSpec {
    /// How many nodes (`n1`, `n2`, ...).
    pub nodes: usize,
    /// The database: what each node executes, with which flags.
    pub db: Arc<dyn Db>,
    /// The run directory: nodes live under `DIR/nodes/<id>/`.
    pub dir: PathBuf,
    /// The network between the nodes: namespaces or proxies (a database
    /// whose members cannot be proxied per link gets direct connections).
    pub net: NetSpec,
    /// Each node's disk: plain, or lazyfs (power faults).
    pub disk: DiskKind,
    /// How many nodes (`n1` ... `nM`) form the cluster; the others start
    /// outside it, for the `member` nemesis to add. `None`: all of them.
    pub initial_members: Option<usize>,
}

/// One member: where it listens, where its files are, and how often it was faulted.
#[derive(Debug)]
pub struct Node {
    /// `n1`, `n2`, ...
    pub id: String,
    /// Where it serves clients (and peers, which may reach it through
    /// proxies).
    pub listen: SocketAddr,
    /// `nodes/<id>/` under the run directory.
    pub dir: PathBuf,
    args: Vec<String>,
    /// The command line of a founder's first start when not every node
    /// founds the cluster: its `--peer` flags name the founders only (what
    /// a first start forms the cluster of). Every later start uses `args`,
    /// which names every node.
    first_args: Option<Vec<String>>,
    /// Outside the cluster (never added, or removed): nothing starts it
    /// until [`Cluster::admit`].
    out: bool,
    /// Wiped and not yet re-added (the `wipe` nemesis's bookkeeping, so
    /// that the `member` nemesis leaves it alone).
    pub awaiting_readd: bool,
    /// Where its process runs (its namespace on netns).
    place: Placement,
    proc: Option<NodeProcess>,
    disk: Disk,
    /// Off: nothing starts it until its power comes back.
    powered_off: bool,
    /// How often it was started (the first start counts).
    pub starts: u32,
    /// How often it was killed.
    pub kills: u32,
    /// How often it was paused.
    pub pauses: u32,
    /// How often its power was cut.
    pub power_offs: u32,
    /// How often its data directory was deleted (wiped, or removed from
    /// the cluster).
    pub wipes: u32,
}

impl Node {
    /// Its data directory (WAL, snapshot), given as `--data-dir`; a lazy
    /// disk is mounted over it.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
    /// Its `events.jsonl`, given as `--events-file`: beside the data
    /// directory, never on the disk whose power is cut (it is evidence).
    pub fn events_path(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }
    /// Its stdout and stderr, appended across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("node.log")
    }
    /// Whether its process is up (paused counts as up).
    pub fn is_running(&self) -> bool {
        self.proc.is_some()
    }
    /// Whether its process is stopped by SIGSTOP.
    pub fn is_paused(&self) -> bool {
        self.proc.as_ref().is_some_and(NodeProcess::is_paused)
    }
    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(NodeProcess::pid)
    }
    /// Whether it is outside the cluster (never added, or removed).
    pub fn is_out(&self) -> bool {
        self.out
    }
}

/// The nodes of one run and the network between them. Dropping it kills every
/// node.
pub struct Cluster {
    spec: ClusterSpec,
    nodes: Vec<Node>,
    net: Net,
}

impl Cluster {
    /// Starts the network and every node in it. Does not wait for a leader.
    pub async fn start(spec: ClusterSpec) -> Result<Cluster, ClusterError> {
        spec.db.bin().check()?;
        let ids: Vec<String> = (1..=spec.nodes).map(|i| format!("n{i}")).collect();
        let net_err = |e: NetError| ClusterError::Net(e.to_string());
        let net_spec = NetSpec {
            ports: spec.db.ports(),
            direct: spec.net.direct || !spec.db.dials_per_link(),
            ..spec.net
        };
        let net = Net::start(&net_spec, &ids).await.map_err(net_err)?;
        let founders = spec.initial_members.unwrap_or(ids.len()).min(ids.len());
        let mut nodes = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let dir = spec.dir.join("nodes").join(id);
            std::fs::create_dir_all(&dir)
                .map_err(|e| ClusterError::Io(format!("{}: {e}", dir.display())))?;
            let listen = net.listen(id).map_err(net_err)?.client;
            let disk = Disk::attach(&dir.join("data"), &spec.disk)?;
            let member_args = |peers: &[String]| -> Result<Vec<String>, ClusterError> {
                let mut cluster = Vec::new();
                for peer in peers {
                    let addr = if peer == id {
                        net.listen(id).map_err(net_err)?.peer
                    } else {
                        net.peer_addr(id, peer).map_err(net_err)?
                    };
                    cluster.push((peer.clone(), addr));
                }
                Ok(spec.db.member_args(&MemberSpec {
                    id,
                    listen: net.listen(id).map_err(net_err)?,
                    cluster: &cluster,
                    data_dir: &dir.join("data"),
                    events_path: &dir.join("events.jsonl"),
                }))
            };
            let args = member_args(&ids)?;
            let first_args = if i < founders && founders < ids.len() {
                Some(member_args(&ids[..founders])?)
            } else {
                None
            };
            nodes.push(Node {
                id: id.clone(),
                listen,
                dir,
                args,
                first_args,
                out: i >= founders,
                awaiting_readd: false,
                place: net.placement(id).map_err(net_err)?,
                proc: None,
                disk,
                powered_off: false,
                starts: 0,
                kills: 0,
                pauses: 0,
                power_offs: 0,
                wipes: 0,
            });
        }
        let mut cluster = Cluster { spec, nodes, net };
        for id in ids {
            cluster.start_node(&id)?;
        }
        Ok(cluster)
    }

    /// The nodes' ids, in order.
    pub fn ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    /// The nodes, in order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The network between the nodes, which partitions cut.
    pub fn net(&self) -> &Net {
        &self.net
    }

    /// The database the nodes run.
    pub fn db(&self) -> &Arc<dyn Db> {
        &self.spec.db
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.spec.dir
    }

    /// Client addresses: clients talk to nodes directly, never through proxies.
    pub fn addrs(&self) -> Vec<(String, SocketAddr)> {
        self.nodes
            .iter()
            .map(|n| (n.id.clone(), n.listen))
            .collect()
    }

    fn node_mut(&mut self, id: &str) -> Result<&mut Node, ClusterError> {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or_else(|| ClusterError::UnknownNode(id.to_string()))
    }

    /// The ids of the nodes inside the cluster (not removed, not waiting
    /// to be added), in order: what faults of processes choose from.
    pub fn active_ids(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| !n.out)
            .map(|n| n.id.clone())
            .collect()
    }

    /// The ids of the nodes outside the cluster, in order.
    pub fn out_ids(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.out)
            .map(|n| n.id.clone())
            .collect()
    }

    /// The node `id`.
    pub fn node(&self, id: &str) -> Result<&Node, ClusterError> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| ClusterError::UnknownNode(id.to_string()))
    }

    /// Where the other nodes reach `id`: the address to add it with. On
    /// proxies every node has it as `--peer`, which wins over this one.
    pub fn peer_addr(&self, id: &str) -> Result<SocketAddr, ClusterError> {
        self.net
            .listen(id)
            .map(|l| l.peer)
            .map_err(|e| ClusterError::Net(e.to_string()))
    }

    /// Starts a node that is not running, on its existing data dir. A
    /// node whose power is off stays down until [`Cluster::power_on`], one
    /// outside the cluster until [`Cluster::admit`].
    pub fn start_node(&mut self, id: &str) -> Result<(), ClusterError> {
        let bin = self.spec.db.bin().clone();
        let node = self.node_mut(id)?;
        if node.proc.is_none() && !node.powered_off && !node.out {
            let log = node.log_path();
            let args = node.first_args.take().unwrap_or_else(|| node.args.clone());
            node.proc = Some(NodeProcess::spawn(&bin, &args, &log, &node.place)?);
            node.starts += 1;
        }
        Ok(())
    }

    /// SIGKILL, then deletes everything in the node's data directory (and
    /// makes the deletions durable, so that a power cut cannot bring them
    /// back). It stays down until started.
    pub fn wipe(&mut self, id: &str) -> Result<(), ClusterError> {
        self.kill(id)?;
        let node = self.node_mut(id)?;
        node.wipes += 1;
        // A node that was never started has nothing to delete.
        node.first_args = None;
        disk::empty_dir(&node.data_dir())
    }

    /// Takes a node out of the cluster once its removal is done: killed,
    /// its data directory wiped; nothing starts it until [`Cluster::admit`].
    pub fn retire(&mut self, id: &str) -> Result<(), ClusterError> {
        self.wipe(id)?;
        let node = self.node_mut(id)?;
        node.out = true;
        node.awaiting_readd = false;
        Ok(())
    }

    /// Brings a node outside the cluster back in: it starts, empty, and
    /// asks its peers to be let in (the leader must then add it).
    pub fn admit(&mut self, id: &str) -> Result<(), ClusterError> {
        self.node_mut(id)?.out = false;
        self.start_node(id)
    }

    /// Marks whether a wiped node waits to be re-added.
    pub fn set_awaiting_readd(&mut self, id: &str, awaiting: bool) -> Result<(), ClusterError> {
        self.node_mut(id)?.awaiting_readd = awaiting;
        Ok(())
    }

    /// SIGKILL: the node loses everything not on disk.
    pub fn kill(&mut self, id: &str) -> Result<(), ClusterError> {
        let node = self.node_mut(id)?;
        if let Some(p) = node.proc.take() {
            p.kill();
            node.kills += 1;
        }
        Ok(())
    }

    /// Power-off: SIGKILL (and reap) the node, then throw away what its
    /// disk had not made durable. Returns what was lost. The node stays
    /// down until [`Cluster::power_on`]. Only for lazy disks.
    pub fn power_off(
        &mut self,
        id: &str,
        loss: lazyfs::PowerLoss,
    ) -> Result<lazyfs::LossReport, ClusterError> {
        let node = self.node_mut(id)?;
        node.powered_off = true;
        node.power_offs += 1;
        // The power goes the moment SIGKILL is sent: a request the process
        // has in flight (an fsync waiting on the disk, which the kernel
        // lets it finish) must not make anything durable afterwards. So
        // the disk loses power before the process is reaped, and once more
        // after, for what its last requests changed in between.
        let Some(mut p) = node.proc.take() else {
            return node.disk.power_off(loss);
        };
        p.send_kill();
        let mut lost = node.disk.power_off(loss);
        p.kill();
        let after = node.disk.power_off(loss);
        if let (Ok(lost), Ok(after)) = (&mut lost, after) {
            disk::add_loss(lost, after);
        }
        lost
    }

    /// Power-on: the node starts again on what its disk kept.
    pub fn power_on(&mut self, id: &str) -> Result<(), ClusterError> {
        self.node_mut(id)?.powered_off = false;
        self.start_node(id)
    }

    /// Makes every fsync of this node's lazy disk wait `delay` from now on.
    pub fn set_fsync_delay(&mut self, id: &str, delay: Duration) -> Result<(), ClusterError> {
        self.node_mut(id)?.disk.set_fsync_delay(delay)
    }

    /// Whether the nodes' disks can lose power (lazyfs).
    pub fn has_lazy_disks(&self) -> bool {
        self.nodes.iter().all(|n| n.disk.is_lazy()) && !self.nodes.is_empty()
    }

    /// The counters of each node's lazy disk.
    pub fn disk_stats(&self) -> Vec<(String, lazyfs::Stats)> {
        self.nodes
            .iter()
            .filter_map(|n| n.disk.stats().map(|s| (n.id.clone(), s)))
            .collect()
    }

    /// SIGSTOP: the node freezes with its connections open.
    pub fn pause(&mut self, id: &str) -> Result<(), ClusterError> {
        let node = self.node_mut(id)?;
        if let Some(p) = node.proc.as_mut()
            && !p.is_paused()
        {
            p.pause();
            node.pauses += 1;
        }
        Ok(())
    }

    /// SIGCONT.
    pub fn resume(&mut self, id: &str) -> Result<(), ClusterError> {
        if let Some(p) = self.node_mut(id)?.proc.as_mut() {
            p.resume();
        }
        Ok(())
    }

    /// Nodes that exited on their own since the last call, with how they exited.
    /// A node that dies unasked is evidence: the run records it.
    pub fn reap_exited(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for n in &mut self.nodes {
            if let Some(status) = n.proc.as_mut().and_then(NodeProcess::exited) {
                n.proc = None;
                out.push((n.id.clone(), status.to_string()));
            }
        }
        out
    }

    /// Heals the network, resumes paused nodes, powers on and restarts
    /// dead ones.
    pub fn recover_all(&mut self) -> Result<(), ClusterError> {
        self.net
            .heal_all()
            .map_err(|e| ClusterError::Net(e.to_string()))?;
        for id in self.ids() {
            self.resume(&id)?;
            self.power_on(&id)?;
        }
        Ok(())
    }

    /// Kills every node (also paused ones) and stops the proxies' traffic.
    pub fn stop(&mut self) {
        for n in &mut self.nodes {
            if let Some(p) = n.proc.take() {
                p.kill();
            }
        }
    }

    /// Unmounts every lazy disk once the nodes are stopped, so the data
    /// directories show what the nodes left. Says which could not be.
    pub fn detach_disks(&mut self) -> Result<(), ClusterError> {
        self.stop();
        let mut failed = Vec::new();
        for n in &mut self.nodes {
            if let Err(e) = n.disk.detach() {
                failed.push(format!("{}: {e}", n.id));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(ClusterError::Disk(failed.join("; ")))
        }
    }

    /// Pids of the running node processes, for checks that none survive.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(Node::pid).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs futures concurrently, each on a task of its own, and collects their
/// outputs in order.
pub(crate) async fn join_all<F>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}
