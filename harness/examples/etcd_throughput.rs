//! Closed-loop throughput of a local 3-member etcd through our client:
//! `--clients` tasks share one tonic channel to the leader; each sends its
//! next request as soon as the last is answered. First puts of
//! `--value-size` bytes (a key per client), then linearizable gets of those
//! keys, each for `--secs` after a 1 s warm-up. Prints ops/s, latency
//! percentiles, and the CPU time the client and each member used, to tell
//! which side is the bottleneck.
//!
//! ```sh
//! cargo run --release -p harness --example etcd_throughput -- --clients 64 --secs 10
//! ```
//!
//! `--threads 1` (the default) runs the whole client on one thread, as the
//! reference measurement's client did.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;

use harness::etcd::local::LocalCluster;
use harness::etcd::{ClientOptions, Consistency, EtcdClient, member, survey};

#[derive(Parser, Debug, Clone)]
struct Args {
    #[arg(long, default_value_t = 64)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    secs: u64,
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Client runtime threads (1: a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Serializable gets instead of linearizable ones.
    #[arg(long)]
    serializable: bool,
    /// The etcd binary (default: etcd on PATH).
    #[arg(long)]
    etcd: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(args.threads);
        b
    };
    rt.enable_all().build()?.block_on(run(args))
}

#[derive(Clone, Copy)]
enum Op {
    Put,
    Get(Consistency),
}

async fn run(args: Args) -> anyhow::Result<()> {
    let bin = member::find_binary(args.etcd.as_deref())?;
    let dir = tempfile::tempdir()?;
    let cluster = LocalCluster::start(&bin, dir.path(), 3, &[])?;
    let client = cluster.client(ClientOptions::default())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        if let Some((i, _)) = survey::find_leader(&client, Duration::from_secs(1)).await {
            break i;
        }
        if Instant::now() > deadline {
            bail!("no leader within 30 s\n{}", cluster.logs_tail(10));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "etcd {} (3 members, leader {}), {} clients on one channel, {} client thread(s), load average {}",
        bin.display(),
        client.name(leader),
        args.clients,
        args.threads,
        load_average()
    );
    let get = Op::Get(if args.serializable {
        Consistency::Serializable
    } else {
        Consistency::Linearizable
    });
    for (name, op) in [("put", Op::Put), ("get", get)] {
        let pids: Vec<u32> = (0..3).filter_map(|i| cluster.pid(i)).collect();
        phase(name, op, &client, leader, &args, &pids, &cluster).await?;
    }
    println!("load average after: {}", load_average());
    Ok(())
}

async fn phase(
    name: &str,
    op: Op,
    client: &EtcdClient,
    leader: usize,
    args: &Args,
    pids: &[u32],
    cluster: &LocalCluster,
) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let recording = Arc::new(AtomicBool::new(false));
    let value = vec![b'x'; args.value_size];
    let workers: Vec<_> = (0..args.clients)
        .map(|w| {
            let (client, stop, recording, value) = (
                client.clone(),
                stop.clone(),
                recording.clone(),
                value.clone(),
            );
            tokio::spawn(async move {
                let key = format!("bench-{w}").into_bytes();
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
                let (mut ok, mut errors) = (0u64, 0u64);
                let timeout = Duration::from_secs(5);
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let result = match op {
                        Op::Put => client
                            .put(leader, &key, value.clone(), timeout)
                            .await
                            .map(drop),
                        Op::Get(c) => client.get(leader, &key, c, timeout).await.map(drop),
                    };
                    if recording.load(Ordering::Relaxed) {
                        match result {
                            Ok(()) => {
                                ok += 1;
                                hist.saturating_record(start.elapsed().as_micros() as u64);
                            }
                            Err(_) => errors += 1,
                        }
                    }
                }
                (hist, ok, errors)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_before: Vec<f64> = std::iter::once(std::process::id())
        .chain(pids.iter().copied())
        .map(cpu_seconds)
        .collect::<Result<_, _>>()?;
    recording.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.secs)).await;
    recording.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after: Vec<f64> = std::iter::once(std::process::id())
        .chain(pids.iter().copied())
        .map(cpu_seconds)
        .collect::<Result<_, _>>()?;
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let (mut ok, mut errors) = (0, 0);
    for w in workers {
        let (h, o, e) = w.await?;
        hist.add(h)?;
        ok += o;
        errors += e;
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let cpu: Vec<f64> = cpu_before
        .iter()
        .zip(&cpu_after)
        .map(|(b, a)| (a - b) / elapsed)
        .collect();
    let members: Vec<String> = (0..3)
        .map(|i| {
            let role = if i == leader { " (leader)" } else { "" };
            format!("{}{role} {:.2}", cluster.members()[i].name, cpu[i + 1])
        })
        .collect();
    println!(
        "{name}: {:.0} ops/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {errors} errors; CPU (cores): client {:.2}, {}",
        ok as f64 / elapsed,
        ms(0.5),
        ms(0.99),
        ms(1.0),
        cpu[0],
        members.join(", ")
    );
    Ok(())
}

/// User + system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line, in clock ticks (100 per second
    // on Linux).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Ok((ticks(11) + ticks(12)) / 100.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
