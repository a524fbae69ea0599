//! The packet nemesis (`--network netns` only): delay, loss, duplication,
//! reordering, corruption and a rate limit on the links of some nodes, at
//! the defaults of Jepsen's packet package (see [`netlab::PacketFaults`]).
//!
//! At each start it draws its targets as kills and pauses do
//! (`--fault-targets`: one, the leader, a minority, a majority, all), and
//! a non-empty subset of `--packet-behaviours` (each listed behaviour with
//! probability ½, one of them if none came up), and impairs every link
//! with a target at one end or both, both ways (Jepsen's choice). Stop
//! restores every link. Clients are never impaired: only node-to-node
//! packets pass the emulator. Partitions are a layer of their own, so the
//! two combine.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::targets::Target;
use super::{Ctx, Kind, Nemesis};
use crate::cluster::ClusterError;
use crate::net::{Behavior, Link, PacketFaults};
use raft::Rng;

/// Impairs the links of nodes drawn at each start.
pub struct PacketNemesis {
    /// The behaviours to draw from; empty: all of them.
    behaviours: Vec<Behavior>,
    /// The targets to draw from; empty: all, weighted.
    targets: Vec<Target>,
    /// The fault in force: its nodes and behaviours.
    active: Option<(Vec<String>, Vec<Behavior>)>,
}

impl PacketNemesis {
    /// A nemesis drawing from `behaviours` and `targets` (empty: all).
    pub fn new(behaviours: Vec<Behavior>, targets: Vec<Target>) -> PacketNemesis {
        PacketNemesis {
            behaviours,
            targets,
            active: None,
        }
    }
}

/// A non-empty subset of `from` (empty: of every behaviour), in order.
pub fn draw_behaviours(from: &[Behavior], rng: &mut Rng) -> Vec<Behavior> {
    let from: &[Behavior] = if from.is_empty() {
        &Behavior::ALL
    } else {
        from
    };
    let mut chosen: Vec<Behavior> = from.iter().copied().filter(|_| rng.below(2) == 0).collect();
    if chosen.is_empty() {
        chosen.push(from[rng.below(from.len() as u64) as usize]);
    }
    chosen.sort();
    chosen.dedup();
    chosen
}

impl Nemesis for PacketNemesis {
    fn kind(&self) -> Kind {
        Kind::Packet
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let ids = ctx.cluster.active_ids();
        let target = Target::pick_from(&self.targets, ctx.rng);
        let nodes = ctx.choose(target);
        let behaviours = draw_behaviours(&self.behaviours, ctx.rng);
        let faults = PacketFaults::of(&behaviours);
        let links: Vec<Link> = netlab::links_touching(&ids, &nodes).into_iter().collect();
        let plan: BTreeMap<Link, PacketFaults> =
            links.iter().map(|l| (l.clone(), faults)).collect();
        ctx.cluster
            .net()
            .impair(&plan)
            .map_err(|e| ClusterError::Net(e.to_string()))?;
        let names: Vec<&str> = behaviours.iter().map(|b| b.name()).collect();
        let value = json!({
            "target": target.name(),
            "nodes": nodes,
            "behaviours": names,
            "faults": faults.to_string(),
            "links": links,
        });
        self.active = Some((nodes, behaviours));
        Ok(value)
    }

    fn stop(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let was = self.active.take();
        ctx.cluster
            .net()
            .unimpair()
            .map_err(|e| ClusterError::Net(e.to_string()))?;
        let nodes = was.map(|(nodes, _)| nodes).unwrap_or_default();
        Ok(json!({ "restored": nodes }))
    }

    fn describe(&self) -> Option<String> {
        self.active.as_ref().map(|(nodes, behaviours)| {
            let names: Vec<&str> = behaviours.iter().map(|b| b.name()).collect();
            format!("packet {} on {}", names.join("+"), nodes.join(","))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_are_a_non_empty_subset_of_the_list_and_vary() {
        let mut rng = Rng::new(9);
        let listed = [Behavior::Delay, Behavior::Loss, Behavior::Rate];
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let b = draw_behaviours(&listed, &mut rng);
            assert!(!b.is_empty());
            assert!(b.iter().all(|x| listed.contains(x)), "{b:?}");
            seen.insert(b);
        }
        assert_eq!(seen.len(), 7, "every non-empty subset comes up: {seen:?}");
        let one = draw_behaviours(&[Behavior::Corrupt], &mut rng);
        assert_eq!(one, vec![Behavior::Corrupt]);
        let all: std::collections::BTreeSet<Behavior> = (0..200)
            .flat_map(|_| draw_behaviours(&[], &mut rng))
            .collect();
        assert_eq!(all.len(), Behavior::ALL.len());
    }

    #[test]
    fn the_progress_line_names_behaviours_and_nodes() {
        let mut n = PacketNemesis::new(Vec::new(), Vec::new());
        assert_eq!(n.kind(), Kind::Packet);
        assert_eq!(n.describe(), None);
        n.active = Some((vec!["n2".into()], vec![Behavior::Delay, Behavior::Loss]));
        assert_eq!(n.describe().as_deref(), Some("packet delay+loss on n2"));
    }
}
