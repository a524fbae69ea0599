//! Power faults: `power` cuts the power of some nodes (SIGKILL, then each
//! one's lazyfs disk throws away what was not durable) and, on stop,
//! powers them on (a restart on what survived).
//!
//! A kill -9 keeps the kernel's page cache, so a node that never fsyncs
//! survives it; a power cut does not. A node that loses power alone loses
//! nothing acknowledged (its peers hold every committed entry), and a
//! majority that loses power mostly comes back to the survivor's longer
//! log; a whole-cluster cut is what leaves nothing but the disks. So the
//! default draw makes most cuts whole-cluster ones ([`Target::pick_power`]),
//! and a cut lasts half the usual fault length (a reboot), which leaves
//! room for more of them.
//!
//! The history gets, per node, what its disk lost: `start-power`'s value is
//! `{"target", "nodes", "loss", "lost": {"n1": {"bytes_lost", ...}}}`.

use serde_json::{Map, Value, json};

use super::targets::Target;
use super::{Ctx, Kind, Nemesis};
use crate::cluster::ClusterError;
use raft::Rng;

/// At most this many lines of what a node lost go into the history.
const DETAILS: usize = 8;

/// What a power-off throws away (`--power-loss`); lazyfs's
/// `POWER_LOSS_HELP` says it in full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Loss {
    /// Every change that was not durable.
    #[default]
    All,
    /// For each file, all but a random prefix of its unsynced writes.
    Torn,
}

impl Loss {
    /// Parses `--power-loss`: `all` or `torn`.
    pub fn parse(s: &str) -> Result<Loss, String> {
        match s {
            "all" => Ok(Loss::All),
            "torn" => Ok(Loss::Torn),
            _ => Err(format!("unknown power loss {s:?} (expected all or torn)")),
        }
    }

    /// The name on the command line and in the history.
    pub fn name(self) -> &'static str {
        match self {
            Loss::All => "all",
            Loss::Torn => "torn",
        }
    }

    /// The loss of one power-off; a torn one cuts where `rng` says.
    fn draw(self, rng: &mut Rng) -> lazyfs::PowerLoss {
        match self {
            Loss::All => lazyfs::PowerLoss::All,
            Loss::Torn => lazyfs::PowerLoss::Torn {
                seed: rng.next_u64(),
            },
        }
    }
}

/// Cuts the power of nodes drawn from its targets at each start, and
/// powers them on at each stop.
pub struct PowerNemesis {
    /// The targets to draw from; empty: all, majorities and whole-cluster
    /// cuts most often ([`Target::pick_power`]).
    targets: Vec<Target>,
    loss: Loss,
    /// The nodes whose power is off.
    hit: Vec<String>,
}

impl PowerNemesis {
    /// A nemesis that cuts the power of nodes chosen among `targets`
    /// (empty: every kind of target, weighted for power cuts).
    pub fn new(targets: Vec<Target>, loss: Loss) -> PowerNemesis {
        PowerNemesis {
            targets,
            loss,
            hit: Vec::new(),
        }
    }
}

impl Nemesis for PowerNemesis {
    fn kind(&self) -> Kind {
        Kind::Power
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let target = if self.targets.is_empty() {
            Target::pick_power(ctx.rng)
        } else {
            Target::pick_from(&self.targets, ctx.rng)
        };
        let nodes = ctx.choose(target);
        let mut lost = Map::new();
        for n in &nodes {
            let loss = self.loss.draw(ctx.rng);
            let said = match ctx.cluster.power_off(n, loss) {
                Ok(report) => report_json(&report),
                Err(e) => json!({"error": e.to_string()}),
            };
            // Off even when its disk failed: it stays down until stop.
            self.hit.push(n.clone());
            lost.insert(n.clone(), said);
        }
        Ok(json!({
            "target": target.name(),
            "nodes": nodes,
            "loss": self.loss.name(),
            "lost": lost,
        }))
    }

    fn stop(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let nodes = std::mem::take(&mut self.hit);
        for n in &nodes {
            ctx.cluster.power_on(n)?;
        }
        Ok(json!({ "restarted": nodes }))
    }

    fn describe(&self) -> Option<String> {
        (!self.hit.is_empty()).then(|| format!("power off {}", self.hit.join(",")))
    }

    /// The harm of a power cut is done the moment it starts (what was not
    /// durable is gone); the rest is a reboot. Half the usual fault length
    /// leaves room for more cuts, each a fresh test of what was fsynced.
    fn hold(&self, gap: std::time::Duration) -> std::time::Duration {
        gap / 2
    }
}

/// What one node's disk lost, for the history: lazyfs's counters by their
/// names, the first few files in words, and anything it could not undo.
pub fn report_json(r: &lazyfs::LossReport) -> Value {
    let mut v = json!({
        "bytes_lost": r.bytes_lost,
        "data_changes_lost": r.data_changes_lost,
        "files_changed": r.files_changed,
        "files_lost": r.files_lost,
        "names_restored": r.names_restored,
    });
    if !r.details.is_empty() {
        let mut details: Vec<String> = r.details.iter().take(DETAILS).cloned().collect();
        if r.details.len() > DETAILS {
            details.push(format!("... and {} more", r.details.len() - DETAILS));
        }
        v["details"] = json!(details);
    }
    if !r.errors.is_empty() {
        v["errors"] = json!(r.errors);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_parse_by_name_and_torn_ones_draw_their_cut() {
        assert_eq!(Loss::parse("all"), Ok(Loss::All));
        assert_eq!(Loss::parse("torn").map(Loss::name), Ok("torn"));
        assert!(Loss::parse("some").unwrap_err().contains("all or torn"));
        let mut rng = Rng::new(1);
        assert_eq!(Loss::All.draw(&mut rng), lazyfs::PowerLoss::All);
        let (a, b) = (Loss::Torn.draw(&mut rng), Loss::Torn.draw(&mut rng));
        assert!(matches!(a, lazyfs::PowerLoss::Torn { .. }));
        assert_ne!(a, b, "each power-off cuts at its own places");
    }

    #[test]
    fn the_history_gets_lazyfs_counters_and_a_few_details() {
        let report = lazyfs::LossReport {
            bytes_lost: 4096,
            data_changes_lost: 2,
            files_changed: 1,
            files_lost: 0,
            names_restored: 0,
            details: (0..10).map(|i| format!("f{i}: lost")).collect(),
            errors: Vec::new(),
        };
        let v = report_json(&report);
        assert_eq!(v["bytes_lost"], 4096);
        assert_eq!(v["files_changed"], 1);
        let details = v["details"].as_array().unwrap();
        assert_eq!(details.len(), DETAILS + 1);
        assert_eq!(details[DETAILS], "... and 2 more");
        assert!(v.get("errors").is_none());
    }
}
