//! A small performance summary: latency percentiles per function over the
//! operations that succeeded (a failure's or timeout's latency says more
//! about the client's timeouts than about the store), and throughput.
//! Always valid: it informs, it does not judge.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::Verdict;
use crate::history::{F, History, Outcome};

/// The `perf` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerfResult {
    /// Always valid: perf informs, it does not judge.
    pub valid: Verdict,
    /// Set when the history has no times (its positions order it): there
    /// is nothing to measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Latency of ok operations per function, in milliseconds.
    pub latency_ms: BTreeMap<String, Latency>,
    /// From the first to the last op of the history, in seconds.
    pub duration_s: f64,
    /// Ok operations per second over `duration_s`.
    pub ok_per_s: f64,
}

/// Latency percentiles of one function's ok operations, in milliseconds
/// (nearest rank: each is the latency of an operation that happened).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Ok operations measured.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The slowest.
    pub max: f64,
}

/// For a history without times: nothing to measure.
pub fn untimed() -> PerfResult {
    PerfResult {
        valid: Verdict::Valid,
        skipped: Some("the history has no times (the order of its lines is its order)".into()),
        latency_ms: BTreeMap::new(),
        duration_s: 0.0,
        ok_per_s: 0.0,
    }
}

/// Latencies of the ok operations of `history` per function, and ok
/// operations per second over its span.
pub fn check(history: &History) -> PerfResult {
    let mut per_f: [Vec<u64>; F::ALL.len()] = Default::default();
    let mut ok = 0usize;
    for op in history.operations() {
        if op.outcome() != Outcome::Ok {
            continue;
        }
        ok += 1;
        if let Some(l) = op.latency() {
            per_f[op.f() as usize].push(l);
        }
    }
    let latency_ms = F::ALL
        .into_iter()
        .zip(per_f)
        .filter(|(_, ns)| !ns.is_empty())
        .map(|(f, mut ns)| {
            ns.sort_unstable();
            let at = |q: f64| {
                let i = ((ns.len() as f64 * q).ceil() as usize).clamp(1, ns.len()) - 1;
                ns[i] as f64 / 1e6
            };
            let l = Latency {
                count: ns.len(),
                p50: at(0.50),
                p90: at(0.90),
                p99: at(0.99),
                max: at(1.0),
            };
            (f.to_string(), l)
        })
        .collect();
    let ops = history.ops();
    let duration_s = match (
        ops.iter().map(|o| o.time).min(),
        ops.iter().map(|o| o.time).max(),
    ) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9,
        _ => 0.0,
    };
    PerfResult {
        valid: Verdict::Valid,
        skipped: None,
        latency_ms,
        duration_s,
        ok_per_s: if duration_s > 0.0 {
            ok as f64 / duration_s
        } else {
            0.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Action, ClientOp, Op, ProcessId};

    #[test]
    fn percentiles_of_ok_operations() {
        let mut ops = Vec::new();
        for i in 0..100u64 {
            let c = ClientOp::new(ProcessId(i), "k", Action::Write(1));
            ops.push(Op::invoke(i * 10_000_000, c.clone()));
            ops.push(Op::ok(i * 10_000_000 + (i + 1) * 1_000_000, c));
        }
        ops.sort_by_key(|o| o.time);
        let p = check(&History::numbered(ops).unwrap());
        let l = p.latency_ms["write"];
        assert_eq!(l.count, 100);
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50.0, 90.0, 99.0, 100.0));
        assert!(p.duration_s > 1.0);
    }
}
