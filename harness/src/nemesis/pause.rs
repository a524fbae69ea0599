//! SIGSTOP some nodes; on stop, SIGCONT them. A paused node keeps its
//! connections open but answers nothing: to its peers it looks like a very
//! slow machine, and when it wakes up it may still believe it leads.

use serde_json::{Value, json};

use super::targets::{self, Target};
use super::{Ctx, Kind, Nemesis};
use crate::cluster::ClusterError;

#[derive(Default)]
pub struct PauseNemesis {
    pub(super) paused: Vec<String>,
    /// The targets to draw from; empty: all, weighted.
    pub targets: Vec<Target>,
}

impl Nemesis for PauseNemesis {
    fn kind(&self) -> Kind {
        Kind::Pause
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let target = Target::pick_from(&self.targets, ctx.rng);
        let nodes = targets::choose(target, &ctx.cluster.ids(), ctx.leader.as_deref(), ctx.rng);
        for n in &nodes {
            ctx.cluster.pause(n)?;
        }
        self.paused = nodes.clone();
        Ok(json!({"target": target.name(), "nodes": nodes}))
    }

    fn stop(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let nodes = std::mem::take(&mut self.paused);
        for n in &nodes {
            ctx.cluster.resume(n)?;
        }
        Ok(json!({"resumed": nodes}))
    }

    fn describe(&self) -> Option<String> {
        (!self.paused.is_empty()).then(|| format!("paused {}", self.paused.join(",")))
    }
}
