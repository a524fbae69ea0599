//! `harness bench-check`: times the checkers on histories from the
//! simulated store ([`crate::sim`]) and reports peak memory.

use std::io;
use std::time::Instant;

use crate::check::{CheckOptions, Verdict, check_history};
use crate::cli::BenchCheckArgs;
use crate::history::{Action, History, Op, OpType, Payload, Value, jsonl::write_jsonl, read_jsonl};
use crate::sim::{SimConfig, Workload, simulate};

pub fn run(args: &BenchCheckArgs) -> Result<Verdict, crate::check::CheckError> {
    run_io(args).map_err(|source| crate::check::CheckError::Write {
        path: std::env::temp_dir(),
        source,
    })
}

fn run_io(args: &BenchCheckArgs) -> io::Result<Verdict> {
    let base = SimConfig {
        seed: args.seed,
        concurrency: args.concurrency,
        info_rate: args.info_rate,
        values: args.values,
        workload: if args.append {
            Workload::Append
        } else {
            Workload::Register
        },
        ..SimConfig::default()
    };
    let scenarios: Vec<(&str, SimConfig)> = match args.ops {
        Some(ops) => vec![(
            "custom",
            SimConfig {
                ops,
                keys: args.keys,
                ..base
            },
        )],
        None => vec![
            (
                "a",
                SimConfig {
                    ops: 100_000,
                    keys: 100,
                    ..base.clone()
                },
            ),
            (
                "b",
                SimConfig {
                    ops: 1_000_000,
                    keys: 1_000,
                    ..base
                },
            ),
        ],
    };
    let opts = CheckOptions {
        budget: args.budget.duration(),
        ..CheckOptions::default()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "bench-check: {threads} threads, budget {} s",
        opts.budget.as_secs_f64()
    );
    let mut verdicts = Vec::new();
    for (name, cfg) in scenarios {
        let t = Instant::now();
        let mut ops = simulate(&cfg).ops;
        if args.corrupt_read {
            corrupt_middle_read(&mut ops);
        }
        let history = History::new(ops).map_err(io::Error::other)?;
        let generated = t.elapsed();
        let info = history
            .operations()
            .filter(|o| o.outcome().is_indeterminate())
            .count();
        println!(
            "({name}) {} operations ({} history lines), {} keys, concurrency {}, {info} with unknown outcome; generated in {:.2} s",
            history.operation_count(),
            history.ops().len(),
            cfg.keys,
            cfg.concurrency,
            generated.as_secs_f64()
        );
        let history = if args.with_io {
            let dir = tempfile_dir()?;
            let path = dir.join("history.jsonl");
            let t = Instant::now();
            write_jsonl(&path, history.ops())?;
            let written = t.elapsed();
            drop(history);
            let t = Instant::now();
            let h = read_jsonl(&path).map_err(io::Error::other)?;
            println!(
                "({name}) wrote history.jsonl in {:.2} s, read it back in {:.2} s",
                written.as_secs_f64(),
                t.elapsed().as_secs_f64()
            );
            std::fs::remove_dir_all(&dir)?;
            h
        } else {
            history
        };
        let before = peak_rss();
        let reset = reset_peak_rss();
        let t = Instant::now();
        let results = check_history(&history, &[], &opts);
        let elapsed = t.elapsed();
        println!(
            "({name}) check: {:.3} s, verdict {} (linearizable {} in {} ms)",
            elapsed.as_secs_f64(),
            results.valid,
            results.checkers.linearizable.valid,
            results.checkers.linearizable.elapsed_ms,
        );
        let mib =
            |kb: Option<u64>| kb.map_or("unknown".to_string(), |kb| format!("{} MiB", kb / 1024));
        if reset {
            println!(
                "({name}) peak RSS: {} before the check (generating), {} during the check (history included)",
                mib(before),
                mib(peak_rss())
            );
        } else {
            println!("({name}) peak RSS so far: {}", mib(peak_rss()));
        }
        for u in results.checkers.linearizable.unknown_keys.iter().take(3) {
            println!("({name})   unknown key {}: {}", u.key, u.reason);
        }
        for f in results.checkers.linearizable.failures.iter().take(3) {
            println!("({name})   BUG: key {}: {}", f.key, f.explanation);
        }
        verdicts.push(results.valid);
    }
    Ok(Verdict::combine(verdicts))
}

/// Makes the ok read closest to the middle of the history return a value
/// no simulated client writes.
fn corrupt_middle_read(ops: &mut [Op]) {
    let middle = ops.len() / 2;
    let read = (middle..ops.len()).chain(0..middle).find(|&i| {
        ops[i].kind == OpType::Ok
            && matches!(&ops[i].payload, Payload::Client(c) if matches!(c.action, Action::Read(_)))
    });
    let Some(i) = read else {
        return;
    };
    if let Payload::Client(c) = &mut ops[i].payload {
        let corrupt = match &c.action {
            Action::Read(Some(Value::List(l))) => Value::List([l.as_slice(), &[-1]].concat()),
            _ => Value::Int(-1),
        };
        println!(
            "planted: the read completing at index {} returns {corrupt}",
            ops[i].index
        );
        c.action = Action::Read(Some(corrupt));
    }
}

/// The process's peak resident set size in KiB, from `/proc/self/status` (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak to the current RSS (Linux: `5` to `/proc/self/clear_refs`),
/// so that the next reading covers the check alone.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn tempfile_dir() -> io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("harness-bench-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
