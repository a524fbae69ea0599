//! When faults happen. After a quiet start, each nemesis alternates between
//! a fault and a calm period, each lasting a random time around the nemesis
//! interval (a power cut half of that: `Nemesis::hold`); nemeses run
//! independently, so their faults overlap.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Ctx, Kind, Nemesis};
use crate::cluster::Cluster;
use crate::cluster::membership::Admin;
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
    /// The cluster's membership, through its leader.
    pub admin: Admin,
    /// Held by the `member` and `wipe` nemeses from the look at the
    /// configuration to the change they base on it, so that one never acts
    /// on a configuration the other is changing (a shrink to two voters
    /// and a wipe at once leave a cluster that can never elect a leader).
    pub changing: tokio::sync::Mutex<()>,
}

impl Shared {
    /// The cluster, also when a thread panicked while holding it.
    pub fn cluster(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A nemesis as the schedule drives it: it starts and stops faults, and
/// says what it did, for the history. Process and network faults are
/// [`Nemesis`]es acting under the cluster's lock; membership faults
/// ([`super::member`], [`super::wipe`]) wait on the leader's answers, so
/// they take the lock only for what they do to processes.
pub trait Actor: Send {
    /// Which kind of fault it injects.
    fn kind(&self) -> Kind;
    /// Starts (`start`) or stops a fault; returns its description.
    fn act(
        &mut self,
        start: bool,
        shared: &Shared,
        rng: &mut Rng,
    ) -> impl std::future::Future<Output = serde_json::Value> + Send;
    /// A short label of the fault in force, for the progress line.
    fn describe(&self) -> Option<String>;
    /// How long a fault lasts when the schedule drew `gap`.
    fn hold(&self, gap: Duration) -> Duration {
        gap
    }
}

/// A [`Nemesis`] of processes or the network, acting under the cluster's lock.
pub struct Locked(pub Box<dyn Nemesis>);

impl Actor for Locked {
    fn kind(&self) -> Kind {
        self.0.kind()
    }

    async fn act(&mut self, start: bool, shared: &Shared, rng: &mut Rng) -> serde_json::Value {
        let leader = if start {
            shared
                .members
                .leader(Duration::from_millis(250))
                .await
                .map(|l| l.id)
        } else {
            None
        };
        let mut cluster = shared.cluster.lock().unwrap_or_else(|e| e.into_inner());
        let mut ctx = Ctx {
            cluster: &mut cluster,
            leader,
            rng,
        };
        let result = if start {
            self.0.start(&mut ctx)
        } else {
            self.0.stop(&mut ctx)
        };
        result.unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}))
    }

    fn describe(&self) -> Option<String> {
        self.0.describe()
    }

    fn hold(&self, gap: Duration) -> Duration {
        self.0.hold(gap)
    }
}

/// Runs one nemesis until the schedule ends, leaving no fault of its own in force.
pub async fn run<A: Actor>(mut nemesis: A, schedule: Schedule, shared: Arc<Shared>, seed: u64) {
    let mut rng = Rng::new(seed);
    let kind = nemesis.kind();
    let first = schedule.quiet
        + Duration::from_millis(rng.below(schedule.interval.as_millis() as u64 / 2 + 1));
    if !sleep_until(Instant::now() + first, schedule.end).await {
        return;
    }
    loop {
        act(&mut nemesis, true, &shared, &mut rng).await;
        let hold = nemesis.hold(schedule.gap(&mut rng));
        let more = sleep_until(Instant::now() + hold, schedule.end).await;
        act(&mut nemesis, false, &shared, &mut rng).await;
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

async fn act<A: Actor>(nemesis: &mut A, start: bool, shared: &Shared, rng: &mut Rng) {
    let kind = nemesis.kind();
    let value = nemesis.act(start, shared, rng).await;
    let verb = if start { "start" } else { "stop" };
    shared.recorder.nemesis(&format!("{verb}-{kind}"), value);
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
