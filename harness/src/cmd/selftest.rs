//! `harness selftest`: proof that the harness still finds real Raft bugs.
//! Each seeded bug of the node (built with `--features bugs`) runs with the
//! faults and workload that should expose it, on fresh clusters, until a
//! checker catches it or its run-time allowance is spent.

use std::time::Duration;

use crate::check::Verdict;
use crate::cli::SelftestArgs;
use crate::db::DbKind;
use crate::nemesis::Kind;
use crate::nemesis::power::Loss;
use crate::nemesis::shapes::Shape;
use crate::nemesis::targets::Target;
use crate::net::NetworkKind;
use crate::run::{RunError, RunOptions};
use crate::suite::junit::{self, Case, CaseOutcome};
use crate::suite::{self, RunRecord};
use crate::workload::Workload;

/// How to expose one bug: the faults and load a tester would pick for it.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The node's name for the bug (`--bug NAME`).
    pub bug: &'static str,
    /// Nodes in the cluster.
    pub nodes: usize,
    /// The faults that should expose it.
    pub nemeses: &'static [Kind],
    /// The operations that should show it.
    pub workload: Workload,
    /// Mean seconds between fault starts and stops.
    pub interval: f64,
    /// Partition shapes (empty: all).
    pub shapes: &'static [Shape],
    /// Kill and pause targets (empty: all).
    pub targets: &'static [Target],
    /// Keys in use at once: few, so that operations meet on them.
    pub keys: usize,
    /// Operations per second in total.
    pub rate: f64,
    /// Client workers.
    pub concurrency: usize,
    /// Node flags besides `--bug`: configuration a tester would pick for
    /// the scenario, never a change to the bug.
    pub node_args: &'static [&'static str],
    /// The database: our node (its `--bug NAME`), or etcd run in a
    /// configuration etcd documents as unsafe.
    pub db: DbKind,
    /// etcd: serializable reads.
    pub serializable_reads: bool,
    /// What a power cut loses (with `power`).
    pub power_loss: Loss,
}

/// The bugs the self-test knows, each with its plan.
pub const PLANS: [Plan; 6] = [
    // A deposed leader keeps answering reads from its own state. Cut the
    // leader off: until check-quorum deposes it (one to two election
    // timeouts later) it still answers reads, while the others elect a
    // leader and commit writes. In 16 caught runs, 15 anomalies fell in
    // that window, ~0.4 s into an isolate-leader partition, and one after a
    // paused leader resumed; pauses mostly froze the window away, so the
    // plan cuts links only. Clients homed at the old leader spend most of
    // the window stuck on writes it cannot commit: more of them are free
    // to read when there are more clients.
    Plan {
        bug: "stale-read",
        nodes: 3,
        nemeses: &[Kind::Partition],
        workload: Workload::Register,
        interval: 1.0,
        shapes: &[Shape::IsolateLeader],
        targets: &[],
        keys: 2,
        rate: 500.0,
        concurrency: 30,
        node_args: &[],
        db: DbKind::Raftkv,
        serializable_reads: false,
        power_loss: Loss::All,
    },
    // A lagging node wins an election and overwrites committed entries.
    // A bridge cuts one end off from the leader while it still reaches the
    // middle node, so it falls behind yet can win the middle's vote once
    // the kills take the leader away.
    Plan {
        bug: "vote-any-log",
        nodes: 3,
        nemeses: &[Kind::Partition, Kind::Kill],
        workload: Workload::Register,
        interval: 1.0,
        shapes: &[Shape::Bridge],
        targets: &[],
        keys: 4,
        rate: 300.0,
        concurrency: 10,
        node_args: &[],
        db: DbKind::Raftkv,
        serializable_reads: false,
        power_loss: Loss::All,
    },
    // Random faults never get there (a new leader's own entry travels with
    // the older ones): the figure8 nemesis walks the cluster through the
    // paper's Figure 8. The old-term entries must need more than one
    // AppendEntries, as for a follower far behind; a 512-byte bound makes
    // "far behind" the few dozen writes a cut-off leader collects.
    Plan {
        bug: "commit-old-term",
        nodes: 3,
        nemeses: &[Kind::Figure8],
        workload: Workload::Register,
        interval: 1.0,
        shapes: &[],
        targets: &[],
        keys: 4,
        rate: 500.0,
        concurrency: 30,
        node_args: &["--max-append-bytes=512"],
        db: DbKind::Raftkv,
        serializable_reads: false,
        power_loss: Loss::All,
    },
    // Acknowledged writes still in a user-space buffer die with kill -9:
    // whole-cluster and majority crashes, Jepsen's durability nemesis.
    Plan {
        bug: "lazy-persist",
        nodes: 3,
        nemeses: &[Kind::Kill],
        workload: Workload::Register,
        interval: 1.5,
        shapes: &[],
        targets: &[Target::All, Target::Majority],
        keys: 4,
        rate: 300.0,
        concurrency: 10,
        node_args: &[],
        db: DbKind::Raftkv,
        serializable_reads: false,
        power_loss: Loss::All,
    },
    // A retried append applied twice shows as a duplicate token: kills and
    // pauses of the leader leave requests in doubt after they were
    // replicated, and clients retry them at the next leader.
    Plan {
        bug: "no-dedup",
        nodes: 3,
        nemeses: &[Kind::Kill, Kind::Pause],
        workload: Workload::Append,
        interval: 2.0,
        shapes: &[],
        targets: &[Target::Leader],
        keys: 4,
        rate: 300.0,
        concurrency: 10,
        node_args: &[],
        db: DbKind::Raftkv,
        serializable_reads: false,
        power_loss: Loss::All,
    },
    // A follower that lost the tail of its log (issue 19's finding 2) is
    // never caught up while that leader stays. Power cuts of one node at a
    // time, on nodes that never fsync: each cut throws away what the node
    // acknowledged since it started; the node comes back behind the match
    // index its leader recorded. Only the convergence checker sees it: the
    // others hold the data.
    Plan {
        bug: "ignore-lost-tail",
        nodes: 3,
        nemeses: &[Kind::Power],
        workload: Workload::Register,
        interval: 2.0,
        shapes: &[],
        targets: &[Target::One],
        keys: 4,
        rate: 200.0,
        concurrency: 10,
        node_args: &["--fsync=never"],
        db: DbKind::Raftkv,
        serializable_reads: false,
        power_loss: Loss::All,
    },
];

/// etcd's "seeded bugs": configurations etcd documents as unsafe, which
/// the harness must find invalid (issue 17's known answers).
pub const ETCD_PLANS: [Plan; 2] = [
    // Serializable reads are served from a member's own state: a follower
    // that has not yet applied a write, or a member cut off from the
    // leader, answers with an older value.
    Plan {
        bug: "serializable-reads",
        nodes: 3,
        nemeses: &[Kind::Partition],
        workload: Workload::Register,
        interval: 3.0,
        shapes: &[Shape::IsolateOne, Shape::IsolateLeader, Shape::RandomHalves],
        targets: &[],
        keys: 2,
        rate: 300.0,
        concurrency: 15,
        node_args: &[],
        db: DbKind::Etcd,
        serializable_reads: true,
        power_loss: Loss::All,
    },
    // A member that acknowledges what it never fsynced loses it when the
    // power goes; whole-cluster and majority cuts lose it for good. Torn:
    // losing every unsynced byte takes each member's whole WAL, membership
    // included, and the cluster never elects again (unknown: no final read
    // shows the loss); a random prefix kept brings members back with logs
    // that lack acknowledged entries. (etcd 3.4.23 takes the flag, though
    // its --help does not list it.)
    Plan {
        bug: "unsafe-no-fsync",
        nodes: 3,
        nemeses: &[Kind::Power],
        workload: Workload::Register,
        interval: 3.0,
        shapes: &[],
        targets: &[Target::All, Target::Majority],
        keys: 4,
        rate: 300.0,
        concurrency: 10,
        node_args: &["--unsafe-no-fsync"],
        db: DbKind::Etcd,
        serializable_reads: false,
        power_loss: Loss::Torn,
    },
];

/// One seed of one bug.
#[derive(Debug)]
pub struct Trial {
    /// The bug's name.
    pub bug: &'static str,
    /// Its seed: attempt `i` runs with seed `1000 * seed + i`.
    pub seed: u64,
    /// Run time (load) spent, until the catch or in all.
    pub run_seconds: f64,
    /// Run time until the anomaly was visible: the load of the attempts
    /// before the one that caught the bug, plus how far into that one the
    /// first anomaly was complete (its whole load if no time is known).
    pub caught_after: Option<f64>,
    /// The checkers that caught it, in the run that did.
    pub caught_by: Vec<&'static str>,
    /// Every attempt, the one that caught it last.
    pub runs: Vec<RunRecord>,
}

impl Trial {
    /// Whether a checker caught the bug.
    pub fn caught(&self) -> bool {
        !self.caught_by.is_empty()
    }

    /// The trial as a JUnit case: it passes when the bug was caught.
    pub fn case(&self, within: f64) -> Case {
        let dirs: Vec<String> = self
            .runs
            .iter()
            .map(|r| match &r.outcome {
                Ok(f) => format!("{}: {}", r.verdict_word(), f.dir.display()),
                Err(e) => format!("crashed: {e}"),
            })
            .collect();
        let crashed = self.runs.iter().find_map(|r| r.outcome.as_ref().err());
        let outcome = match (self.caught(), crashed) {
            (true, _) => CaseOutcome::Pass,
            (false, Some(e)) => CaseOutcome::Error {
                message: format!("an attempt crashed: {}", e.lines().next().unwrap_or("")),
                text: e.clone(),
            },
            (false, None) => CaseOutcome::Failure {
                kind: "not-caught".into(),
                message: format!(
                    "seeded bug {} not caught in {:.0} s of run time (allowed {within:.0} s)",
                    self.bug, self.run_seconds
                ),
                text: dirs.join("\n"),
            },
        };
        let out = match self.caught_after {
            Some(t) => format!(
                "caught by {} after {t:.1} s of run time\n{}",
                self.caught_by.join(", "),
                dirs.join("\n")
            ),
            None => dirs.join("\n"),
        };
        Case {
            group: format!("selftest.{}", self.bug),
            name: format!("{} seed {}", self.bug, self.seed),
            seconds: self.runs.iter().map(|r| r.seconds).sum(),
            outcome,
            out,
        }
    }
}

/// What a self-test runs: which bugs, how many seeds, how long.
#[derive(Clone, Debug)]
pub struct SelftestPlan {
    /// The bugs to run, each with its plan.
    pub plans: Vec<Plan>,
    /// Seeds per bug.
    pub seeds: u32,
    /// The first seed; seed `i` of a bug is `first_seed + i`.
    pub first_seed: u64,
    /// Seconds of load allowed to catch each bug.
    pub within: f64,
    /// Seconds of load per attempt on a fresh cluster.
    pub attempt: f64,
    /// Where the attempts' run directories are created.
    pub store: std::path::PathBuf,
    /// The network of every attempt.
    pub network: NetworkKind,
}

/// The plans of `db`'s bugs: every one, or the ones named (an unknown
/// name is bad arguments; our node's need a build with `--features bugs`).
pub fn chosen(bugs: &[String], db: DbKind) -> Result<Vec<Plan>, RunError> {
    let all: &[Plan] = match db {
        DbKind::Raftkv => &PLANS,
        DbKind::Etcd => &ETCD_PLANS,
    };
    if db == DbKind::Raftkv && !cfg!(feature = "bugs") {
        return Err(RunError::BadArgs(
            "this harness was built without the node's seeded bugs; build it with \
             `--features bugs` (e.g. `cargo run --release -p harness --features bugs -- selftest`)"
                .into(),
        ));
    }
    if bugs.is_empty() {
        return Ok(all.to_vec());
    }
    bugs.iter()
        .map(|b| {
            all.iter().find(|p| p.bug == b).cloned().ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(|p| p.bug).collect();
                RunError::BadArgs(format!(
                    "--bugs {b}: unknown; known bugs are {}",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

impl SelftestPlan {
    /// `plans` (from [`chosen`]), `seeds` seeds each from `first_seed`.
    pub fn new(
        plans: Vec<Plan>,
        seeds: u32,
        first_seed: u64,
        within: f64,
        attempt: f64,
        store: std::path::PathBuf,
        network: NetworkKind,
    ) -> SelftestPlan {
        SelftestPlan {
            plans,
            seeds,
            first_seed,
            within,
            attempt,
            store,
            network,
        }
    }

    /// Runs every seed of every bug, printing a line as each ends.
    pub async fn run(&self) -> Vec<Trial> {
        let mut trials = Vec::new();
        for plan in &self.plans {
            for i in 0..self.seeds {
                let seed = self.first_seed + u64::from(i);
                let t = trial(plan, seed, self).await;
                println!(
                    "=== {:<16} seed {seed:<4} {}",
                    plan.bug,
                    match t.caught_after {
                        Some(after) if t.caught() => format!(
                            "caught by {} after {after:.1} s of run time",
                            t.caught_by.join(", "),
                        ),
                        _ => format!("NOT caught in {:.0} s of run time", t.run_seconds),
                    }
                );
                trials.push(t);
            }
        }
        trials
    }
}

/// Runs `harness selftest`: every trial, the table, JUnit if asked. `Valid`
/// (exit 0) only if every bug was caught for every seed.
pub fn run(args: &SelftestArgs) -> Result<Verdict, RunError> {
    let plan = SelftestPlan::new(
        chosen(&args.bugs, args.db)?,
        args.seeds,
        args.first_seed,
        args.within,
        args.attempt,
        args.store.clone(),
        args.network.kind(),
    );
    let trials = suite::block_on(plan.run())?;
    print!("{}", table(&trials));
    if let Some(path) = &args.junit {
        let cases: Vec<Case> = trials.iter().map(|t| t.case(plan.within)).collect();
        junit::write(path, "harness selftest", &cases)
            .map_err(|e| RunError::Store(format!("cannot write {}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    Ok(if trials.iter().all(Trial::caught) {
        Verdict::Valid
    } else {
        Verdict::Invalid
    })
}

/// Fresh clusters, one attempt after another, until a checker catches the
/// bug or `within` seconds of load have run.
async fn trial(plan: &Plan, seed: u64, st: &SelftestPlan) -> Trial {
    let mut t = Trial {
        bug: plan.bug,
        seed,
        run_seconds: 0.0,
        caught_after: None,
        caught_by: Vec::new(),
        runs: Vec::new(),
    };
    let mut attempt = 0u64;
    while t.run_seconds + 1.0 < st.within {
        let secs = st.attempt.min(st.within - t.run_seconds);
        let opts = options(plan, seed * 1000 + attempt, secs, &st.store, st.network);
        let name = format!("{} seed {seed} attempt {}", plan.bug, attempt + 1);
        let r = suite::run_one(name, format!("selftest.{}", plan.bug), opts).await;
        println!("--- {}", r.line());
        let before = t.run_seconds;
        t.run_seconds += secs;
        attempt += 1;
        let caught = r.outcome.as_ref().ok().filter(|f| !f.caught_by.is_empty());
        if let Some(f) = caught {
            t.caught_by = f.caught_by.clone();
            // An anomaly may first show in the recovery phase (a lost
            // write at the final reads), after the load.
            t.caught_after = Some(before + f.anomaly_at.unwrap_or(f.load_seconds));
        }
        t.runs.push(r);
        if t.caught() {
            break;
        }
    }
    t
}

/// The options of one attempt at `plan` with `seed`, for `secs` seconds of
/// load, on `network`.
pub fn options(
    plan: &Plan,
    seed: u64,
    secs: f64,
    store: &std::path::Path,
    network: NetworkKind,
) -> RunOptions {
    let label = plan
        .nemeses
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(",");
    let interval = plan.interval;
    // Our node's bugs are switched on by name; etcd's are configurations.
    let bug_arg: Vec<String> = match plan.db {
        DbKind::Raftkv => vec![format!("--bug={}", plan.bug)],
        DbKind::Etcd => Vec::new(),
    };
    RunOptions {
        nodes: plan.nodes,
        time_limit: Duration::from_secs_f64(secs),
        concurrency: plan.concurrency,
        rate: plan.rate,
        workload: plan.workload,
        keys: plan.keys,
        ops_per_key: 200,
        nemeses: plan.nemeses.to_vec(),
        nemesis_interval: Duration::from_secs_f64(interval),
        partition_shapes: plan.shapes.to_vec(),
        fault_targets: plan.targets.to_vec(),
        packet_behaviours: Vec::new(),
        network,
        seed,
        store: store.join(plan.bug),
        db: plan.db,
        serializable_reads: plan.serializable_reads,
        node_bin: None,
        no_check: false,
        snapshot_every: None,
        check_budget: Duration::from_secs(60),
        api: node::client::Api::Unary,
        power: crate::run::options::PowerOptions {
            loss: plan.power_loss,
            ..Default::default()
        },
        initial_members: None,
        convergence_timeout: crate::run::options::CONVERGENCE_TIMEOUT,
        node_args: bug_arg
            .iter()
            .cloned()
            .chain(plan.node_args.iter().map(|a| a.to_string()))
            .collect(),
        command: format!(
            "harness run{} --nodes {} --nemesis {label} --nemesis-interval {interval}{} --workload {} \
             --keys {} --rate {} --concurrency {} --time-limit {secs}{}{} \
             --network {network} --seed {seed}{}",
            match plan.db {
                DbKind::Raftkv => String::new(),
                DbKind::Etcd if plan.serializable_reads =>
                    " --db etcd --etcd-serializable-reads".into(),
                DbKind::Etcd => " --db etcd".into(),
            },
            plan.nodes,
            {
                let mut extra = String::new();
                if !plan.shapes.is_empty() {
                    let names: Vec<&str> = plan.shapes.iter().map(|s| s.name()).collect();
                    extra += &format!(" --partition-shapes {}", names.join(","));
                }
                if !plan.targets.is_empty() {
                    let names: Vec<&str> = plan.targets.iter().map(|t| t.name()).collect();
                    extra += &format!(" --fault-targets {}", names.join(","));
                }
                extra
            },
            plan.workload.name(),
            plan.keys,
            plan.rate,
            plan.concurrency,
            bug_arg
                .iter()
                .map(|a| format!(" --node-arg={a}"))
                .collect::<String>(),
            plan.node_args
                .iter()
                .map(|a| format!(" --node-arg={a}"))
                .collect::<String>(),
            if plan.power_loss == Loss::All {
                String::new()
            } else {
                format!(" --power-loss {}", plan.power_loss.name())
            }
        ),
    }
}

/// Per bug: how many seeds caught it, by which checkers, and how fast.
pub fn table(trials: &[Trial]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<16} {:>7} {:>12} {:>12}  checkers",
        "bug", "caught", "median s", "max s"
    );
    let mut bugs: Vec<&str> = trials.iter().map(|t| t.bug).collect();
    bugs.dedup();
    for bug in bugs {
        let mine: Vec<&Trial> = trials.iter().filter(|t| t.bug == bug).collect();
        let mut secs: Vec<f64> = mine.iter().filter_map(|t| t.caught_after).collect();
        secs.sort_by(f64::total_cmp);
        let mut checkers: Vec<&str> = mine
            .iter()
            .flat_map(|t| t.caught_by.iter().copied())
            .collect();
        checkers.sort();
        checkers.dedup();
        let fmt = |x: Option<&f64>| x.map_or("-".to_string(), |s| format!("{s:.1}"));
        let _ = writeln!(
            out,
            "{bug:<16} {:>3}/{:<3} {:>12} {:>12}  {}",
            secs.len(),
            mine.len(),
            fmt(secs.get(secs.len() / 2)),
            fmt(secs.last()),
            checkers.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_plans_are_configurations_not_bug_flags() {
        let plans = chosen(&[], DbKind::Etcd).unwrap();
        let names: Vec<&str> = plans.iter().map(|p| p.bug).collect();
        assert_eq!(names, ["serializable-reads", "unsafe-no-fsync"]);
        let store = std::path::Path::new("/tmp/s");
        let reads = options(&plans[0], 1, 10.0, store, NetworkKind::Netns);
        assert!(reads.serializable_reads && reads.db == DbKind::Etcd);
        assert!(reads.node_args.is_empty(), "{:?}", reads.node_args);
        assert!(reads.validate().is_ok());
        let fsync = options(&plans[1], 1, 10.0, store, NetworkKind::Netns);
        assert_eq!(fsync.node_args, ["--unsafe-no-fsync"]);
        assert_eq!(fsync.power.loss, Loss::Torn);
        assert!(
            fsync.command.contains("--db etcd")
                && fsync.command.contains("--node-arg=--unsafe-no-fsync")
                && fsync.command.contains("--power-loss torn")
                && !fsync.command.contains("--bug"),
            "{}",
            fsync.command
        );
        let e = chosen(&["stale-read".into()], DbKind::Etcd).unwrap_err();
        assert!(e.to_string().contains("serializable-reads"), "{e}");
    }
}
