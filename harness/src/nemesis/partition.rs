//! The partition nemesis: network partitions (the nodes are not asked to
//! cooperate), each of a shape drawn from [`super::shapes`], cut in the
//! nodes' packet filters (netns) or in the proxies.

use serde_json::Value;

use super::shapes::{self, Shape};
use super::{Ctx, Kind, Nemesis};
use crate::cluster::ClusterError;

/// Cuts the network into a shape drawn at each start; heals it all on stop.
#[derive(Default)]
pub struct PartitionNemesis {
    active: Option<shapes::Partition>,
    /// The shapes to draw from; empty: every shape the network can cut.
    shapes: Vec<Shape>,
}

impl PartitionNemesis {
    /// A nemesis that draws its shapes from `shapes` (empty: every shape
    /// the network can cut exactly).
    pub fn with_shapes(shapes: Vec<Shape>) -> PartitionNemesis {
        PartitionNemesis {
            active: None,
            shapes,
        }
    }
}

impl Nemesis for PartitionNemesis {
    fn kind(&self) -> Kind {
        Kind::Partition
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let ids = ctx.cluster.active_ids();
        let allowed: &[Shape] = if self.shapes.is_empty() {
            Shape::available(ctx.cluster.net().kind())
        } else {
            &self.shapes
        };
        let shapes: Vec<Shape> = allowed
            .iter()
            .copied()
            .filter(|s| ids.len() >= s.min_nodes())
            .collect();
        if shapes.is_empty() {
            return Ok(serde_json::json!({"skipped": "too few nodes to partition"}));
        }
        let shape = shapes[ctx.rng.below(shapes.len() as u64) as usize];
        let rng = &mut *ctx.rng;
        let p = shapes::partition(shape, &ids, ctx.leader.as_deref(), &mut |n| rng.below(n))
            .map_err(|e| ClusterError::Net(e.to_string()))?;
        let net = ctx.cluster.net();
        let done = if p.no_dial.is_empty() {
            net.cut(&p.cut)
        } else {
            net.cut_dials(&p.no_dial)
        };
        done.map_err(|e| ClusterError::Net(e.to_string()))?;
        let value = p.to_value();
        self.active = Some(p);
        Ok(value)
    }

    fn stop(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let was = self.active.take().map(|p| p.shape.name());
        ctx.cluster
            .net()
            .heal()
            .map_err(|e| ClusterError::Net(e.to_string()))?;
        Ok(serde_json::json!({"healed": was}))
    }

    fn describe(&self) -> Option<String> {
        self.active
            .as_ref()
            .map(|p| format!("partition {}", p.shape.name()))
    }
}
