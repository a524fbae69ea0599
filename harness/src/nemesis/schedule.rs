//! When faults happen. After a quiet start, each nemesis alternates between
//! a fault and a calm period, each lasting a random time around the nemesis
//! interval (a power cut half of that: `Nemesis::hold`); nemeses run
//! independently, so their faults overlap.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Ctx, Kind, Nemesis};
use crate::cluster::Cluster;
use crate::db::Members;
use crate::run::recorder::Recorder;
use raft::Rng;

/// The faults in force, by kind, for the progress display.
pub type InForce = Arc<Mutex<BTreeMap<Kind, String>>>;

/// When one nemesis acts: a quiet start, then faults and calm periods around
/// `interval` until `end`.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// No faults before this, so the cluster gets going and the history
    /// starts with a healthy baseline.
    pub quiet: Duration,
    /// The mean length of a fault and of the calm between faults.
    pub interval: Duration,
    /// Faults are stopped by this time.
    pub end: Instant,
}

impl Schedule {
    /// A random duration in [0.5, 1.5) × interval.
    pub fn gap(&self, rng: &mut Rng) -> Duration {
        let ms = self.interval.as_millis() as u64;
        Duration::from_millis(ms / 2 + rng.below(ms.max(1)))
    }
}

/// What every nemesis of a run shares.
pub struct Shared {
    /// The cluster to act on.
    pub cluster: Arc<Mutex<Cluster>>,
    /// The members over the database's API, to find the leader.
    pub members: Arc<dyn Members>,
    /// The history: every fault started and stopped goes into it.
    pub recorder: Arc<Recorder>,
    /// The faults in force, for the progress line.
    pub in_force: InForce,
}

/// Runs one nemesis until the schedule ends, leaving no fault of its own in force.
pub async fn run(
    mut nemesis: Box<dyn Nemesis>,
    schedule: Schedule,
    shared: Arc<Shared>,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let kind = nemesis.kind();
    let first = schedule.quiet
        + Duration::from_millis(rng.below(schedule.interval.as_millis() as u64 / 2 + 1));
    if !sleep_until(Instant::now() + first, schedule.end).await {
        return;
    }
    loop {
        act(&mut *nemesis, true, &shared, &mut rng).await;
        let hold = nemesis.hold(schedule.gap(&mut rng));
        let more = sleep_until(Instant::now() + hold, schedule.end).await;
        act(&mut *nemesis, false, &shared, &mut rng).await;
        if !more || !sleep_until(Instant::now() + schedule.gap(&mut rng), schedule.end).await {
            break;
        }
    }
    shared
        .in_force
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&kind);
}

async fn act(nemesis: &mut dyn Nemesis, start: bool, shared: &Shared, rng: &mut Rng) {
    let kind = nemesis.kind();
    let leader = if start {
        shared
            .members
            .leader(Duration::from_millis(250))
            .await
            .map(|l| l.id)
    } else {
        None
    };
    let result = {
        let mut cluster = shared.cluster.lock().unwrap_or_else(|e| e.into_inner());
        let mut ctx = Ctx {
            cluster: &mut cluster,
            leader,
            rng,
        };
        if start {
            nemesis.start(&mut ctx)
        } else {
            nemesis.stop(&mut ctx)
        }
    };
    let verb = if start { "start" } else { "stop" };
    let f = format!("{verb}-{kind}");
    match result {
        Ok(value) => shared.recorder.nemesis(&f, value),
        Err(e) => shared
            .recorder
            .nemesis(&f, serde_json::json!({"error": e.to_string()})),
    }
    let mut in_force = shared.in_force.lock().unwrap_or_else(|e| e.into_inner());
    match nemesis.describe() {
        Some(d) => in_force.insert(kind, d),
        None => in_force.remove(&kind),
    };
}

/// Sleeps until `t`, or until `end` if that comes first; returns whether `t` was reached.
pub(crate) async fn sleep_until(t: Instant, end: Instant) -> bool {
    let wake = t.min(end);
    tokio::time::sleep_until(wake.into()).await;
    t <= end
}
