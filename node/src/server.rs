//! Putting a node together: recover from disk, start the driver thread and
//! the peer links, and serve gRPC on a listener the caller provides, until
//! the caller's shutdown signal or a fatal storage error.

use std::future::Future;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use proto::kv::admin_server::AdminServer;
use proto::kv::kv_server::KvServer;
use proto::raft::raft_server::RaftServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::config::NodeConfig;
use crate::driver::{Driver, DriverError};
use crate::events::EventLog;
use crate::kv::KvState;
use crate::mailbox::{Event, Outbox, Replier};
use crate::storage::{Storage, StorageError};
use crate::transport::Peers;
use crate::transport::admin_service::AdminService;
use crate::transport::kv_service::KvService;
use crate::transport::raft_service::RaftService;
use crate::transport::shared::Shared;
use raft::Raft;

/// Why a node could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {error}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// Another node process holds the data directory.
    #[error("data directory {path} is in use by another node process")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// The data directory's lock file could not be taken.
    #[error("cannot lock data directory {path}: {error}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// Recovery from disk failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The event log could not be opened.
    #[error("cannot open event log in {path}: {error}")]
    Events {
        /// The data directory.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The driver stopped on a fatal error.
    #[error("stopped: {0}")]
    Driver(#[from] DriverError),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    /// The driver thread panicked.
    #[error("the driver thread panicked")]
    DriverPanicked,
}

/// Runs a node until `shutdown` resolves. Binding is the caller's business,
/// so tests can listen on port 0 and drive the node exactly as the binary does.
pub async fn serve(
    cfg: NodeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), NodeError> {
    // Durably: on a disk that loses what was not fsynced, a data directory
    // whose own name was never made durable takes every file in it along.
    crate::storage::create_dir_durably(&cfg.data_dir).map_err(|error| NodeError::DataDir {
        path: cfg.data_dir.clone(),
        error,
    })?;
    // Two processes appending to one WAL would corrupt it: hold a lock for our lifetime.
    let _lock = lock_data_dir(&cfg.data_dir)?;
    // Restart = load the snapshot, then replay the log after it (§7).
    #[allow(unused_mut)]
    let (mut storage, recovered) = Storage::open(&cfg.data_dir, cfg.fsync)?;
    #[cfg(feature = "bugs")]
    if cfg.has_bug(crate::config::Bug::LazyPersist) {
        storage.set_lazy_persist();
    }
    let decoding = std::time::Instant::now();
    let kv = match &recovered.snapshot {
        Some(s) => KvState::from_image(s.image()).map_err(|e| StorageError::Corrupt {
            path: storage.snapshot_path().to_path_buf(),
            offset: 0,
            reason: e.to_string(),
        })?,
        None => KvState::default(),
    };
    let decode_time = decoding.elapsed();
    let mut events =
        EventLog::open(&cfg.events_file, cfg.id.as_str()).map_err(|error| NodeError::Events {
            path: cfg.events_file.clone(),
            error,
        })?;
    let mut note = format!(
        "term {} vote {:?}, {} log entries",
        recovered.hard_state.term.0,
        recovered
            .hard_state
            .voted_for
            .as_ref()
            .map(|v| v.0.as_str()),
        recovered.entries.len()
    );
    if let Some(repair) = &recovered.repaired_tail {
        note.push_str(&format!("; cut a torn tail: {repair:?}"));
        tracing::warn!(node = %cfg.id, "cut a torn tail off the log: {repair:?}");
    }
    if let Some(s) = &recovered.snapshot {
        note.push_str(&format!(
            "; snapshot at index {} term {} ({} bytes, {} keys): read {:.1} ms, decoded {:.1} ms; log replayed {:.1} ms",
            s.meta.index.0,
            s.meta.term.0,
            s.file().len(),
            kv.len(),
            recovered.snapshot_read.as_secs_f64() * 1e3,
            decode_time.as_secs_f64() * 1e3,
            recovered.wal_replay.as_secs_f64() * 1e3,
        ));
    }
    if let Some(finished) = &recovered.finished_compaction {
        note.push_str(&format!("; {finished}"));
    }
    events.note("start", &note);
    tracing::info!(node = %cfg.id, listen = %cfg.listen, "{note}");

    // Each incarnation draws different election timeouts.
    let seed = std::process::id() as u64
        ^ (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64));
    let snapshot = recovered.snapshot.map(|s| s.meta).unwrap_or_default();
    let raft = Raft::new(
        cfg.raft_config(seed),
        recovered.hard_state,
        snapshot,
        recovered.entries,
    );

    let (tx, rx) = mpsc::channel::<Event>();
    let rpc_timeout = rpc_timeout(&cfg);
    let peer_list: Vec<_> = cfg
        .peers
        .iter()
        .map(|p| (p.id.clone(), p.addr.clone()))
        .collect();
    let peers: Box<dyn Outbox> = Box::new(Peers::start(
        &cfg.id,
        &cfg.cluster_id,
        &peer_list,
        rpc_timeout,
        storage.snapshot_path().to_path_buf(),
        tx.clone(),
    ));
    let driver = Driver::new(
        cfg.clone(),
        raft,
        storage,
        kv,
        events,
        peers,
        Replier::spawn(),
    );
    let read_queue = driver.read_queue();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("driver-{}", cfg.id))
        .spawn(move || {
            let r = driver.run(rx);
            let _ = done_tx.send(());
            r
        })
        .expect("spawning the driver thread");

    let shared = Shared {
        me: cfg.id.clone(),
        cluster_id: cfg.cluster_id.clone(),
        mailbox: tx.clone(),
        reads: read_queue,
    };
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(
            RaftServer::new(RaftService(shared.clone())).max_decoding_message_size(64 << 20),
        )
        .add_service(KvServer::new(KvService(shared.clone())))
        .add_service(AdminServer::new(AdminService(shared)))
        // `tcp_nodelay` above applies only to listeners tonic binds itself:
        // the accepted sockets need it too, or Nagle's algorithm holds a
        // small response back until the client's delayed ACK (~40 ms), a
        // stall seen whenever one connection carries several requests at
        // once (a shared client channel; a peer link's acknowledgements).
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                // Stop serving on request, or when the driver stops on its own (disk failure).
                tokio::select! {
                    _ = shutdown => {}
                    _ = done_rx => {}
                }
            },
        );
    let served = server.await;
    let _ = tx.send(Event::Shutdown);
    drop(tx);
    let driven = tokio::task::spawn_blocking(move || thread.join())
        .await
        .map_err(|_| NodeError::DriverPanicked)?
        .map_err(|_| NodeError::DriverPanicked)?;
    driven?;
    served?;
    Ok(())
}

fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, NodeError> {
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| NodeError::Lock {
            path: path.clone(),
            error,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(NodeError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(error)) => Err(NodeError::Lock { path, error }),
    }
}

/// Peer calls give up well within an election timeout, so a dead peer never
/// holds back the messages behind it for long.
fn rpc_timeout(cfg: &NodeConfig) -> Duration {
    (cfg.election_timeout / 2).max(Duration::from_millis(50))
}
