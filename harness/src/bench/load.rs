//! Closed-loop workers: each sends its next request as soon as the last
//! one is answered, to the node believed to lead.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::{BenchOptions, BenchReport, BenchWorkload, Failover, Percentiles, fsync};
use crate::cluster::{Cluster, ClusterSpec, DiskKind, disk};
use crate::db::{self, BenchAnswer, BenchOp, DbError, DbSpec, Members};
use crate::net::NetSpec;
use crate::run::RunError;
use raft::Rng;

const OP_TIMEOUT: Duration = Duration::from_secs(1);
const WARM_UP: Duration = Duration::from_secs(1);

struct Shared {
    /// The members; the workers share one connection to each (see
    /// [`crate::db::Members::bench_call`]).
    members: Arc<dyn Members>,
    /// Index into `addrs` of the node believed to lead.
    leader: AtomicUsize,
    stop: AtomicBool,
    /// Recording starts after the warm-up.
    recording: AtomicBool,
    /// Nanoseconds since `epoch` of the latest acknowledged write that was
    /// sent after `killed_at`.
    last_write_ok: AtomicU64,
    /// Nanoseconds since `epoch` of the latest leader kill. A write sent
    /// before it may still be answered by the dying leader, which says
    /// nothing about failover.
    killed_at: AtomicU64,
    epoch: Instant,
}

struct WorkerResult {
    latency: Histogram<u64>,
    ops: u64,
    errors: u64,
}

/// Starts a fresh cluster in a new bench directory, drives the closed-loop
/// workers (or times leader kills), stops the cluster and writes `bench.json`.
pub async fn run(opts: &BenchOptions) -> Result<BenchReport, RunError> {
    if opts.disk != DiskKind::Plain {
        lazyfs::check_available().map_err(|e| {
            RunError::BadArgs(format!(
                "--disk lazy needs FUSE, which cannot run here: {e}"
            ))
        })?;
        if !crate::sandbox::mount_ns_private() {
            let _ = disk::sweep_dead_mounts(&opts.store);
        }
    }
    let dir = opts.store.join(format!(
        "bench-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| RunError::Store(format!("cannot create {}: {e}", dir.display())))?;
    println!("bench directory: {}", dir.display());
    let fsync = fsync::measure(&dir, 200)
        .map_err(|e| RunError::Store(format!("cannot measure fsync in {}: {e}", dir.display())))?;
    let db = db::open(&DbSpec {
        kind: opts.db,
        bin: opts.db_bin.clone(),
        args: opts.node_args.clone(),
        cluster_id: "bench".into(),
        api: opts.api,
        serializable_reads: opts.serializable_reads,
        bench_workers: opts.concurrency,
    })
    .map_err(|e| match e {
        DbError::BadArgs(m) => RunError::BadArgs(m),
        e => RunError::Harness(e.to_string()),
    })?;
    let spec = ClusterSpec {
        nodes: opts.nodes,
        db: db.clone(),
        dir: dir.clone(),
        net: NetSpec {
            direct: true,
            ..NetSpec::new(opts.network, 1)
        },
        disk: opts.disk.clone(),
        initial_members: None,
    };
    let mut cluster = Cluster::start(spec)
        .await
        .map_err(|e| RunError::Harness(e.to_string()))?;
    let members = db
        .connect(&cluster.addrs())
        .map_err(|e| RunError::Harness(e.to_string()))?;
    let Some(leader) = members.wait_for_leader(Duration::from_secs(30)).await else {
        return Err(RunError::Harness("no leader elected within 30 s".into()));
    };
    let shared = Arc::new(Shared {
        leader: AtomicUsize::new(members.index_of(&leader.id).unwrap_or(0)),
        members,
        stop: AtomicBool::new(false),
        recording: AtomicBool::new(opts.failover > 0),
        last_write_ok: AtomicU64::new(0),
        killed_at: AtomicU64::new(0),
        epoch: Instant::now(),
    });
    let workload = if opts.failover > 0 {
        BenchWorkload::Write
    } else {
        opts.workload
    };
    let value = bytes::Bytes::from(vec![b'v'; opts.value_size]);
    let mut workers = Vec::new();
    for w in 0..opts.concurrency {
        workers.push(tokio::spawn(worker(
            w,
            shared.clone(),
            workload,
            value.clone(),
            opts.keys.max(1),
        )));
    }

    let mut failover = None;
    let measured_from;
    if opts.failover > 0 {
        measured_from = Instant::now();
        let mut rounds = Vec::new();
        for round in 1..=opts.failover {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            match kill_leader_and_time(&mut cluster, &shared).await? {
                Some(ms) => {
                    println!("failover round {round}: next acknowledged write after {ms:.0} ms");
                    rounds.push(ms);
                }
                None => println!("failover round {round}: no write acknowledged within 10 s"),
            }
        }
        failover = Some(Failover::of(rounds));
    } else {
        tokio::time::sleep(WARM_UP).await;
        shared.recording.store(true, Ordering::SeqCst);
        measured_from = Instant::now();
        tokio::time::sleep(opts.duration).await;
    }
    shared.stop.store(true, Ordering::SeqCst);
    let seconds = measured_from.elapsed().as_secs_f64();
    let mut latency = Histogram::<u64>::new(3).expect("valid precision");
    let (mut ops, mut errors) = (0, 0);
    for w in workers {
        if let Ok(r) = w.await {
            let _ = latency.add(&r.latency);
            ops += r.ops;
            errors += r.errors;
        }
    }
    if let Err(e) = cluster.detach_disks() {
        eprintln!("warning: {e}");
    }
    let writes_only = workload == BenchWorkload::Write;
    let (lazyfs_metadata, fsync_delay_ms) = match &opts.disk {
        DiskKind::Plain => (None, None),
        DiskKind::Lazy {
            metadata,
            fsync_delay,
        } => (
            Some(metadata.to_string()),
            Some(fsync_delay.as_secs_f64() * 1e3),
        ),
    };
    let report = BenchReport {
        db: opts.db.name(),
        nodes: opts.nodes,
        workload,
        concurrency: opts.concurrency,
        client_threads: opts.client_threads,
        // etcd's calls are unary gRPC, whatever --api says.
        api: match opts.db {
            crate::db::DbKind::Raftkv => opts.api,
            crate::db::DbKind::Etcd => node::client::Api::Unary,
        },
        node_args: opts.node_args.clone(),
        network: opts.network.name(),
        disk: opts.disk.name(),
        lazyfs_metadata,
        fsync_delay_ms,
        value_size: opts.value_size,
        seconds,
        ops,
        errors,
        ops_per_sec: ops as f64 / seconds,
        latency_ms: Percentiles::of(&latency),
        fsync: Some(fsync),
        fsync_bound_ops_per_sec: writes_only
            .then(|| opts.concurrency as f64 / (fsync.p50_ms / 1000.0).max(1e-6)),
        failover,
    };
    let json = serde_json::to_string_pretty(&report).expect("reports serialize");
    std::fs::write(dir.join("bench.json"), json + "\n")
        .map_err(|e| RunError::Store(format!("cannot write bench.json: {e}")))?;
    Ok(report)
}

/// Kills the leader, waits for the first write acknowledged after that,
/// restarts the node. `None` if nothing was acknowledged within 10 s.
async fn kill_leader_and_time(
    cluster: &mut Cluster,
    shared: &Shared,
) -> Result<Option<f64>, RunError> {
    let Some(db::Leader { id: leader, .. }) = shared
        .members
        .wait_for_leader(Duration::from_secs(10))
        .await
    else {
        return Err(RunError::Harness("no leader to kill within 10 s".into()));
    };
    let killed_at = shared.epoch.elapsed().as_nanos() as u64;
    shared.killed_at.store(killed_at, Ordering::SeqCst);
    cluster
        .kill(&leader)
        .map_err(|e| RunError::Harness(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let result = loop {
        let last = shared.last_write_ok.load(Ordering::SeqCst);
        if last > killed_at {
            break Some((last - killed_at) as f64 / 1e6);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    cluster
        .start_node(&leader)
        .map_err(|e| RunError::Harness(e.to_string()))?;
    Ok(result)
}

async fn worker(
    w: usize,
    shared: Arc<Shared>,
    workload: BenchWorkload,
    value: bytes::Bytes,
    keys: usize,
) -> WorkerResult {
    let mut rng = Rng::new(w as u64 + 1);
    let mut r = WorkerResult {
        latency: Histogram::new(3).expect("valid precision"),
        ops: 0,
        errors: 0,
    };
    let members = shared.members.addrs().len();
    let mut seq = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        let target = shared.leader.load(Ordering::Relaxed);
        let key = format!("bench-{}", rng.below(keys as u64));
        let write = match workload {
            BenchWorkload::Write => true,
            BenchWorkload::Read => false,
            BenchWorkload::Mixed => rng.below(2) == 0,
        };
        let started = Instant::now();
        let op = if write {
            seq += 1;
            BenchOp::Put {
                key,
                value: value.clone(),
                seq,
            }
        } else {
            BenchOp::Get(key)
        };
        match shared.members.bench_call(target, w, op, OP_TIMEOUT).await {
            BenchAnswer::NotLeader(leader) => {
                let next = leader.unwrap_or((target + 1) % members);
                let _ = shared.leader.compare_exchange(
                    target,
                    next,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
                if leader.is_none() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            BenchAnswer::Ok => {
                let sent = started.duration_since(shared.epoch).as_nanos() as u64;
                if write && sent > shared.killed_at.load(Ordering::SeqCst) {
                    let now = shared.epoch.elapsed().as_nanos() as u64;
                    shared.last_write_ok.fetch_max(now, Ordering::SeqCst);
                }
                if shared.recording.load(Ordering::Relaxed) {
                    r.ops += 1;
                    let _ = r.latency.record(started.elapsed().as_micros() as u64);
                }
            }
            BenchAnswer::Error => {
                r.errors += 1;
                // The node may be gone: try the next one.
                let next = (target + 1) % members;
                let _ = shared.leader.compare_exchange(
                    target,
                    next,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    r
}
