//! SIGKILL some nodes; on stop, restart them on the same data dirs. Killing
//! all of them is a whole-cluster crash: only what reached the disk survives.

use serde_json::{Value, json};

use super::targets::{self, Target};
use super::{Ctx, Kind, Nemesis};
use crate::cluster::ClusterError;

#[derive(Default)]
pub struct KillNemesis {
    pub(super) killed: Vec<String>,
    /// The targets to draw from; empty: all, weighted.
    pub targets: Vec<Target>,
}

impl Nemesis for KillNemesis {
    fn kind(&self) -> Kind {
        Kind::Kill
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let target = Target::pick_from(&self.targets, ctx.rng);
        let nodes = targets::choose(target, &ctx.cluster.ids(), ctx.leader.as_deref(), ctx.rng);
        for n in &nodes {
            ctx.cluster.kill(n)?;
        }
        self.killed = nodes.clone();
        Ok(json!({"target": target.name(), "nodes": nodes}))
    }

    fn stop(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let nodes = std::mem::take(&mut self.killed);
        for n in &nodes {
            ctx.cluster.start_node(n)?;
        }
        Ok(json!({"restarted": nodes}))
    }

    fn describe(&self) -> Option<String> {
        (!self.killed.is_empty()).then(|| format!("killed {}", self.killed.join(",")))
    }
}
