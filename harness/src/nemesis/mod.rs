//! Faults. Every nemesis has the same two verbs: `start` injects a fault and
//! `stop` undoes it; both say what they did, for the history.
//!
//! - `targets`: which nodes a fault hits (one, the leader, a minority, a
//!   majority, all).
//! - `process`: `kill` (SIGKILL, later a restart on the same data dir) and
//!   `pause` (SIGSTOP, later SIGCONT).
//! - `partition`: the nemesis that cuts links, in the `shapes` of network
//!   partitions (pure functions).
//! - `packet`: delay, loss, duplication, reordering, corruption and rate
//!   limits on the links of some nodes (`--network netns` only).
//! - `power`: SIGKILL and a power-off of the node's lazyfs disk, later a
//!   restart on what survived.
//! - `slow_disk`: every fsync of some nodes waits (lazyfs), later at
//!   full speed again.
//! - `schedule`: when faults start and stop during a run.
//! - `figure8`: a scripted sequence of partitions and slow links that walks
//!   the cluster through Figure 8 of the Raft paper.
//! - `member`: the cluster shrinks (a member removed, killed, wiped) and
//!   grows (a node added back, empty), through the leader.
//! - `wipe`: a node loses its data directory and restarts with the same
//!   command line; the harness re-adds it as an operator would.
//! - `support`: which kinds each database under test can take.

pub mod figure8;
pub mod member;
pub mod moments;
pub mod packet;
pub mod partition;
pub mod power;
pub mod process;
pub mod schedule;
pub mod shapes;
pub mod slow_disk;
pub mod support;
pub mod targets;
pub mod wipe;

use std::fmt;

use serde_json::Value;

use crate::cluster::{Cluster, ClusterError};
use crate::net::NetworkKind;
use process::Signal;
use raft::Rng;

/// The kinds of fault, as named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Network partitions.
    Partition,
    /// Packet faults on the links of some nodes (netns only).
    Packet,
    /// SIGKILL, then a restart on the same data dir.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// Figure 8 of the Raft paper, played with partitions and slow links.
    Figure8,
    /// SIGKILL and a power-off of the disk (what was not durable is lost),
    /// then a restart on what survived. Needs FUSE.
    Power,
    /// Every fsync of some nodes waits (their lazyfs disks slowed), then
    /// full speed again. Needs FUSE.
    SlowDisk,
    /// Membership changes: a member removed, killed and wiped; a node
    /// added back, empty.
    Member,
    /// A node's data directory deleted and the node restarted, then
    /// re-added.
    Wipe,
}

impl Kind {
    /// What `all` means: the faults that mix freely. `figure8` steers the
    /// network itself, so it is only ever asked for by name; `packet` is
    /// left out on proxies, which cannot do it ([`NemesisList::resolve`]),
    /// and `power` and `slow-disk` where FUSE cannot run
    /// (`RunOptions::settle_disks`).
    pub const ALL: [Kind; 6] = [
        Kind::Partition,
        Kind::Packet,
        Kind::Kill,
        Kind::Pause,
        Kind::Power,
        Kind::SlowDisk,
    ];
    /// Every kind `--nemesis` accepts by name.
    pub const KNOWN: [Kind; 9] = [
        Kind::Partition,
        Kind::Packet,
        Kind::Kill,
        Kind::Pause,
        Kind::Figure8,
        Kind::Power,
        Kind::SlowDisk,
        Kind::Member,
        Kind::Wipe,
    ];

    /// The name on the command line and in the history (`start-<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Partition => "partition",
            Kind::Packet => "packet",
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Figure8 => "figure8",
            Kind::Power => "power",
            Kind::SlowDisk => "slow-disk",
            Kind::Member => "member",
            Kind::Wipe => "wipe",
        }
    }

    /// Parses `--nemesis`: `none`, `all`, or a comma list of kinds.
    pub fn parse_list(s: &str) -> Result<NemesisList, String> {
        let s = s.trim();
        if s == "none" {
            return Ok(NemesisList::default());
        }
        if s == "all" {
            return Ok(NemesisList {
                kinds: Kind::ALL.to_vec(),
                all: true,
            });
        }
        let mut kinds = Vec::new();
        for part in s.split(',').map(str::trim) {
            let k = Kind::KNOWN
                .into_iter()
                .find(|k| k.name() == part)
                .ok_or_else(|| {
                    format!(
                        "unknown nemesis `{part}`; known: none, all, partition, packet, kill, \
                         pause, figure8, power, slow-disk, member, wipe"
                    )
                })?;
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        kinds.sort();
        if kinds.contains(&Kind::Figure8) {
            for other in [Kind::Partition, Kind::Packet] {
                if kinds.contains(&other) {
                    return Err(format!(
                        "figure8 shapes the network itself; it cannot run with {other}"
                    ));
                }
            }
        }
        Ok(NemesisList { kinds, all: false })
    }

    /// Runs this nemesis until the schedule ends, making its choices from
    /// `choices`.
    pub async fn run(
        self,
        choices: Choices,
        schedule: schedule::Schedule,
        shared: std::sync::Arc<schedule::Shared>,
        seed: u64,
    ) {
        let nemesis: Box<dyn Nemesis> = match self {
            Kind::Partition => Box::new(partition::PartitionNemesis::with_shapes(choices.shapes)),
            Kind::Packet => Box::new(packet::PacketNemesis::new(
                choices.behaviours,
                choices.targets,
            )),
            Kind::Kill => Box::new(process::ProcessNemesis::new(Signal::Kill, choices.targets)),
            Kind::Pause => Box::new(process::ProcessNemesis::new(Signal::Pause, choices.targets)),
            Kind::Power => Box::new(power::PowerNemesis::new(choices.targets, choices.loss)),
            Kind::SlowDisk => Box::new(slow_disk::SlowDiskNemesis::new(
                choices.targets,
                choices.fsync_delay,
            )),
            Kind::Figure8 => return figure8::run(schedule, shared, seed).await,
            Kind::Member => {
                return schedule::run(member::MemberNemesis::new(), schedule, shared, seed).await;
            }
            Kind::Wipe => {
                return schedule::run(wipe::WipeNemesis::new(), schedule, shared, seed).await;
            }
        };
        schedule::run(schedule::Locked(nemesis), schedule, shared, seed).await
    }
}

/// The nemeses of `--nemesis`, and whether they were asked for as `all`
/// (whose meaning depends on the network).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NemesisList {
    /// The kinds, sorted, each once.
    pub kinds: Vec<Kind>,
    /// Whether this is `all`.
    pub all: bool,
}

impl NemesisList {
    /// The kinds a run on `network` gets: `all` means every kind that
    /// network can do. A kind asked for by name stays, for the run's
    /// options to refuse if the network cannot do it.
    pub fn resolve(&self, network: NetworkKind) -> Vec<Kind> {
        self.kinds
            .iter()
            .copied()
            .filter(|k| !(self.all && *k == Kind::Packet && network != NetworkKind::Netns))
            .collect()
    }
}

/// What the nemeses choose from, as the flags say (empty: everything).
#[derive(Clone, Debug, Default)]
pub struct Choices {
    /// Partition shapes (`--partition-shapes`).
    pub shapes: Vec<shapes::Shape>,
    /// Nodes kills, pauses and packet faults hit (`--fault-targets`).
    pub targets: Vec<targets::Target>,
    /// Packet behaviours (`--packet-behaviours`).
    pub behaviours: Vec<netlab::Behavior>,
    /// What a power cut loses (`--power-loss`).
    pub loss: power::Loss,
    /// The disks' fsync delay outside slow-disk faults (`--fsync-delay`).
    pub fsync_delay: std::time::Duration,
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
    /// The node a protocol moment just concerned (the new leader, or a
    /// voter), when the fault was timed on one: targets of one node, a
    /// minority or a majority include it.
    pub focus: Option<String>,
    /// The nemesis's own random numbers, seeded for the run.
    pub rng: &'a mut Rng,
}

impl Ctx<'_> {
    /// The running nodes `target` means now (the leader as found just
    /// before acting).
    pub fn choose(&mut self, target: targets::Target) -> Vec<String> {
        targets::choose(
            target,
            &self.cluster.active_ids(),
            self.leader.as_deref(),
            self.focus.as_deref(),
            self.rng,
        )
    }
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
        let all = Kind::parse_list("all").unwrap();
        assert_eq!(
            all.kinds,
            vec![
                Kind::Partition,
                Kind::Packet,
                Kind::Kill,
                Kind::Pause,
                Kind::Power,
                Kind::SlowDisk
            ]
        );
        assert!(all.all);
        let named = Kind::parse_list("power,kill").unwrap();
        assert_eq!(named.kinds, vec![Kind::Kill, Kind::Power]);
        assert!(!named.all);
        assert!(Kind::parse_list("none").unwrap().kinds.is_empty());
        let e = Kind::parse_list("power,flood").unwrap_err();
        assert!(e.contains("flood") && e.contains("power"), "{e}");
    }
}
