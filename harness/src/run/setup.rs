//! Set-up: start the cluster and wait for its first leader.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{LEADER_WAIT, RunError, RunOptions};
use crate::cluster::{Cluster, ClusterSpec, disk};
use crate::db::{self, Db, DbError, Members};
use crate::net::NetSpec;

/// A started cluster: what the phases after set-up share. Dropping the last
/// handle on the cluster kills every node it started (also when the run is
/// interrupted).
pub struct Live {
    /// The cluster, shared with the nemeses.
    pub cluster: Arc<Mutex<Cluster>>,
    /// The members, over the database's own API.
    pub members: Arc<dyn Members>,
}

impl Live {
    /// The cluster, also when a thread panicked while holding it (a
    /// poisoned lock must not stop the tear-down).
    pub fn cluster(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The database a run starts: its binary found and checked (a missing one
/// is bad arguments).
pub fn open_db(opts: &RunOptions) -> Result<Arc<dyn Db>, RunError> {
    db::open(&opts.db_spec()).map_err(|e| match e {
        DbError::BadArgs(m) => RunError::BadArgs(m),
        e => RunError::Harness(e.to_string()),
    })
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
pub async fn start(opts: &RunOptions, db: Arc<dyn Db>, dir: &Path) -> Result<Live, RunError> {
    let spec = ClusterSpec {
        nodes: opts.nodes,
        db: db.clone(),
        dir: dir.to_path_buf(),
        net: NetSpec::new(opts.network, opts.seed),
        disk: opts.disk(),
    };
    let cluster = Cluster::start(spec)
        .await
        .map_err(|e| RunError::Harness(e.to_string()))?;
    let members = db
        .connect(&cluster.addrs())
        .map_err(|e| RunError::Harness(e.to_string()))?;
    let live = Live {
        members,
        cluster: Arc::new(Mutex::new(cluster)),
    };
    let t0 = Instant::now();
    let Some(db::Leader { id: leader, term }) = live.members.wait_for_leader(LEADER_WAIT).await
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
