//! Set-up: start the cluster and wait for its first leader.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Each node's id and the address its clients use.
    pub addrs: Vec<(String, SocketAddr)>,
    /// The cluster id every request to our node carries.
    pub cluster_id: String,
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
        initial_members: opts.initial_members,
    };
    let cluster = Cluster::start(spec)
        .await
        .map_err(|e| RunError::Harness(e.to_string()))?;
    let members = db
        .connect(&cluster.addrs())
        .map_err(|e| RunError::Harness(e.to_string()))?;
    let live = Live {
        addrs: cluster.addrs(),
        cluster_id: opts.db_spec().cluster_id,
        members,
        cluster: Arc::new(Mutex::new(cluster)),
    };
    let t0 = Instant::now();
    let (leader, term) = first_leader(&live, dir).await?;
    println!(
        "leader {leader} (term {term}) after {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(live)
}

/// How long nodes may run without accepting a connection before the run
/// stops waiting for them: a binary that is up but never listens.
const LISTEN_WAIT: Duration = Duration::from_secs(10);
/// Lines of a node's log shown when it failed to start.
const LOG_LINES: usize = 8;

/// Waits for the first leader, and says at once when it cannot come: a
/// node that exited (with its status and the end of its log), or nodes
/// that run but accept no connection within [`LISTEN_WAIT`].
async fn first_leader(live: &Live, dir: &Path) -> Result<(String, u64), RunError> {
    let start = Instant::now();
    let addrs = live.members.addrs().to_vec();
    let mut listening = vec![false; addrs.len()];
    loop {
        let exited = live.cluster().reap_exited();
        if !exited.is_empty() {
            // Nodes of one binary tend to fail together: name them all.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut exited = exited;
            exited.extend(live.cluster().reap_exited());
            exited.sort();
            return Err(RunError::Harness(exited_message(live, &exited)));
        }
        if let Some(db::Leader { id, term }) = live.members.leader(Duration::from_millis(300)).await
        {
            return Ok((id, term));
        }
        for (i, (_, addr)) in addrs.iter().enumerate() {
            if !listening[i] {
                listening[i] = accepts(*addr).await;
            }
        }
        let waited = start.elapsed();
        if waited >= LISTEN_WAIT && listening.iter().any(|l| !l) {
            let deaf: Vec<String> = addrs
                .iter()
                .zip(&listening)
                .filter(|(_, l)| !**l)
                .map(|((id, addr), _)| format!("{id} ({addr})"))
                .collect();
            let first = &addrs[listening.iter().position(|l| !l).unwrap_or(0)].0;
            return Err(RunError::Harness(format!(
                "node(s) {} still running but not accepting connections after {:?}; \
                 does --node-bin listen where --listen says? {}",
                deaf.join(", "),
                LISTEN_WAIT,
                log_tail_note(live, first)
            )));
        }
        if waited >= LEADER_WAIT {
            return Err(RunError::Harness(format!(
                "no leader elected within {LEADER_WAIT:?} (every node accepts connections); \
                 node logs are in {}/nodes/*/node.log",
                dir.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether something accepts TCP connections at `addr`.
async fn accepts(addr: SocketAddr) -> bool {
    let connect = tokio::net::TcpStream::connect(addr);
    matches!(
        tokio::time::timeout(Duration::from_millis(200), connect).await,
        Ok(Ok(_))
    )
}

fn exited_message(live: &Live, exited: &[(String, String)]) -> String {
    let mut out = String::new();
    for (id, status) in exited {
        if !out.is_empty() {
            out.push('\n');
        }
        out += &format!(
            "node {id} exited during start-up ({status}); {}",
            log_tail_note(live, id)
        );
    }
    out
}

/// The last lines of a node's log, introduced by its path.
fn log_tail_note(live: &Live, id: &str) -> String {
    let c = live.cluster();
    let Some(node) = c.nodes().iter().find(|n| n.id == id) else {
        return String::new();
    };
    let path = node.log_path();
    match log_tail(&path, LOG_LINES) {
        Some(tail) if !tail.is_empty() => {
            let lines: Vec<String> = tail.iter().map(|l| format!("    {l}")).collect();
            format!("the end of {}:\n{}", path.display(), lines.join("\n"))
        }
        _ => format!("{} is empty", path.display()),
    }
}

/// The last `n` lines of the file at `path` (read from its last 16 KiB, so
/// a huge log costs nothing).
fn log_tail(path: &Path, n: usize) -> Option<Vec<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)))
        .ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect();
    Some(lines[lines.len().saturating_sub(n)..].to_vec())
}
