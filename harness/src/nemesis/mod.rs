//! Faults. Every nemesis has the same two verbs: `start` injects a fault and
//! `stop` undoes it; both say what they did, for the history.
//!
//! - `targets`: which nodes a fault hits (one, the leader, a minority, a
//!   majority, all).
//! - `process`: `kill` (SIGKILL, later a restart on the same data dir) and
//!   `pause` (SIGSTOP, later SIGCONT).
//! - `partition`: the nemesis that cuts links through the proxies, in the
//!   `shapes` of network partitions (pure functions).
//! - `schedule`: when faults start and stop during a run.
//! - `figure8`: a scripted sequence of partitions and slow links that walks
//!   the cluster through Figure 8 of the Raft paper.

pub mod figure8;
pub mod partition;
pub mod process;
pub mod schedule;
pub mod shapes;
pub mod targets;

use std::fmt;

use serde_json::Value;

use crate::cluster::{Cluster, ClusterError};
use process::Signal;
use raft::Rng;

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
}

impl Kind {
    /// What `all` means: the faults that mix freely. `figure8` steers the
    /// network itself, so it is only ever asked for by name.
    pub const ALL: [Kind; 3] = [Kind::Partition, Kind::Kill, Kind::Pause];
    /// Every kind `--nemesis` accepts by name.
    pub const KNOWN: [Kind; 4] = [Kind::Partition, Kind::Kill, Kind::Pause, Kind::Figure8];

    /// The name on the command line and in the history (`start-<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Partition => "partition",
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Figure8 => "figure8",
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
                        "unknown nemesis `{part}`; known: none, all, partition, kill, pause, figure8"
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
    /// shapes to draw from; `targets`: the nodes kills and pauses hit
    /// (empty: all of them).
    pub async fn run(
        self,
        shapes: Vec<shapes::Shape>,
        targets: Vec<targets::Target>,
        schedule: schedule::Schedule,
        shared: std::sync::Arc<schedule::Shared>,
        seed: u64,
    ) {
        let nemesis: Box<dyn Nemesis> = match self {
            Kind::Partition => Box::new(partition::PartitionNemesis::with_shapes(shapes)),
            Kind::Kill => Box::new(process::ProcessNemesis::new(Signal::Kill, targets)),
            Kind::Pause => Box::new(process::ProcessNemesis::new(Signal::Pause, targets)),
            Kind::Figure8 => return figure8::run(schedule, shared, seed).await,
        };
        schedule::run(nemesis, schedule, shared, seed).await
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
}
