//! Slow disks: `slow-disk` makes every fsync of some nodes wait (lazyfs's
//! fsync delay), and on stop gives them their speed back.
//!
//! A node waits on its disk before it votes, before it acknowledges an
//! entry, and before a leader counts its own copy. A slow disk stretches
//! those waits from microseconds to a large part of an election timeout,
//! while heartbeats and reads, which wait on nothing, keep their pace:
//! a new leader's first entry stays uncommitted for longer, clients'
//! attempts time out and are retried while the first one is still on its
//! way, and a follower acknowledges late. Production disks do this (a
//! busy neighbour, a full write cache); etcd warns of it as "slow
//! fdatasync".
//!
//! The delay is drawn per fault, log-uniformly between [`MIN_DELAY`] and
//! [`MAX_DELAY`], so that short stalls are as common as long ones. The
//! history gets `{"target", "nodes", "fsync_delay_ms"}`.

use std::time::Duration;

use serde_json::{Value, json};

use super::targets::Target;
use super::{Ctx, Kind, Nemesis};
use crate::cluster::ClusterError;
use raft::Rng;

/// The shortest delay drawn: a disk that is merely slow.
pub const MIN_DELAY: Duration = Duration::from_millis(5);
/// The longest: past a client's attempt timeout and an election timeout.
pub const MAX_DELAY: Duration = Duration::from_millis(800);

/// Slows the fsyncs of nodes drawn from its targets at each start.
pub struct SlowDiskNemesis {
    /// The targets to draw from; empty: all, weighted.
    targets: Vec<Target>,
    /// What a disk is given back at stop (`--fsync-delay`).
    base: Duration,
    /// The nodes slowed by the fault in force, and by how much.
    hit: Vec<String>,
    delay: Duration,
}

impl SlowDiskNemesis {
    /// A nemesis that slows nodes chosen among `targets` (empty: every
    /// kind of target); `base` is the disks' delay outside its faults.
    pub fn new(targets: Vec<Target>, base: Duration) -> SlowDiskNemesis {
        SlowDiskNemesis {
            targets,
            base,
            hit: Vec::new(),
            delay: Duration::ZERO,
        }
    }
}

/// A delay between [`MIN_DELAY`] and [`MAX_DELAY`], log-uniform, in whole
/// milliseconds.
pub fn draw_delay(rng: &mut Rng) -> Duration {
    let (lo, hi) = (MIN_DELAY.as_millis() as f64, MAX_DELAY.as_millis() as f64);
    let u = rng.below(1 << 20) as f64 / (1u64 << 20) as f64;
    Duration::from_millis((lo * (hi / lo).powf(u)).round() as u64)
}

impl Nemesis for SlowDiskNemesis {
    fn kind(&self) -> Kind {
        Kind::SlowDisk
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let target = Target::pick_from(&self.targets, ctx.rng);
        let nodes = ctx.choose(target);
        let delay = draw_delay(ctx.rng) + self.base;
        for n in &nodes {
            ctx.cluster.set_fsync_delay(n, delay)?;
            self.hit.push(n.clone());
        }
        self.delay = delay;
        Ok(json!({
            "target": target.name(),
            "nodes": nodes,
            "fsync_delay_ms": delay.as_millis() as u64,
        }))
    }

    fn stop(&mut self, ctx: &mut Ctx<'_>) -> Result<Value, ClusterError> {
        let nodes = std::mem::take(&mut self.hit);
        for n in &nodes {
            ctx.cluster.set_fsync_delay(n, self.base)?;
        }
        Ok(json!({ "restored": nodes }))
    }

    fn describe(&self) -> Option<String> {
        (!self.hit.is_empty()).then(|| {
            format!(
                "slow disk {} (+{} ms)",
                self.hit.join(","),
                self.delay.as_millis()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_span_the_range_with_short_ones_as_common_as_long_ones() {
        let mut rng = Rng::new(7);
        let draws: Vec<Duration> = (0..10_000).map(|_| draw_delay(&mut rng)).collect();
        assert!(draws.iter().all(|d| (MIN_DELAY..=MAX_DELAY).contains(d)));
        // Log-uniform: the geometric middle (~63 ms) splits the draws in two.
        let below = draws
            .iter()
            .filter(|d| **d < Duration::from_millis(63))
            .count();
        assert!(
            (4_500..5_500).contains(&below),
            "{below} of 10000 below 63 ms"
        );
        assert!(draws.iter().any(|d| *d < Duration::from_millis(8)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(600)));
    }

    #[test]
    fn it_says_whom_it_slowed_and_by_how_much() {
        let mut n = SlowDiskNemesis::new(Vec::new(), Duration::ZERO);
        assert_eq!(n.kind(), Kind::SlowDisk);
        assert_eq!(n.describe(), None);
        n.hit = vec!["n2".into()];
        n.delay = Duration::from_millis(120);
        assert_eq!(n.describe().as_deref(), Some("slow disk n2 (+120 ms)"));
    }
}
