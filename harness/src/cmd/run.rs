//! `harness run`: turns the flags into [`RunOptions`] and runs, stopping
//! the cluster cleanly on Ctrl-C.

use std::time::Duration;

use crate::check::Verdict;
use crate::cli::{LoadArgs, RunArgs};
use crate::nemesis::NemesisList;
use crate::run::options::PowerOptions;
use crate::run::{self, RunError, RunOptions};

impl LoadArgs {
    /// The options of one run; `command` is the command line to print as
    /// "reproduce with". `all` in `nemeses` means what the network can do.
    pub fn to_options(&self, nodes: usize, nemeses: &NemesisList, command: String) -> RunOptions {
        let network = self.network.kind();
        RunOptions {
            nodes,
            time_limit: Duration::from_secs_f64(self.time_limit),
            concurrency: self.concurrency,
            rate: self.rate,
            workload: self.workload,
            keys: self.keys,
            ops_per_key: self.ops_per_key,
            nemeses: nemeses.resolve(network),
            nemesis_interval: Duration::from_secs_f64(self.nemesis_interval),
            partition_shapes: self.partition_shapes.clone(),
            fault_targets: self.fault_targets.clone(),
            packet_behaviours: self.packet_behaviours.0.clone(),
            network,
            seed: self.seed.unwrap_or_else(random_seed),
            store: self.store.clone(),
            db: self.db.kind,
            serializable_reads: self.etcd_serializable_reads,
            node_bin: self.db.bin.clone(),
            no_check: false,
            snapshot_every: self
                .snapshot_every
                .or((self.db.kind == crate::db::DbKind::Raftkv)
                    .then_some(crate::run::options::DEFAULT_SNAPSHOT_EVERY)),
            check_budget: self.budget.duration(),
            node_args: self.db.args.clone(),
            api: self.api,
            initial_members: self.initial_members,
            convergence_timeout: Duration::from_secs_f64(self.convergence_timeout),
            command,
            power: PowerOptions {
                loss: self.power_loss,
                metadata: self.lazyfs_metadata,
                fsync_delay: Duration::from_secs_f64(self.fsync_delay / 1e3),
                optional: nemeses.all,
            },
        }
    }
}

/// A seed nobody chose: from the clock and the pid, printed with the run.
pub fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ (std::process::id() as u64).rotate_left(32)) % 1_000_000_000
}

/// The command line that reproduces a run: ours, with `--seed` added when
/// it was left out.
pub fn reproduce_command(args: &[String], seed: u64) -> String {
    let mut words: Vec<String> = args.to_vec();
    if let Some(first) = words.first_mut() {
        *first = "harness".into();
    }
    if !words
        .iter()
        .any(|w| w == "--seed" || w.starts_with("--seed="))
    {
        words.push("--seed".into());
        words.push(seed.to_string());
    }
    words.join(" ")
}

/// Runs `harness run` with the command line that reproduces it.
pub fn run(args: &RunArgs) -> Result<Verdict, RunError> {
    let mut opts = args
        .load
        .to_options(args.nodes, &args.nemesis, String::new());
    opts.no_check = args.no_check;
    let argv: Vec<String> = std::env::args().collect();
    opts.command = reproduce_command(&argv, opts.seed);
    run_options(opts)
}

/// Ctrl-C drops the run, whose cluster kills every node it started.
pub fn run_options(opts: RunOptions) -> Result<Verdict, RunError> {
    crate::suite::block_on(run::run(opts))?.map(|o| o.verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduce_command_pins_the_seed() {
        let argv: Vec<String> = ["/x/harness", "run", "--nemesis", "kill"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            reproduce_command(&argv, 42),
            "harness run --nemesis kill --seed 42"
        );
        let argv: Vec<String> = ["h", "run", "--seed=7"].map(String::from).to_vec();
        assert_eq!(reproduce_command(&argv, 7), "harness run --seed=7");
    }
}
