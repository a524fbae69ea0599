//! `harness bench`: closed-loop load against a fresh local cluster (peers
//! connected directly: on loopback, or each in its namespace; fsync on), latency percentiles from an HDR
//! histogram, the disk's fsync bound beside them, and optionally the time
//! from killing the leader to the next acknowledged write.
//!
//! - `fsync`: the disk's latency, measured where the nodes write.
//! - `load`: the workers, their histogram, the failover rounds.

pub mod fsync;
pub mod load;

use std::path::PathBuf;
use std::time::Duration;

use node::client::Api;
use serde::Serialize;

/// What the bench workers send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchWorkload {
    /// Every request a put (the default, and always with `--failover`).
    Write,
    /// Every request a linearizable get.
    Read,
    /// Half puts, half gets.
    Mixed,
}

impl BenchWorkload {
    /// Parses `--workload`: `write`, `read` or `mixed`.
    pub fn parse(s: &str) -> Result<BenchWorkload, String> {
        match s {
            "write" => Ok(BenchWorkload::Write),
            "read" => Ok(BenchWorkload::Read),
            "mixed" => Ok(BenchWorkload::Mixed),
            _ => Err(format!(
                "unknown bench workload {s:?}; expected write, read or mixed"
            )),
        }
    }
}

/// The bench's settings, from `harness bench`'s flags.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Closed-loop workers: each sends its next request when the last is
    /// answered.
    pub concurrency: usize,
    /// Measured load, after a one-second warm-up.
    pub duration: Duration,
    /// What the workers send.
    pub workload: BenchWorkload,
    /// Bytes per written value.
    pub value_size: usize,
    /// Distinct keys the workers pick from.
    pub keys: usize,
    /// Leader kills to time instead of a timed load (0: none).
    pub failover: u32,
    /// Where the bench directory (node data, `bench.json`) is created.
    pub store: PathBuf,
    /// The database under test.
    pub db: crate::db::DbKind,
    /// Its binary (`None`: the default).
    pub db_bin: Option<PathBuf>,
    /// etcd: serializable gets.
    pub serializable_reads: bool,
    /// Extra flags for every node.
    pub node_args: Vec<String>,
    /// Threads of the load generator's runtime.
    pub client_threads: usize,
    /// How the workers reach the nodes.
    pub api: Api,
    /// Namespaces, or loopback with the peers connected directly.
    pub network: crate::net::NetworkKind,
    /// The nodes' disks: plain, or a lazyfs mount over each data directory.
    pub disk: crate::cluster::DiskKind,
}

fn api_name<S: serde::Serializer>(api: &Api, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(api.name())
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    /// The median.
    pub p50: f64,
    /// The 95th percentile.
    pub p95: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The 99.9th percentile.
    pub p999: f64,
    /// The slowest request.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of a histogram of microseconds.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Percentiles {
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            p50: ms(h.value_at_quantile(0.5)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Milliseconds from SIGKILL of the leader to the next acknowledged write.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Failover {
    /// Each round's time, sorted.
    pub rounds_ms: Vec<f64>,
    /// The median round.
    pub median_ms: f64,
    /// The round at the 90th percentile (an observed round, not an
    /// interpolation).
    pub p90_ms: f64,
    /// The slowest round.
    pub max_ms: f64,
}

impl Failover {
    /// The summary of the rounds' times (none: all zero).
    pub fn of(mut rounds_ms: Vec<f64>) -> Failover {
        rounds_ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if rounds_ms.is_empty() {
                return 0.0;
            }
            let i = ((rounds_ms.len() as f64 * q).ceil() as usize).clamp(1, rounds_ms.len()) - 1;
            rounds_ms[i]
        };
        Failover {
            median_ms: at(0.5),
            p90_ms: at(0.9),
            max_ms: rounds_ms.last().copied().unwrap_or(0.0),
            rounds_ms,
        }
    }
}

/// What a bench measured: printed, and written to `bench.json`.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The database: `raftkv` or `etcd`.
    pub db: &'static str,
    /// Nodes in the cluster.
    pub nodes: usize,
    /// What the workers sent (writes only with `--failover`).
    pub workload: BenchWorkload,
    /// Closed-loop workers.
    pub concurrency: usize,
    /// Threads of the load generator.
    pub client_threads: usize,
    /// How the workers reached the nodes.
    #[serde(serialize_with = "api_name")]
    pub api: Api,
    /// Extra node flags, as given.
    pub node_args: Vec<String>,
    /// `netns` or `proxy` (on proxy the peers connect directly).
    pub network: &'static str,
    /// `plain`, or `lazy` (a lazyfs mount over each data directory).
    pub disk: &'static str,
    /// With a lazy disk: its metadata model.
    pub lazyfs_metadata: Option<String>,
    /// With a lazy disk: how long every fsync waited, in ms.
    pub fsync_delay_ms: Option<f64>,
    /// Bytes per written value.
    pub value_size: usize,
    /// Seconds measured.
    pub seconds: f64,
    /// Requests answered while measuring (not-leader answers excluded).
    pub ops: u64,
    /// Requests that ended in an error (the workers then tried another node).
    pub errors: u64,
    /// `ops` per second.
    pub ops_per_sec: f64,
    /// Latency of the answered requests.
    pub latency_ms: Percentiles,
    /// The disk's fsync latency where the nodes write.
    pub fsync: Option<fsync::FsyncLatency>,
    /// concurrency ÷ fsync p50: what a closed loop could reach if every
    /// write cost exactly one fsync (writes only).
    pub fsync_bound_ops_per_sec: Option<f64>,
    /// Leader-kill rounds, with `--failover`.
    pub failover: Option<Failover>,
}

impl BenchReport {
    /// The report as the terminal shows it.
    pub fn render(&self) -> String {
        let l = &self.latency_ms;
        let mut s = format!(
            "{}: {} {:?} ops, {} clients on {} thread(s) ({} calls), {}-byte values, {} nodes ({} network): {:.0} ops/s ({} ops in {:.1} s, {} errors)\n\
             latency ms: p50 {:.2}  p95 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n",
            self.db,
            self.ops,
            self.workload,
            self.concurrency,
            self.client_threads,
            self.api.name(),
            self.value_size,
            self.nodes,
            self.network,
            self.ops_per_sec,
            self.ops,
            self.seconds,
            self.errors,
            l.p50,
            l.p95,
            l.p99,
            l.p999,
            l.max
        );
        if let (Some(m), Some(d)) = (&self.lazyfs_metadata, self.fsync_delay_ms) {
            s.push_str(&format!(
                "disk: lazyfs ({m} metadata, fsync delay {d} ms) over each data directory; \
                 its fsyncs do not reach the real disk, whose latency follows\n"
            ));
        }
        if let Some(f) = &self.fsync {
            s.push_str(&format!(
                "fsync (4 KiB append + fdatasync, {} samples): p50 {:.2} ms, p99 {:.2} ms\n",
                f.samples, f.p50_ms, f.p99_ms
            ));
        }
        if let Some(b) = self.fsync_bound_ops_per_sec {
            s.push_str(&format!(
                "one-fsync-per-write bound for {} clients: {:.0} ops/s; measured is {:.0}% of it\n",
                self.concurrency,
                b,
                100.0 * self.ops_per_sec / b
            ));
        }
        if let Some(f) = &self.failover {
            s.push_str(&format!(
                "failover, kill leader → next acknowledged write ({} rounds): median {:.0} ms, p90 {:.0} ms, max {:.0} ms\n",
                f.rounds_ms.len(),
                f.median_ms,
                f.p90_ms,
                f.max_ms
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failover_percentiles_pick_observed_rounds() {
        let f = Failover::of(vec![500.0, 100.0, 300.0, 200.0, 400.0]);
        assert_eq!(f.median_ms, 300.0);
        assert_eq!(f.p90_ms, 500.0);
        assert_eq!(f.max_ms, 500.0);
        assert_eq!(Failover::of(vec![]).median_ms, 0.0);
    }

    #[test]
    fn workloads_parse_by_name() {
        assert_eq!(BenchWorkload::parse("read"), Ok(BenchWorkload::Read));
        assert!(BenchWorkload::parse("scan").unwrap_err().contains("scan"));
    }
}
