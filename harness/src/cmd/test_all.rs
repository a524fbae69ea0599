//! `harness test-all`: every nemesis set × cluster size × --test-count, one
//! normal run each, then a table, JUnit if asked, and Jepsen's exit status.

use crate::check::Verdict;
use crate::cli::TestAllArgs;
use crate::cmd::run::reproduce_command;
use crate::run::RunError;
use crate::suite::{self, RunRecord, SuiteStatus, junit};

pub fn run(args: &TestAllArgs) -> anyhow::Result<Verdict> {
    let base_seed = args.load.seed.unwrap_or_else(super::run::random_seed);
    let mut cells = Vec::new();
    for set in &args.nemeses.0 {
        for &nodes in &args.nodes.0 {
            for i in 1..=args.test_count {
                let seed = base_seed + cells.len() as u64;
                let mut opts = args.load.to_options(nodes, set.clone(), String::new());
                opts.seed = seed;
                let label = opts.nemesis_label();
                opts.command = reproduce_command(&command_for(&opts, &label), seed);
                let name = format!("{label} n{nodes} #{i}");
                cells.push((name, format!("test-all.{label}"), opts));
            }
        }
    }
    println!("test-all: {} runs (first seed {base_seed})", cells.len());
    let records = suite::block_on(async {
        let mut records: Vec<RunRecord> = Vec::new();
        let total = cells.len();
        for (i, (name, group, opts)) in cells.into_iter().enumerate() {
            println!("\n=== run {}/{total}: {name} (seed {})", i + 1, opts.seed);
            let r = suite::run_one(name, group, opts).await;
            println!("--- {}", r.line());
            records.push(r);
        }
        records
    })?;
    print!("{}", suite::table(&records));
    if let Some(path) = &args.junit {
        junit::write(path, "harness test-all", &records)
            .map_err(|e| RunError::Store(format!("cannot write {}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    match suite::exit_status(&records) {
        SuiteStatus::Done(v) => Ok(v),
        SuiteStatus::Crashed => Err(anyhow::anyhow!("at least one run crashed (see the table)")),
    }
}

/// A `harness run` command line that repeats one cell of the matrix.
fn command_for(opts: &crate::run::RunOptions, label: &str) -> Vec<String> {
    let mut words: Vec<String> = vec![
        "harness".into(),
        "run".into(),
        "--nodes".into(),
        opts.nodes.to_string(),
        "--nemesis".into(),
        if label.is_empty() {
            "none".into()
        } else {
            label.replace('+', ",")
        },
        "--time-limit".into(),
        opts.time_limit.as_secs_f64().to_string(),
        "--concurrency".into(),
        opts.concurrency.to_string(),
        "--rate".into(),
        opts.rate.to_string(),
        "--workload".into(),
        opts.workload_name().into(),
        "--keys".into(),
        opts.keys.to_string(),
        "--ops-per-key".into(),
        opts.ops_per_key.to_string(),
        "--nemesis-interval".into(),
        opts.nemesis_interval.as_secs_f64().to_string(),
    ];
    if !opts.partition_shapes.is_empty() {
        let names: Vec<&str> = opts.partition_shapes.iter().map(|s| s.name()).collect();
        words.extend(["--partition-shapes".into(), names.join(",")]);
    }
    if !opts.fault_targets.is_empty() {
        let names: Vec<&str> = opts.fault_targets.iter().map(|t| t.name()).collect();
        words.extend(["--fault-targets".into(), names.join(",")]);
    }
    if let Some(n) = opts.snapshot_every {
        words.extend(["--snapshot-every".into(), n.to_string()]);
    }
    for a in &opts.node_args {
        words.push(format!("--node-arg={a}"));
    }
    words
}
