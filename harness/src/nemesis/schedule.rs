//! When faults happen. After a quiet start, each nemesis alternates between
//! a fault and a calm period; nemeses run independently, so their faults
//! overlap. Two things keep the schedule from having one rhythm only:
//!
//! - **Tempo.** Each nemesis moves between a [`Tempo`] of storms (faults
//!   and calms of a twentieth to a quarter of the interval: partitions
//!   that flap, restarts back within a client's deadline), the normal one
//!   (half to one and a half intervals) and lulls (long calms, long
//!   faults), switching at random every few faults. A power cut holds
//!   half of what is drawn (`Nemesis::hold`).
//! - **Protocol timing.** Some faults wait for a protocol moment and
//!   strike right after it, aimed at the node it concerns where they
//!   target one: a node becoming leader (its no-op not yet committed, its
//!   first reads, followers that have not heard of it), or a node giving
//!   its vote (a vote not yet followed by the voter's next write). Many
//!   Raft bugs live in those milliseconds, and a clock alone almost never
//!   lands there. The moments come from the nodes' event logs as they are
//!   written ([`super::moments`]); without event logs, from a change of
//!   leader polled through every node's Status.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::moments::{self, Moment, MomentKind, Tail};
use super::{Ctx, Kind, Nemesis};
use crate::cluster::Cluster;
use crate::cluster::membership::Admin;
use crate::db::Members;
use crate::recorder::Recorder;
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

/// How fast a nemesis acts for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tempo {
    /// Short faults and short calms: flapping, quick restarts.
    Storm,
    /// Around the interval.
    Normal,
    /// Long faults and long calms.
    Lull,
}

impl Tempo {
    /// The range of a gap, in twentieths of the interval.
    fn twentieths(self) -> (u64, u64) {
        match self {
            Tempo::Storm => (1, 5),
            Tempo::Normal => (10, 30),
            Tempo::Lull => (30, 50),
        }
    }

    /// The tempo after a fault: mostly the same (storms last several
    /// faults), sometimes another. Normal half the time, storms a third,
    /// lulls the rest, in the long run.
    pub fn next(self, rng: &mut Rng) -> Tempo {
        if rng.below(100) < 65 {
            return self;
        }
        match rng.below(6) {
            0..=2 => Tempo::Normal,
            3 | 4 => Tempo::Storm,
            _ => Tempo::Lull,
        }
    }
}

/// Of the faults, the share (in percent) that waits for a protocol
/// moment before striking, unless the nemesis says otherwise
/// ([`Actor::moment_percent`]).
const AFTER_ELECTION_PERCENT: u64 = 35;
/// How often the nodes' Status is polled while waiting for a change of
/// leader (a database without event logs).
const ELECTION_POLL: Duration = Duration::from_millis(25);

impl Schedule {
    /// A random duration in [0.5, 1.5) × interval (the normal tempo).
    pub fn gap(&self, rng: &mut Rng) -> Duration {
        self.gap_at(Tempo::Normal, rng)
    }

    /// A random duration for `tempo` (see [`Tempo`]).
    pub fn gap_at(&self, tempo: Tempo, rng: &mut Rng) -> Duration {
        let (lo, hi) = tempo.twentieths();
        let unit = self.interval.as_millis() as u64 / 20;
        let ms = unit * lo + rng.below((unit * (hi - lo)).max(1));
        Duration::from_millis(ms.max(50))
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
    /// `moment`: what the schedule just saw happen, when it timed the
    /// fault on a protocol moment.
    fn act(
        &mut self,
        start: bool,
        shared: &Shared,
        rng: &mut Rng,
        moment: Option<Moment>,
    ) -> impl std::future::Future<Output = serde_json::Value> + Send;
    /// Called before the schedule waits for a moment to start a fault:
    /// what can be asked beforehand is asked here, so that the fault
    /// strikes within a round trip of the moment.
    fn prepare(&mut self, _shared: &Shared) -> impl std::future::Future<Output = ()> + Send {
        async {}
    }
    /// Of its starts, the share (in percent) that waits for a moment.
    fn moment_percent(&self) -> u64 {
        AFTER_ELECTION_PERCENT
    }
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

    async fn act(
        &mut self,
        start: bool,
        shared: &Shared,
        rng: &mut Rng,
        moment: Option<Moment>,
    ) -> serde_json::Value {
        let hint = moment.as_ref().and_then(Moment::leader);
        let leader = if hint.is_some() {
            hint
        } else if start {
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
            focus: moment.map(|m| m.node),
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
    let mut tempo = Tempo::Normal;
    loop {
        let mut after = None;
        if rng.below(100) < nemesis.moment_percent() {
            let within = schedule.gap_at(tempo, &mut rng);
            nemesis.prepare(&shared).await;
            after = await_moment(&shared, &mut rng, Instant::now() + within, schedule.end).await;
            if Instant::now() >= schedule.end {
                break;
            }
        }
        act(&mut nemesis, true, &shared, &mut rng, after).await;
        let hold = nemesis.hold(schedule.gap_at(tempo, &mut rng));
        let more = sleep_until(Instant::now() + hold, schedule.end).await;
        act(&mut nemesis, false, &shared, &mut rng, None).await;
        tempo = tempo.next(&mut rng);
        let calm = schedule.gap_at(tempo, &mut rng);
        if !more || !sleep_until(Instant::now() + calm, schedule.end).await {
            break;
        }
    }
    shared
        .in_force
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&kind);
}

/// Waits for a moment of a kind drawn at random (a new leader or a vote,
/// from the nodes' event logs; a change of leader through Status when
/// they write none) until `until` (or `end`) passes.
async fn await_moment(
    shared: &Shared,
    rng: &mut Rng,
    until: Instant,
    end: Instant,
) -> Option<Moment> {
    let logs = moments::of_cluster(&shared.cluster());
    if logs.is_empty() {
        let (node, term) = after_leader_change(shared, until, end).await?;
        return Some(Moment {
            kind: MomentKind::Leader,
            node,
            term,
            candidate: None,
        });
    }
    let kind = if rng.below(2) == 0 {
        MomentKind::Leader
    } else {
        MomentKind::Vote
    };
    let mut tail = Tail::new(logs);
    let until = until.min(end);
    while Instant::now() < until {
        tokio::time::sleep(moments::TAIL_POLL).await;
        if let Some(m) = tail.poll().into_iter().find(|m| m.kind == kind) {
            return Some(m);
        }
    }
    None
}

/// Waits until the cluster's leader (or its term) differs from the one
/// seen first, or `until` (or `end`) passes; returns the new leader and
/// term when it changed.
async fn after_leader_change(
    shared: &Shared,
    until: Instant,
    end: Instant,
) -> Option<(String, u64)> {
    let until = until.min(end);
    let poll = Duration::from_millis(100);
    let first = shared.members.leader(poll).await.map(|l| (l.id, l.term));
    while Instant::now() < until {
        tokio::time::sleep(ELECTION_POLL).await;
        let now = shared.members.leader(poll).await.map(|l| (l.id, l.term));
        if let Some(l) = now
            && Some(&l) != first.as_ref()
        {
            return Some(l);
        }
    }
    None
}

async fn act<A: Actor>(
    nemesis: &mut A,
    start: bool,
    shared: &Shared,
    rng: &mut Rng,
    after: Option<Moment>,
) {
    let kind = nemesis.kind();
    let record = after.as_ref().map(Moment::record);
    let mut value = nemesis.act(start, shared, rng, after).await;
    if let (Some((key, what)), Some(obj)) = (record, value.as_object_mut()) {
        obj.insert(key.into(), what);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tempos_draw_gaps_in_their_ranges_and_all_of_them_occur() {
        let s = Schedule {
            quiet: Duration::ZERO,
            interval: Duration::from_secs(5),
            end: Instant::now(),
        };
        let mut rng = Rng::new(3);
        for (tempo, lo, hi) in [
            (Tempo::Storm, 250, 1250),
            (Tempo::Normal, 2500, 7500),
            (Tempo::Lull, 7500, 12500),
        ] {
            for _ in 0..200 {
                let g = s.gap_at(tempo, &mut rng).as_millis() as u64;
                assert!((lo..hi).contains(&g), "{tempo:?}: {g} ms");
            }
        }
        let mut t = Tempo::Normal;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            t = t.next(&mut rng);
            seen.insert(format!("{t:?}"));
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
    }
}
