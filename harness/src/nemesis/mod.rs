//! Faults. Every nemesis has the same two verbs: `start` injects a fault and
//! `stop` undoes it; both say what they did, for the history.
//!
//! - `targets`: which nodes a fault hits (one, the leader, a minority, a
//!   majority, all).
//! - `process`: `kill` (SIGKILL, later a restart on the same data dir) and
//!   `pause` (SIGSTOP, later SIGCONT).
//! - `power`: `power` (SIGKILL and a power-off of the node's lazyfs disk,
//!   later a restart on what survived).
//! - `partition`: the nemesis that cuts links through the proxies, in the
//!   `shapes` of network partitions (pure functions).
//! - `schedule`: when faults start and stop during a run.
//! - `figure8`: a scripted sequence of partitions and slow links that walks
//!   the cluster through Figure 8 of the Raft paper.

pub mod figure8;
pub mod partition;
pub mod power;
pub mod process;
pub mod schedule;
pub mod shapes;
pub mod targets;

use std::fmt;

use serde_json::Value;

use crate::cluster::{Cluster, ClusterError};
use crate::rng::Rng;
use process::Signal;

/// The kinds of fault, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Network partitions through the proxies.
    Partition,
    /// SIGKILL, then a restart on the same data dir.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// Figure 8 of the Raft paper, played with partitions and slow links.
    Figure8,
    /// SIGKILL and a power-off of the disk (what was not durable is lost),
    /// then a restart on what survived. Needs FUSE.
    Power,
}

impl Kind {
    /// What `all` means: the faults that mix freely (`power` only where
    /// FUSE can run: [`NemesisList::power_optional`]). `figure8` steers the
    /// network itself, so it is only ever asked for by name.
    pub const ALL: [Kind; 4] = [Kind::Partition, Kind::Kill, Kind::Pause, Kind::Power];
    /// Every kind `--nemesis` accepts by name.
    pub const KNOWN: [Kind; 5] = [
        Kind::Partition,
        Kind::Kill,
        Kind::Pause,
        Kind::Figure8,
        Kind::Power,
    ];

    /// The name on the command line and in the history (`start-<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Partition => "partition",
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Figure8 => "figure8",
            Kind::Power => "power",
        }
    }

    /// Parses `--nemesis`: `none`, `all`, or a comma list of kinds.
    pub fn parse_list(s: &str) -> Result<Vec<Kind>, String> {
        let s = s.trim();
        if s == "none" {
            return Ok(Vec::new());
        }
        if s == "all" {
            return Ok(Kind::ALL.to_vec());
        }
        let mut kinds = Vec::new();
        for part in s.split(',').map(str::trim) {
            let k = Kind::KNOWN
                .into_iter()
                .find(|k| k.name() == part)
                .ok_or_else(|| {
                    format!(
                        "unknown nemesis `{part}`; known: none, all, partition, kill, pause, figure8, power"
                    )
                })?;
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        kinds.sort();
        if kinds.contains(&Kind::Figure8) && kinds.contains(&Kind::Partition) {
            return Err("figure8 shapes the network itself; it cannot run with partition".into());
        }
        Ok(kinds)
    }

    /// Runs this nemesis until the schedule ends. `shapes`: the partition
    /// shapes to draw from; `targets`: the nodes kills, pauses and power
    /// cuts hit (empty: all of them); `loss`: what a power cut loses.
    #[allow(clippy::too_many_arguments)]
    pub async fn run(
        self,
        shapes: Vec<shapes::Shape>,
        targets: Vec<targets::Target>,
        loss: power::Loss,
        schedule: schedule::Schedule,
        shared: std::sync::Arc<schedule::Shared>,
        seed: u64,
    ) {
        let nemesis: Box<dyn Nemesis> = match self {
            Kind::Partition => Box::new(partition::PartitionNemesis::with_shapes(shapes)),
            Kind::Kill => Box::new(process::ProcessNemesis::new(Signal::Kill, targets)),
            Kind::Pause => Box::new(process::ProcessNemesis::new(Signal::Pause, targets)),
            Kind::Power => Box::new(power::PowerNemesis::new(targets, loss)),
            Kind::Figure8 => return figure8::run(schedule, shared, seed).await,
        };
        schedule::run(nemesis, schedule, shared, seed).await
    }
}

/// `--nemesis` as given: the kinds, and whether `power` came with `all`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NemesisList {
    /// The kinds, sorted.
    pub kinds: Vec<Kind>,
    /// `power` came with `all`: it runs only where FUSE can (asked for by
    /// name, it must run or the run does not start).
    pub power_optional: bool,
}

impl NemesisList {
    /// Parses `--nemesis`, as [`Kind::parse_list`].
    pub fn parse(s: &str) -> Result<NemesisList, String> {
        Ok(NemesisList {
            kinds: Kind::parse_list(s)?,
            power_optional: s.trim() == "all",
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a nemesis may use to act.
pub struct Ctx<'a> {
    /// The cluster to act on.
    pub cluster: &'a mut Cluster,
    /// The current leader, if one was found just before acting.
    pub leader: Option<String>,
    /// The nemesis's own random numbers, seeded for the run.
    pub rng: &'a mut Rng,
}

/// A fault injector. `start` is only called when no fault of this nemesis
/// is in force, `stop` only when one is.
pub trait Nemesis: Send {
    /// Which kind of fault it injects.
    fn kind(&self) -> Kind;
    /// Injects a fault; returns its description for the history.
    fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError>;
    /// Undoes the fault in force; returns what was done.
    fn stop(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError>;
    /// A short label of the fault in force, for the progress line.
    fn describe(&self) -> Option<String>;
    /// How long a fault lasts when the schedule drew `gap`: by default all
    /// of it.
    fn hold(&self, gap: std::time::Duration) -> std::time::Duration {
        gap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_brings_power_in_only_where_it_can_run_and_by_name_it_must() {
        let all = NemesisList::parse("all").unwrap();
        assert_eq!(
            all.kinds,
            vec![Kind::Partition, Kind::Kill, Kind::Pause, Kind::Power]
        );
        assert!(all.power_optional);
        let named = NemesisList::parse("power,kill").unwrap();
        assert_eq!(named.kinds, vec![Kind::Kill, Kind::Power]);
        assert!(!named.power_optional);
        assert!(NemesisList::parse("none").unwrap().kinds.is_empty());
        let e = NemesisList::parse("power,flood").unwrap_err();
        assert!(e.contains("flood") && e.contains("power"), "{e}");
    }
}
