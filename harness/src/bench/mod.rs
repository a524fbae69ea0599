//! `harness bench`: closed-loop load against a fresh local cluster (peers
//! connected directly, fsync on), latency percentiles from an HDR
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchWorkload {
    Write,
    Read,
    Mixed,
}

impl BenchWorkload {
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

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub nodes: usize,
    pub concurrency: usize,
    pub duration: Duration,
    pub workload: BenchWorkload,
    pub value_size: usize,
    pub keys: usize,
    pub failover: u32,
    pub store: PathBuf,
    pub node_args: Vec<String>,
    pub client_threads: usize,
    pub api: Api,
}

fn api_name<S: serde::Serializer>(api: &Api, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(api.name())
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
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
    pub rounds_ms: Vec<f64>,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
}

impl Failover {
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

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub nodes: usize,
    pub workload: BenchWorkload,
    pub concurrency: usize,
    /// Threads of the load generator.
    pub client_threads: usize,
    #[serde(serialize_with = "api_name")]
    pub api: Api,
    /// Extra node flags, as given.
    pub node_args: Vec<String>,
    pub value_size: usize,
    pub seconds: f64,
    pub ops: u64,
    pub errors: u64,
    pub ops_per_sec: f64,
    pub latency_ms: Percentiles,
    pub fsync: Option<fsync::FsyncLatency>,
    /// concurrency ÷ fsync p50: what a closed loop could reach if every
    /// write cost exactly one fsync (writes only).
    pub fsync_bound_ops_per_sec: Option<f64>,
    pub failover: Option<Failover>,
}

impl BenchReport {
    pub fn render(&self) -> String {
        let l = &self.latency_ms;
        let mut s = format!(
            "{} {:?} ops, {} clients on {} thread(s) ({} calls), {}-byte values, {} nodes: {:.0} ops/s ({} ops in {:.1} s, {} errors)\n\
             latency ms: p50 {:.2}  p95 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n",
            self.ops,
            self.workload,
            self.concurrency,
            self.client_threads,
            self.api.name(),
            self.value_size,
            self.nodes,
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
