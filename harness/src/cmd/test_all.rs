//! `harness test-all`: every nemesis set × cluster size × --test-count, one
//! normal run each, then a table, JUnit if asked, and Jepsen's exit status.
//! With `--selftest`, the seeded-bug self-test follows in the same suite.

use crate::check::Verdict;
use crate::cli::TestAllArgs;
use crate::cmd::run::reproduce_command;
use crate::cmd::selftest::{self, SelftestPlan, Trial};
use crate::net::{Behavior, NetworkKind};
use crate::run::{RunError, RunOptions};
use crate::suite::junit::{self, Case};
use crate::suite::{self, RunRecord, SuiteStatus};

/// One run of the matrix: its name, its JUnit group, its options.
#[derive(Clone, Debug)]
pub struct Cell {
    /// `partition n3 #2`.
    pub name: String,
    /// `test-all.partition`.
    pub group: String,
    /// The run, seeded.
    pub opts: RunOptions,
}

/// The matrix of `args`: every nemesis set × cluster size × --test-count,
/// cell `i` seeded `base_seed + i` and running the `i`-th workload of
/// `--workloads` in turn. A cell that cannot run is bad
/// arguments, found before any run starts.
pub fn cells(args: &TestAllArgs, base_seed: u64) -> Result<Vec<Cell>, RunError> {
    let mut cells = Vec::new();
    for set in &args.nemeses.0 {
        let sizes = set.nodes.map_or_else(|| args.nodes.0.clone(), |n| vec![n]);
        for nodes in sizes {
            for i in 1..=args.test_count {
                let mut opts = args.load.to_options(nodes, &set.list, String::new());
                opts.seed = base_seed + cells.len() as u64;
                // Only the member nemesis brings the other nodes in.
                if !opts.nemeses.contains(&crate::nemesis::Kind::Member) {
                    opts.initial_members = None;
                }
                if !args.workloads.is_empty() {
                    opts.workload = args.workloads[cells.len() % args.workloads.len()];
                }
                opts.command = command_line(&opts);
                let label = opts.nemesis_label();
                opts.validate()
                    .map_err(|e| RunError::BadArgs(format!("--nemeses {label}: {e}")))?;
                cells.push(Cell {
                    name: format!("{label} n{nodes} #{i}"),
                    group: format!("test-all.{label}"),
                    opts,
                });
            }
        }
    }
    Ok(cells)
}

/// The suite `harness test-all` runs with every flag at its default.
/// For a database other than ours, the kinds it cannot run leave each set
/// (and a set left empty goes, as does one that became the same as a set
/// before it; sets repeated on purpose stay).
pub fn default_matrix(
    network: NetworkKind,
    db: crate::db::DbKind,
    base_seed: u64,
) -> Result<Vec<Cell>, RunError> {
    let mut args = crate::cli::default_test_all(network);
    args.load.db.kind = db;
    let mut sets: Vec<crate::cli::NemesisSet> = Vec::new();
    for mut set in std::mem::take(&mut args.nemeses.0) {
        let had = set.list.kinds.len();
        set.list
            .kinds
            .retain(|k| crate::nemesis::support::unsupported(*k, db, network).is_none());
        let changed = set.list.kinds.len() != had;
        if !changed || (!set.list.kinds.is_empty() && !sets.contains(&set)) {
            sets.push(set);
        }
    }
    args.nemeses.0 = sets;
    cells(&args, base_seed)
}

/// The `harness run` command line that repeats a run with these options.
pub fn command_line(opts: &RunOptions) -> String {
    reproduce_command(&command_for(opts, &opts.nemesis_label()), opts.seed)
}

/// Runs `harness test-all`: the matrix, then the self-test if asked; prints the
/// table and writes JUnit if asked.
pub fn run(args: &TestAllArgs) -> Result<Verdict, RunError> {
    let base_seed = args.load.seed.unwrap_or_else(super::run::random_seed);
    let cells = cells(args, base_seed)?;
    // Checked before any run: a missing feature is bad arguments, now.
    let selftest = args
        .selftest
        .then(|| {
            SelftestPlan::new(
                &[],
                args.test_count,
                base_seed,
                cells.clone(),
                args.load.store.join("selftest"),
                args.load.db.kind,
            )
        })
        .transpose()?;
    println!("test-all: {} runs (first seed {base_seed})", cells.len());
    let (records, trials) = suite::block_on(async {
        let mut records: Vec<RunRecord> = Vec::new();
        let total = cells.len();
        for (i, cell) in cells.into_iter().enumerate() {
            println!(
                "\n=== run {}/{total}: {} (seed {})",
                i + 1,
                cell.name,
                cell.opts.seed
            );
            let r = suite::run_one(cell.name, cell.group, cell.opts).await;
            println!("--- {}", r.line());
            records.push(r);
        }
        let trials = match &selftest {
            Some(plan) => {
                println!(
                    "\n=== self-test: every seeded bug against this suite, {} seed(s) each",
                    plan.seeds
                );
                plan.run().await
            }
            None => Vec::new(),
        };
        (records, trials)
    })?;
    print!("{}", suite::table(&records));
    if selftest.is_some() {
        print!("{}", selftest::table(&trials));
    }
    if let Some(path) = &args.junit {
        let cases: Vec<Case> = records
            .iter()
            .map(Case::from)
            .chain(trials.iter().map(Trial::case))
            .collect();
        junit::write(path, "harness test-all", &cases)
            .map_err(|e| RunError::Store(format!("cannot write {}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    status(&records, &trials)
}

/// Jepsen's test-all status, with the self-test folded in: a bug not
/// caught is as bad as an anomaly, or a crash if one of its attempts
/// crashed (the harness, not the checkers, may be what failed).
fn status(records: &[RunRecord], trials: &[Trial]) -> Result<Verdict, RunError> {
    let attempts_crashed = trials
        .iter()
        .filter(|t| !t.caught())
        .flat_map(|t| &t.runs)
        .any(|r| r.outcome.is_err());
    match suite::exit_status(records) {
        SuiteStatus::Crashed => Err(RunError::Harness(
            "at least one run crashed (see the table)".into(),
        )),
        _ if attempts_crashed => Err(RunError::Harness(
            "a seeded bug was not caught and one of its attempts crashed (see its lines above)"
                .into(),
        )),
        SuiteStatus::Done(_) if !trials.iter().all(Trial::caught) => Ok(Verdict::Invalid),
        SuiteStatus::Done(v) => Ok(v),
    }
}

/// A `harness run` command line that repeats one cell of the matrix.
fn command_for(opts: &crate::run::RunOptions, label: &str) -> Vec<String> {
    let nemesis = if label.is_empty() {
        "none".into()
    } else if opts.power.optional {
        // Only `all` brings power in as optional.
        "all".into()
    } else {
        label.replace('+', ",")
    };
    let flags = [
        ("--nodes", opts.nodes.to_string()),
        ("--nemesis", nemesis),
        ("--time-limit", opts.time_limit.as_secs_f64().to_string()),
        ("--concurrency", opts.concurrency.to_string()),
        ("--rate", opts.rate.to_string()),
        ("--workload", opts.workload.name().into()),
        ("--keys", opts.keys.to_string()),
        ("--ops-per-key", opts.ops_per_key.to_string()),
        (
            "--nemesis-interval",
            opts.nemesis_interval.as_secs_f64().to_string(),
        ),
    ];
    let mut words: Vec<String> = vec!["harness".into(), "run".into()];
    for (flag, value) in flags {
        words.extend([flag.to_string(), value]);
    }
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
    if opts.db != crate::db::DbKind::Raftkv {
        words.extend(["--db".into(), opts.db.name().into()]);
    }
    if let Some(bin) = &opts.node_bin {
        words.extend(["--db-bin".into(), bin.display().to_string()]);
    }
    if opts.serializable_reads {
        words.push("--etcd-serializable-reads".into());
    }
    for a in &opts.node_args {
        words.push(format!("--node-arg={a}"));
    }
    if opts.api != node::client::Api::Unary {
        words.extend(["--api".into(), opts.api.name().into()]);
    }
    if !opts.packet_behaviours.is_empty() && opts.packet_behaviours.len() < Behavior::ALL.len() {
        let names: Vec<&str> = opts.packet_behaviours.iter().map(|b| b.name()).collect();
        words.extend(["--packet-behaviours".into(), names.join(",")]);
    }
    words.extend(["--network".into(), opts.network.name().into()]);
    if let Some(m) = opts.initial_members {
        words.extend(["--initial-members".into(), m.to_string()]);
    }
    if opts.convergence_timeout != crate::run::options::CONVERGENCE_TIMEOUT {
        let secs = opts.convergence_timeout.as_secs_f64();
        words.extend(["--convergence-timeout".into(), secs.to_string()]);
    }
    if matches!(opts.disk(), crate::cluster::DiskKind::Lazy { .. }) {
        if opts.power.loss != crate::nemesis::power::Loss::All {
            words.extend(["--power-loss".into(), opts.power.loss.name().into()]);
        }
        if let Some(m) = opts.power.metadata {
            words.extend(["--lazyfs-metadata".into(), m.to_string()]);
        }
        if !opts.power.fsync_delay.is_zero() {
            let ms = opts.power.fsync_delay.as_secs_f64() * 1e3;
            words.extend(["--fsync-delay".into(), ms.to_string()]);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Finished;

    fn run(verdict: Verdict) -> RunRecord {
        RunRecord {
            name: "kill n3 #1".into(),
            group: "test-all.kill".into(),
            seed: 1,
            seconds: 3.0,
            outcome: Ok(Finished {
                dir: "d".into(),
                verdict,
                ops: (1, 0, 0),
                faults: 1,
                caught_by: vec![],
                anomaly_at: None,
                load_seconds: 3.0,
                summary: String::new(),
            }),
        }
    }

    fn trial(caught: bool, crashed: bool) -> Trial {
        let mut attempt = run(Verdict::Valid);
        if crashed {
            attempt.outcome = Err("no leader".into());
        }
        Trial {
            bug: "stale-read",
            seed: 1,
            cells: 5,
            run_seconds: 20.0,
            caught_after: caught.then_some(7.5),
            wall_seconds: 30.0,
            caught_by: if caught { vec!["linearizable"] } else { vec![] },
            runs: vec![attempt],
        }
    }

    #[test]
    fn the_default_matrix_has_thirteen_cells_and_etcd_runs_the_twelve_it_can() {
        use crate::nemesis::Kind;
        let ours = default_matrix(NetworkKind::Netns, crate::db::DbKind::Raftkv, 1).unwrap();
        let names: Vec<&str> = ours.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names.len(), 13, "{names:?}");
        assert_eq!(names[6], "figure8 n3 #1");
        assert_eq!(names[12], "partition n3 #1");
        // Repeated cells draw their own faults.
        let seeds: std::collections::BTreeSet<u64> = ours.iter().map(|c| c.opts.seed).collect();
        assert_eq!(seeds.len(), 13);
        assert_eq!(ours[9].opts.nodes, 5);
        assert_eq!(ours[9].opts.nemeses, ours[4].opts.nemeses);
        // Membership changes twice: on 3 nodes with wipes, on 5 without.
        assert_eq!(ours[10].opts.nodes, 5);
        assert!(ours[10].opts.nemeses.contains(&Kind::Member), "{names:?}");
        assert!(!ours[10].opts.nemeses.contains(&Kind::Wipe), "{names:?}");
        // Append first: the cells of kills and of `all` run it.
        let workloads: Vec<&str> = ours.iter().map(|c| c.opts.workload.name()).collect();
        assert_eq!(workloads[..3], ["append", "register", "append"]);
        assert!(ours[4].opts.nemeses.contains(&Kind::SlowDisk), "{names:?}");
        let etcd = default_matrix(NetworkKind::Netns, crate::db::DbKind::Etcd, 1).unwrap();
        assert_eq!(etcd.len(), 12);
        assert_eq!(etcd[5].name, "partition+kill n3 #1");
        assert_eq!(etcd[9].name, "partition+kill n5 #1");
        for cell in &etcd {
            for k in [Kind::Figure8, Kind::Member, Kind::Wipe] {
                assert!(!cell.opts.nemeses.contains(&k), "{}", cell.name);
            }
        }
    }

    #[test]
    fn a_set_may_name_its_own_cluster_size() {
        use clap::Parser;
        #[derive(Parser)]
        struct A {
            #[command(flatten)]
            args: crate::cli::TestAllArgs,
        }
        let parse = |nemeses: &str| {
            A::try_parse_from(["test-all", "--nodes", "3,5", "--nemeses", nemeses])
                .map(|a| a.args)
                .map_err(|e| e.to_string())
        };
        let args = parse("kill;all@7").unwrap();
        let names: Vec<String> = cells(&args, 1)
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(names[..2], ["kill n3 #1", "kill n5 #1"]);
        assert!(names[2].ends_with(" n7 #1"), "{names:?}");
        for bad in ["all@0", "all@x", "all@16", "nope@3"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("all@0").unwrap_err().contains("between 1 and 15"));
    }

    #[test]
    fn runs_of_our_node_take_small_appends_unless_the_user_set_them() {
        let matrix = default_matrix(NetworkKind::Netns, crate::db::DbKind::Raftkv, 1).unwrap();
        let mut opts = matrix[0].opts.clone();
        let args = opts.db_spec().args;
        let at = args.iter().position(|a| a == "--max-append-bytes").unwrap();
        assert_eq!(args[at + 1], "64");
        // The node takes a flag once: the user's own is the only one.
        let mut times_given = |mine: &[&str], flag: &str| {
            opts.node_args = mine.iter().map(|a| a.to_string()).collect();
            let args = opts.db_spec().args;
            args.iter().filter(|a| a.starts_with(flag)).count()
        };
        assert_eq!(
            times_given(&["--max-append-bytes=512"], "--max-append-bytes"),
            1
        );
        assert_eq!(
            times_given(&["--max-append-bytes", "512"], "--max-append-bytes"),
            1
        );
        assert_eq!(times_given(&["--snapshot-every=7"], "--snapshot-every"), 1);
        let etcd = default_matrix(NetworkKind::Netns, crate::db::DbKind::Etcd, 1).unwrap();
        assert!(
            !etcd[0]
                .opts
                .db_spec()
                .args
                .iter()
                .any(|a| a.contains("max-append"))
        );
    }

    #[test]
    fn a_cell_is_repeated_by_a_run_command_with_every_option_it_used() {
        let matrix = default_matrix(NetworkKind::Netns, crate::db::DbKind::Raftkv, 7).unwrap();
        let cell = &matrix[1];
        assert_eq!(cell.name, "partition n3 #1");
        let opts = selftest::seeded(
            cell,
            crate::db::DbKind::Raftkv,
            "stale-read",
            9,
            std::path::Path::new("store"),
        );
        let words = command_for(&opts, "partition");
        assert_eq!(
            words.join(" "),
            "harness run --nodes 3 --nemesis partition --time-limit 30 --concurrency 10 \
             --rate 200 --workload register --keys 8 --ops-per-key 200 --nemesis-interval 2 \
             --snapshot-every 100 --node-arg=--bug=stale-read --network netns"
        );
        assert!(opts.command.contains("--seed 9"), "{}", opts.command);
        // The seeded cell differs from the user's only in the bug, seed and store.
        assert_eq!(opts.node_args, ["--bug=stale-read"]);
        assert!(cell.opts.node_args.is_empty());
    }

    #[test]
    fn a_bug_not_caught_fails_the_suite_like_an_anomaly() {
        let valid = [run(Verdict::Valid)];
        assert_eq!(
            status(&valid, &[trial(true, false)]).unwrap(),
            Verdict::Valid
        );
        assert_eq!(
            status(&valid, &[trial(true, false), trial(false, false)]).unwrap(),
            Verdict::Invalid
        );
        // A crash matters only where the bug went uncaught.
        assert_eq!(
            status(&valid, &[trial(true, true)]).unwrap(),
            Verdict::Valid
        );
        assert!(status(&valid, &[trial(false, true)]).is_err());
        // The matrix's own verdicts still count.
        assert_eq!(
            status(&[run(Verdict::Unknown)], &[trial(true, false)]).unwrap(),
            Verdict::Unknown
        );
    }

    #[test]
    fn self_test_cases_pass_when_caught_and_say_why_when_not() {
        let cases = [trial(true, false).case(), trial(false, false).case()];
        let xml = junit::render("harness test-all", &cases);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed");
        let tc: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(tc.len(), 2);
        assert_eq!(tc[0].attribute("classname"), Some("selftest.stale-read"));
        assert!(!tc[0].children().any(|c| c.has_tag_name("failure")));
        let out = tc[0]
            .children()
            .find(|c| c.has_tag_name("system-out"))
            .unwrap();
        assert!(out.text().unwrap().contains("after 7.5 s"), "{xml}");
        let failure = tc[1]
            .children()
            .find(|c| c.has_tag_name("failure"))
            .unwrap();
        assert_eq!(failure.attribute("type"), Some("not-caught"));
        assert!(
            failure
                .attribute("message")
                .unwrap()
                .contains("stale-read not caught"),
            "{xml}"
        );
    }
}
