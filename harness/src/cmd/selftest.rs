//! `harness selftest`: proof that the suite users run finds Raft bugs it
//! was not tuned for. Each seeded bug of the node (built with `--features
//! bugs`) runs against the default `test-all` matrix with its default
//! flags: the only difference from a user's suite is `--node-arg=--bug=NAME`.
//! No bug has a plan, a fault shape, a rate or a node flag of its own. A
//! seed's suite stops at its first anomaly.

use crate::check::Verdict;
use crate::cli::SelftestArgs;
use crate::cmd::test_all::{self, Cell};
use crate::db::DbKind;
use crate::run::RunError;
use crate::suite::junit::{self, Case, CaseOutcome};
use crate::suite::{self, RunRecord};

/// Every seeded bug of `db`: our node's `--bug` names; for etcd, the
/// configurations etcd documents as unsafe (issue 17's known answers).
pub fn all_bugs(db: DbKind) -> Vec<&'static str> {
    match db {
        DbKind::Raftkv => node::config::Bug::ALL.iter().map(|b| b.name()).collect(),
        DbKind::Etcd => ETCD_BUGS.to_vec(),
    }
}

/// etcd's "seeded bugs": serializable reads are served from a member's own
/// state (a lagging or cut-off member answers with an older value);
/// `--unsafe-no-fsync` acknowledges what it never fsynced, lost when the
/// power goes. (etcd 3.4.23 takes the flag, though its --help does not
/// list it.)
pub const ETCD_BUGS: [&str; 2] = ["serializable-reads", "unsafe-no-fsync"];

/// One seed of one bug: the default suite, up to the run that caught it.
#[derive(Debug)]
pub struct Trial {
    /// The bug's name.
    pub bug: &'static str,
    /// Its seed: cell `i` of the suite runs with seed `1000 * seed + i`.
    pub seed: u64,
    /// Cells in the suite.
    pub cells: usize,
    /// Seconds of load spent, until the catch or in all.
    pub run_seconds: f64,
    /// Seconds of load until the anomaly was visible: the load of the cells
    /// before the one that caught the bug, plus how far into that one the
    /// first anomaly was complete (its whole load if no time is known).
    pub caught_after: Option<f64>,
    /// Wall-clock seconds of the suite, set-up and checks included.
    pub wall_seconds: f64,
    /// The checkers that caught it, in the run that did.
    pub caught_by: Vec<&'static str>,
    /// Every run, the one that caught it last.
    pub runs: Vec<RunRecord>,
}

impl Trial {
    /// Whether a checker caught the bug.
    pub fn caught(&self) -> bool {
        !self.caught_by.is_empty()
    }

    /// The trial as a JUnit case: it passes when the bug was caught.
    pub fn case(&self) -> Case {
        let dirs: Vec<String> = self
            .runs
            .iter()
            .map(|r| match &r.outcome {
                Ok(f) => format!("{} {}: {}", r.verdict_word(), r.name, f.dir.display()),
                Err(e) => format!("crashed {}: {e}", r.name),
            })
            .collect();
        let crashed = self.runs.iter().find_map(|r| r.outcome.as_ref().err());
        let outcome = match (self.caught(), crashed) {
            (true, _) => CaseOutcome::Pass,
            (false, Some(e)) => CaseOutcome::Error {
                message: format!("a run crashed: {}", e.lines().next().unwrap_or("")),
                text: e.clone(),
            },
            (false, None) => CaseOutcome::Failure {
                kind: "not-caught".into(),
                message: format!(
                    "seeded bug {} not caught by the default suite ({} runs, {:.0} s of load)",
                    self.bug, self.cells, self.run_seconds
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
            seconds: self.wall_seconds,
            outcome,
            out,
        }
    }
}

/// What a self-test runs: which bugs, how many seeds, which suite.
#[derive(Clone, Debug)]
pub struct SelftestPlan {
    /// The bugs, by `--bug` name.
    pub bugs: Vec<&'static str>,
    /// Seeds per bug.
    pub seeds: u32,
    /// The first seed; seed `i` of a bug is `first_seed + i`.
    pub first_seed: u64,
    /// The suite: the test-all matrix, as a user runs it.
    pub matrix: Vec<Cell>,
    /// Where the runs' directories are created (`<store>/<bug>/seed-<n>/`).
    pub store: std::path::PathBuf,
    /// The database the bugs are seeded into.
    pub db: DbKind,
}

impl SelftestPlan {
    /// Every bug, or the ones named (an unknown name is bad arguments),
    /// against `matrix`.
    pub fn new(
        bugs: &[String],
        seeds: u32,
        first_seed: u64,
        matrix: Vec<Cell>,
        store: std::path::PathBuf,
        db: DbKind,
    ) -> Result<SelftestPlan, RunError> {
        if db == DbKind::Raftkv && !cfg!(feature = "bugs") {
            return Err(RunError::BadArgs(
                "this harness was built without the node's seeded bugs; build it with \
                 `--features bugs` (e.g. `cargo run --release -p harness --features bugs -- selftest`)"
                    .into(),
            ));
        }
        let known = all_bugs(db);
        let bugs = if bugs.is_empty() {
            known
        } else {
            bugs.iter()
                .map(|b| {
                    known.iter().copied().find(|k| k == b).ok_or_else(|| {
                        RunError::BadArgs(format!(
                            "--bugs {b}: unknown; known bugs are {}",
                            known.join(", ")
                        ))
                    })
                })
                .collect::<Result<_, _>>()?
        };
        if db == DbKind::Raftkv && matrix.iter().any(|c| c.opts.node_bin.is_some()) {
            return Err(RunError::BadArgs(
                "the self-test seeds bugs into this harness's own node; --node-bin cannot be used"
                    .into(),
            ));
        }
        Ok(SelftestPlan {
            bugs,
            seeds,
            first_seed,
            matrix,
            store,
            db,
        })
    }

    /// Runs every seed of every bug, printing a line as each ends.
    pub async fn run(&self) -> Vec<Trial> {
        let mut trials = Vec::new();
        for &bug in &self.bugs {
            for i in 0..self.seeds {
                let seed = self.first_seed + u64::from(i);
                let t = self.trial(bug, seed).await;
                println!(
                    "=== {bug:<24} seed {seed:<4} {}",
                    match t.caught_after {
                        Some(after) if t.caught() => format!(
                            "caught by {} after {after:.1} s of run time ({} of {} runs)",
                            t.caught_by.join(", "),
                            t.runs.len(),
                            t.cells
                        ),
                        _ => format!(
                            "NOT caught by the default suite ({} runs, {} crashed, {:.0} s of run time)",
                            t.runs.len(),
                            t.runs.iter().filter(|r| r.outcome.is_err()).count(),
                            t.run_seconds
                        ),
                    }
                );
                trials.push(t);
            }
        }
        trials
    }

    /// The default suite with `bug` seeded, until a checker catches it.
    async fn trial(&self, bug: &'static str, seed: u64) -> Trial {
        let started = std::time::Instant::now();
        let mut t = Trial {
            bug,
            seed,
            cells: self.matrix.len(),
            run_seconds: 0.0,
            caught_after: None,
            wall_seconds: 0.0,
            caught_by: Vec::new(),
            runs: Vec::new(),
        };
        for (i, cell) in self.matrix.iter().enumerate() {
            let opts = seeded(
                cell,
                self.db,
                bug,
                seed * 1000 + i as u64,
                &self.store.join(bug).join(format!("seed-{seed}")),
            );
            let name = format!("{bug} seed {seed}: {}", cell.name);
            let r = suite::run_one(name, format!("selftest.{bug}"), opts).await;
            println!("--- {}", r.line());
            let before = t.run_seconds;
            if let Ok(f) = &r.outcome {
                t.run_seconds += f.load_seconds;
                if !f.caught_by.is_empty() {
                    t.caught_by = f.caught_by.clone();
                    // An anomaly may first show in the recovery phase (a
                    // lost write at the final reads), after the load.
                    let at = f.anomaly_at.unwrap_or(f.load_seconds).min(f.load_seconds);
                    t.caught_after = Some(before + at);
                }
            }
            t.runs.push(r);
            if t.caught() {
                break;
            }
        }
        t.wall_seconds = started.elapsed().as_secs_f64();
        t
    }
}

/// A cell of the user's suite with `bug` seeded: `--node-arg=--bug=NAME`
/// and nothing else changed but the seed and where it is stored. For etcd:
/// `--etcd-serializable-reads`, or `--db-arg=--unsafe-no-fsync` with torn
/// power losses (losing every unsynced byte takes a member's whole WAL,
/// membership included: the cluster never elects again, and the run can
/// only end unknown).
pub fn seeded(
    cell: &Cell,
    db: DbKind,
    bug: &str,
    seed: u64,
    store: &std::path::Path,
) -> crate::run::RunOptions {
    let mut opts = cell.opts.clone();
    opts.seed = seed;
    opts.store = store.to_path_buf();
    match (db, bug) {
        (DbKind::Etcd, "serializable-reads") => opts.serializable_reads = true,
        (DbKind::Etcd, _) => {
            opts.node_args.push(format!("--{bug}"));
            opts.power.loss = crate::nemesis::power::Loss::Torn;
        }
        (DbKind::Raftkv, _) => opts.node_args.push(format!("--bug={bug}")),
    }
    opts.command = test_all::command_line(&opts);
    opts
}

/// Runs `harness selftest`: every trial, the table, JUnit if asked. `Valid`
/// (exit 0) only if every bug was caught for every seed.
pub fn run(args: &SelftestArgs) -> Result<Verdict, RunError> {
    let matrix = test_all::default_matrix(args.network.kind(), args.db, args.first_seed)?;
    let plan = SelftestPlan::new(
        &args.bugs,
        args.seeds,
        args.first_seed,
        matrix,
        args.store.clone(),
        args.db,
    )?;
    println!(
        "selftest: {} bugs × {} seeds against the default suite ({} runs each, stopped at the first anomaly)",
        plan.bugs.len(),
        plan.seeds,
        plan.matrix.len()
    );
    let trials = suite::block_on(plan.run())?;
    print!("{}", table(&trials));
    if let Some(path) = &args.junit {
        let cases: Vec<Case> = trials.iter().map(Trial::case).collect();
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

/// Per bug: how many seeds caught it, by which checkers, how fast (seconds
/// of load into the suite until the first anomaly: median and worst), and
/// the wall time of its slowest seed.
pub fn table(trials: &[Trial]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<24} {:>7} {:>9} {:>9} {:>9}  checkers",
        "bug", "caught", "median s", "worst s", "wall s"
    );
    let mut bugs: Vec<&str> = trials.iter().map(|t| t.bug).collect();
    bugs.dedup();
    for bug in bugs {
        let mine: Vec<&Trial> = trials.iter().filter(|t| t.bug == bug).collect();
        let mut secs: Vec<f64> = mine.iter().filter_map(|t| t.caught_after).collect();
        secs.sort_by(f64::total_cmp);
        let mut checkers: Vec<(&str, usize)> = Vec::new();
        for c in mine.iter().flat_map(|t| t.caught_by.iter().copied()) {
            match checkers.iter_mut().find(|(n, _)| *n == c) {
                Some(e) => e.1 += 1,
                None => checkers.push((c, 1)),
            }
        }
        let wall = mine.iter().map(|t| t.wall_seconds).fold(0.0, f64::max);
        let fmt = |x: Option<&f64>| x.map_or("-".to_string(), |s| format!("{s:.1}"));
        let caught = mine.iter().filter(|t| t.caught()).count();
        let _ = writeln!(
            out,
            "{bug:<24} {:>3}/{:<3} {:>9} {:>9} {:>9.0}  {}",
            caught,
            mine.len(),
            fmt(secs.get(secs.len().saturating_sub(1) / 2)),
            fmt(secs.last()),
            wall,
            checkers
                .iter()
                .map(|(c, n)| format!("{c} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}
