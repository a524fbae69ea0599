//! Set-up: start the cluster and wait for its first leader.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{LEADER_WAIT, RunError, RunOptions};
use crate::cluster::{Cluster, ClusterSpec, NodeBin, disk, wait_for_leader};
use crate::net::NetSpec;

/// A started cluster: what the phases after set-up share. Dropping the last
/// handle on the cluster kills every node it started (also when the run is
/// interrupted).
pub struct Live {
    /// The cluster, shared with the nemeses.
    pub cluster: Arc<Mutex<Cluster>>,
    /// Each node's id and the address its clients use.
    pub addrs: Vec<(String, SocketAddr)>,
    /// The cluster id every request carries.
    pub cluster_id: String,
}

impl Live {
    /// The cluster, also when a thread panicked while holding it (a
    /// poisoned lock must not stop the tear-down).
    pub fn cluster(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The node binary a run starts: `--node-bin`, else this executable in
/// node mode.
pub fn node_bin(opts: &RunOptions) -> Result<NodeBin, RunError> {
    match &opts.node_bin {
        Some(p) => Ok(NodeBin::External(p.clone())),
        None => NodeBin::this_executable().map_err(|e| RunError::Harness(e.to_string())),
    }
}

/// Where the harness has no private mount namespace (see
/// [`crate::sandbox`]), a harness killed with kill -9 leaves its lazyfs
/// mounts behind, dead: a run with lazy disks detaches those under its
/// store first. A failure is a warning (it only concerns older runs).
pub fn sweep_dead_mounts(opts: &RunOptions) {
    if opts.disk() == crate::cluster::DiskKind::Plain || crate::sandbox::mount_ns_private() {
        return;
    }
    match disk::sweep_dead_mounts(&opts.store) {
        Ok(gone) => {
            for m in gone {
                println!(
                    "detached a dead lazyfs mount left by an earlier run: {}",
                    m.display()
                );
            }
        }
        Err(e) => eprintln!("warning: {e}"),
    }
}

/// Starts `opts.nodes` nodes with their files under `dir` and waits until
/// one of them leads.
pub async fn start(opts: &RunOptions, bin: NodeBin, dir: &Path) -> Result<Live, RunError> {
    let mut node_args = opts.node_args.clone();
    if let Some(n) = opts.snapshot_every {
        node_args.extend(["--snapshot-every".to_string(), n.to_string()]);
    }
    let spec = ClusterSpec {
        nodes: opts.nodes,
        bin,
        dir: dir.to_path_buf(),
        cluster_id: format!("harness-{}", opts.seed),
        node_args,
        net: NetSpec::new(opts.network, opts.seed),
        disk: opts.disk(),
        initial_members: opts.initial_members,
    };
    let cluster = Cluster::start(spec)
        .await
        .map_err(|e| RunError::Harness(e.to_string()))?;
    let live = Live {
        addrs: cluster.addrs(),
        cluster_id: cluster.cluster_id().to_string(),
        cluster: Arc::new(Mutex::new(cluster)),
    };
    let t0 = Instant::now();
    let Some((leader, term)) = wait_for_leader(&live.addrs, &live.cluster_id, LEADER_WAIT).await
    else {
        return Err(RunError::Harness(format!(
            "no leader elected within {LEADER_WAIT:?}; node logs are in {}/nodes/*/node.log",
            dir.display()
        )));
    };
    println!(
        "leader {leader} (term {term}) after {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(live)
}
