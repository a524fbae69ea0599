//! Putting a node together: recover from disk, start the driver thread and
//! the peer links, and serve gRPC on a listener the caller provides, until
//! the caller's shutdown signal or a fatal storage error.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use proto::kv::admin_server::AdminServer;
use proto::kv::kv_server::KvServer;
use proto::raft::raft_server::RaftServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::config::NodeConfig;
use crate::driver::{Driver, DriverError, DriverIo};
use crate::events::EventLog;
use crate::kv::KvState;
use crate::mailbox::{Event, Outbox, ReadQueue, Replier};
use crate::startup::{self, HelloState, StartupError};
use crate::storage::{Standing, Storage, StorageError};
use crate::transport::Peers;
use crate::transport::admin_service::AdminService;
use crate::transport::kv_service::KvService;
use crate::transport::raft_service::RaftService;
use crate::transport::shared::Shared;
use raft::{NodeId, Raft};

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
    /// The gRPC server task panicked.
    #[error("the gRPC server task panicked")]
    ServerPanicked,
    /// The data directory is not this node's, or cannot be joined safely.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The identity says the node never settled, but the log has state.
    #[error(
        "{}: raft.wal holds Raft state, but the identity file says this node never \
         settled in a cluster: the directory was tampered with; refusing to start",
        path.display()
    )]
    Undecided {
        /// The data directory.
        path: PathBuf,
    },
}

/// Runs a node until `shutdown` resolves. Binding is the caller's business,
/// so tests can listen on port 0 and drive the node exactly as the binary does.
///
/// The order matters: the directory is locked, its identity read or
/// written before anything else, the storage recovered, then gRPC served
/// (a node that must find out whether its cluster exists answers its
/// peers' `Hello` meanwhile), and only once it is settled does the core
/// start. Requests that arrive before wait in the driver's mailbox.
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
    let identity = startup::open_identity(&cfg)?;
    // Restart = load the snapshot, then replay the log after it (§7).
    #[allow(unused_mut)]
    let (mut storage, recovered) = Storage::open(&cfg.data_dir, cfg.fsync)?;
    if identity.standing == Standing::Undecided && has_raft_state(&recovered) {
        return Err(NodeError::Undecided {
            path: cfg.data_dir.clone(),
        });
    }
    #[cfg(feature = "bugs")]
    if cfg.has_bug(crate::config::Bug::LazyPersist) {
        storage.set_lazy_persist();
    }
    #[cfg(feature = "bugs")]
    if cfg.has_bug(crate::config::Bug::HardstateNosync) {
        storage.set_hardstate_nosync();
    }

    // Serve from here on: peers ask who we are while we settle.
    let (tx, rx) = mpsc::channel::<Event>();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let hello = HelloState::new(&cfg, &identity);
    let reads = Arc::new(ReadQueue::default());
    let shared = Shared {
        me: cfg.id.clone(),
        cluster_id: cfg.cluster_id.clone(),
        mailbox: tx.clone(),
        reads: reads.clone(),
        hello: hello.clone(),
        strangers: Arc::default(),
    };
    let server = tokio::spawn(serve_grpc(listener, shared, shutdown, done_rx, stop_tx));

    let settled = startup::settle(&cfg, identity, &hello, stop_rx).await;
    let identity = match settled {
        Ok(Some(identity)) => identity,
        Ok(None) => {
            // Shut down before it knew how to enter its cluster.
            drop(done_tx);
            return join_server(server).await;
        }
        Err(e) => {
            drop(done_tx);
            server.abort();
            return Err(e.into());
        }
    };

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
        "term {} vote {:?}, {} log entries; incarnation {:016x}, {}",
        recovered.hard_state.term.0,
        recovered
            .hard_state
            .voted_for
            .as_ref()
            .map(|v| v.0.as_str()),
        recovered.entries.len(),
        identity.incarnation,
        identity.standing.as_str(),
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
    events.start(
        recovered.hard_state.term,
        recovered.hard_state.voted_for.as_ref(),
        &note,
    );
    tracing::info!(node = %cfg.id, listen = %cfg.listen, "{note}");

    // Each incarnation draws different election timeouts.
    let seed = std::process::id() as u64
        ^ (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64));
    let snapshot = recovered.snapshot.map(|s| s.meta).unwrap_or_default();
    let raft = Raft::new(
        cfg.raft_config(seed, &identity),
        recovered.hard_state,
        snapshot,
        recovered.entries,
    );
    // The configuration known at start, for the event log.
    let base = raft.log().snapshot();
    if !base.membership.is_empty() {
        events.config(base.index, &base.membership);
    }

    // Links to every --peer (a node that joined answers its leader through
    // them) and to every member the configuration knows.
    let mut links: Vec<(NodeId, String)> = cfg
        .peers
        .iter()
        .map(|p| (p.id.clone(), p.addr.clone()))
        .collect();
    for m in raft.membership().members() {
        if !links.iter().any(|(id, _)| *id == m.id)
            && let Some(addr) = cfg.peer_addr(&m.id, raft.membership())
        {
            links.push((m.id.clone(), addr.to_string()));
        }
    }
    let peers: Box<dyn Outbox> = Box::new(Peers::start(
        &cfg.id,
        &cfg.cluster_id,
        &links,
        rpc_timeout(&cfg),
        storage.snapshot_path().to_path_buf(),
        tx.clone(),
    ));
    let io = DriverIo {
        outbox: peers,
        replier: Replier::spawn(),
        reads,
    };
    let standing = identity.standing.as_str();
    let driver = Driver::new(cfg.clone(), raft, storage, kv, events, io, standing);
    let thread = std::thread::Builder::new()
        .name(format!("driver-{}", cfg.id))
        .spawn(move || {
            let r = driver.run(rx);
            let _ = done_tx.send(());
            r
        })
        .expect("spawning the driver thread");

    let served = join_server(server).await;
    let _ = tx.send(Event::Shutdown);
    drop(tx);
    let driven = tokio::task::spawn_blocking(move || thread.join())
        .await
        .map_err(|_| NodeError::DriverPanicked)?
        .map_err(|_| NodeError::DriverPanicked)?;
    driven?;
    served
}

/// Serves the three services until the caller's `shutdown` or until the
/// driver stops on its own (`done`: a disk failure; dropped before the
/// driver started: the node gave up settling). Tells the settling node to
/// stop through `stop`.
async fn serve_grpc(
    listener: TcpListener,
    shared: Shared,
    shutdown: impl Future<Output = ()> + Send + 'static,
    done: tokio::sync::oneshot::Receiver<()>,
    stop: tokio::sync::watch::Sender<bool>,
) -> Result<(), NodeError> {
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(
            RaftServer::new(RaftService(shared.clone())).max_decoding_message_size(64 << 20),
        )
        .add_service(
            KvServer::new(KvService(shared.clone()))
                .max_decoding_message_size(crate::transport::MAX_KV_MESSAGE),
        )
        .add_service(AdminServer::new(AdminService(shared)))
        // `tcp_nodelay` above applies only to listeners tonic binds itself:
        // the accepted sockets need it too, or Nagle's algorithm holds a
        // small response back until the client's delayed ACK (~40 ms), a
        // stall seen whenever one connection carries several requests at
        // once (a shared client channel; a peer link's acknowledgements).
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                tokio::select! {
                    _ = shutdown => {}
                    _ = done => {}
                }
                let _ = stop.send(true);
            },
        );
    server.await.map_err(NodeError::from)
}

async fn join_server(
    server: tokio::task::JoinHandle<Result<(), NodeError>>,
) -> Result<(), NodeError> {
    server.await.map_err(|_| NodeError::ServerPanicked)?
}

/// Whether a WAL holds anything a Raft node wrote (a term, a vote, an entry
/// or a snapshot).
fn has_raft_state(r: &crate::storage::Restored) -> bool {
    r.hard_state != raft::HardState::default() || !r.entries.is_empty() || r.snapshot.is_some()
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
