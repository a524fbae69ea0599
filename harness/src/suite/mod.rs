//! Many runs in a row (`test-all`, `selftest`): run each, print a line per
//! run and a final table, compute the suite's exit status, write JUnit.

pub mod junit;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use crate::check::{Results, Verdict, evidence, summary};
use crate::run::{self, RunError, RunOptions};

/// One run of a suite, as it ended.
#[derive(Debug)]
pub struct RunRecord {
    /// The cell, e.g. `partition n3 #2`.
    pub name: String,
    /// Groups runs in JUnit (`test-all.partition`).
    pub group: String,
    /// The run's seed.
    pub seed: u64,
    /// How long it took, set-up to verdict.
    pub seconds: f64,
    /// How it ended; `Err`: the run crashed, and why.
    pub outcome: Result<Finished, String>,
}

/// A run that got as far as a verdict.
#[derive(Debug)]
pub struct Finished {
    /// Its run directory.
    pub dir: PathBuf,
    /// The overall verdict.
    pub verdict: Verdict,
    /// Client operations ended ok, fail, info.
    pub ops: (u64, u64, u64),
    /// Faults started.
    pub faults: u64,
    /// Checkers whose verdict was invalid.
    pub caught_by: Vec<&'static str>,
    /// Seconds into the run at which the first anomaly was visible.
    pub anomaly_at: Option<f64>,
    /// Seconds of load the run had.
    pub load_seconds: f64,
    /// The terminal summary, with the anomaly in words.
    pub summary: String,
}

impl RunRecord {
    /// `valid`, `invalid`, `unknown` or `crashed`.
    pub fn verdict_word(&self) -> &'static str {
        match &self.outcome {
            Err(_) => "crashed",
            Ok(f) => match f.verdict {
                Verdict::Valid => "valid",
                Verdict::Invalid => "invalid",
                Verdict::Unknown => "unknown",
            },
        }
    }

    /// The line printed as each run ends.
    pub fn line(&self) -> String {
        match &self.outcome {
            Ok(f) => format!(
                "{:<8} {:<34} ops {:>6} (ok {} fail {} info {}), faults {:>3}, {:.0} s  {}",
                self.verdict_word(),
                self.name,
                f.ops.0 + f.ops.1 + f.ops.2,
                f.ops.0,
                f.ops.1,
                f.ops.2,
                f.faults,
                self.seconds,
                f.dir.display()
            ),
            Err(e) => format!("{:<8} {:<34} {e}", "crashed", self.name),
        }
    }
}

/// Checkers that found an anomaly, by name.
pub fn caught_by(results: &Results) -> Vec<&'static str> {
    results
        .checkers
        .verdicts()
        .into_iter()
        .filter(|(_, v, _)| *v == Verdict::Invalid)
        .map(|(name, _, _)| name)
        .collect()
}

/// Runs one cell to its end. A harness failure is recorded, not returned:
/// one broken run must not hide the others.
pub async fn run_one(name: String, group: String, opts: RunOptions) -> RunRecord {
    let seed = opts.seed;
    let started = Instant::now();
    let outcome = match run::run(opts).await {
        Ok(o) => {
            let (caught_by, anomaly_at, summary) = match &o.results {
                Some(r) => (
                    caught_by(r),
                    evidence::first_anomaly_secs(r),
                    summary::render(r, &o.dir.display().to_string()),
                ),
                None => (Vec::new(), None, String::new()),
            };
            Ok(Finished {
                dir: o.dir,
                verdict: o.verdict,
                ops: o.ops,
                faults: o.faults,
                caught_by,
                anomaly_at,
                load_seconds: o.load_seconds,
                summary,
            })
        }
        Err(e) => Err(e.to_string()),
    };
    RunRecord {
        name,
        group,
        seed,
        seconds: started.elapsed().as_secs_f64(),
        outcome,
    }
}

/// Jepsen's test-all status: any crash beats any anomaly beats any
/// undecided run.
pub fn exit_status(records: &[RunRecord]) -> SuiteStatus {
    let words: Vec<&str> = records.iter().map(|r| r.verdict_word()).collect();
    if words.contains(&"crashed") {
        SuiteStatus::Crashed
    } else if words.contains(&"invalid") {
        SuiteStatus::Done(Verdict::Invalid)
    } else if words.contains(&"unknown") {
        SuiteStatus::Done(Verdict::Unknown)
    } else {
        SuiteStatus::Done(Verdict::Valid)
    }
}

/// How a suite ended, for the exit status.
#[derive(Debug, PartialEq, Eq)]
pub enum SuiteStatus {
    /// Every run finished; the worst verdict.
    Done(Verdict),
    /// At least one run could not finish: exit 255.
    Crashed,
}

/// The table printed at the end: one row per run, then the totals.
pub fn table(records: &[RunRecord]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<8} {:<34} {:>7} {:>7} {:>7}",
        "verdict", "run", "ops", "faults", "secs"
    );
    for r in records {
        let (ops, faults) = match &r.outcome {
            Ok(f) => (
                (f.ops.0 + f.ops.1 + f.ops.2).to_string(),
                f.faults.to_string(),
            ),
            Err(_) => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:<8} {:<34} {:>7} {:>7} {:>7.0}",
            r.verdict_word(),
            r.name,
            ops,
            faults,
            r.seconds
        );
    }
    let count = |w: &str| records.iter().filter(|r| r.verdict_word() == w).count();
    let _ = writeln!(
        out,
        "{} runs: {} valid, {} invalid, {} unknown, {} crashed",
        records.len(),
        count("valid"),
        count("invalid"),
        count("unknown"),
        count("crashed")
    );
    out
}

/// A multi-threaded runtime for a whole suite; Ctrl-C ends the suite and
/// the cluster of the run in progress with it.
pub fn block_on<F: std::future::Future>(fut: F) -> Result<F::Output, RunError> {
    block_on_threads(None, fut)
}

/// [`block_on`] with `threads` worker threads (None: one per core).
pub fn block_on_threads<F: std::future::Future>(
    threads: Option<usize>,
    fut: F,
) -> Result<F::Output, RunError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        builder.worker_threads(n.max(1));
    }
    let rt = builder
        .enable_all()
        .build()
        .map_err(|e| RunError::Harness(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        tokio::select! {
            out = fut => Ok(out),
            _ = tokio::signal::ctrl_c() => {
                Err(RunError::Harness("interrupted (Ctrl-C): every node was stopped".into()))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(verdict: Option<Verdict>) -> RunRecord {
        RunRecord {
            name: "x".into(),
            group: "g".into(),
            seed: 1,
            seconds: 1.0,
            outcome: match verdict {
                Some(verdict) => Ok(Finished {
                    dir: "d".into(),
                    verdict,
                    ops: (1, 2, 3),
                    faults: 4,
                    caught_by: vec![],
                    anomaly_at: None,
                    load_seconds: 1.0,
                    summary: String::new(),
                }),
                None => Err("boom".into()),
            },
        }
    }

    #[test]
    fn exit_status_ranks_crash_then_invalid_then_unknown() {
        use Verdict::*;
        let s =
            |v: &[Option<Verdict>]| exit_status(&v.iter().map(|v| record(*v)).collect::<Vec<_>>());
        assert_eq!(s(&[Some(Valid), Some(Valid)]), SuiteStatus::Done(Valid));
        assert_eq!(s(&[Some(Valid), Some(Unknown)]), SuiteStatus::Done(Unknown));
        assert_eq!(
            s(&[Some(Unknown), Some(Invalid)]),
            SuiteStatus::Done(Invalid)
        );
        assert_eq!(s(&[Some(Invalid), None]), SuiteStatus::Crashed);
        assert_eq!(s(&[]), SuiteStatus::Done(Valid));
    }

    #[test]
    fn the_table_counts_every_verdict() {
        let t = table(&[record(Some(Verdict::Valid)), record(None)]);
        assert!(
            t.contains("2 runs: 1 valid, 0 invalid, 0 unknown, 1 crashed"),
            "{t}"
        );
    }
}
