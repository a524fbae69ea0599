//! Faults of node processes: `kill` (SIGKILL; on stop, a restart on the
//! same data dir) and `pause` (SIGSTOP; on stop, SIGCONT).
//!
//! Killing every node is a whole-cluster crash: only what reached the disk
//! survives. A paused node keeps its connections open but answers nothing:
//! to its peers it looks like a very slow machine, and when it wakes up it
//! may still believe it leads.

use serde_json::{Value, json};

use super::targets::Target;
use super::{Ctx, Kind, Nemesis};
use crate::cluster::{Cluster, ClusterError};

/// What is done to a node's process, and how it is undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGKILL, undone by starting the node again.
    Kill,
    /// SIGSTOP, undone by SIGCONT.
    Pause,
}

impl Signal {
    fn hit(self, cluster: &mut Cluster, node: &str) -> Result<(), ClusterError> {
        match self {
            Signal::Kill => cluster.kill(node),
            Signal::Pause => cluster.pause(node),
        }
    }

    fn undo(self, cluster: &mut Cluster, node: &str) -> Result<(), ClusterError> {
        match self {
            Signal::Kill => cluster.start_node(node),
            Signal::Pause => cluster.resume(node),
        }
    }

    /// How the history and the progress line say it: (done, undone).
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Signal::Kill => ("killed", "restarted"),
            Signal::Pause => ("paused", "resumed"),
        }
    }
}

/// Kills or pauses some nodes, drawn from its targets at each start.
pub struct ProcessNemesis {
    signal: Signal,
    /// The targets to draw from; empty: all, weighted.
    targets: Vec<Target>,
    /// The nodes hit by the fault in force.
    hit: Vec<String>,
}

impl ProcessNemesis {
    /// A nemesis that sends `signal` to nodes chosen among `targets`
    /// (empty: every kind of target).
    pub fn new(signal: Signal, targets: Vec<Target>) -> ProcessNemesis {
        ProcessNemesis {
            signal,
            targets,
            hit: Vec::new(),
        }
    }
}

impl Nemesis for ProcessNemesis {
    fn kind(&self) -> Kind {
        match self.signal {
            Signal::Kill => Kind::Kill,
            Signal::Pause => Kind::Pause,
        }
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let target = Target::pick_from(&self.targets, ctx.rng);
        let nodes = ctx.choose(target);
        for n in &nodes {
            self.signal.hit(ctx.cluster, n)?;
        }
        self.hit = nodes.clone();
        Ok(json!({"target": target.name(), "nodes": nodes}))
    }

    fn stop(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let nodes = std::mem::take(&mut self.hit);
        for n in &nodes {
            self.signal.undo(ctx.cluster, n)?;
        }
        let (_, undone) = self.signal.words();
        Ok(json!({ undone: nodes }))
    }

    fn describe(&self) -> Option<String> {
        (!self.hit.is_empty()).then(|| format!("{} {}", self.signal.words().0, self.hit.join(",")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_says_what_was_done_and_undone_in_the_words_it_always_did() {
        let stopped = |signal: Signal| {
            let (_, undone) = signal.words();
            json!({ undone: ["n1"] })
        };
        assert_eq!(stopped(Signal::Kill), json!({"restarted": ["n1"]}));
        assert_eq!(stopped(Signal::Pause), json!({"resumed": ["n1"]}));
        let mut n = ProcessNemesis::new(Signal::Pause, Vec::new());
        assert_eq!(n.kind(), Kind::Pause);
        assert_eq!(n.describe(), None);
        n.hit = vec!["n1".into(), "n3".into()];
        assert_eq!(n.describe().as_deref(), Some("paused n1,n3"));
    }
}
