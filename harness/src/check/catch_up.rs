//! Catching up while nothing is wrong: part of the `convergence` checker.
//!
//! The end-of-run convergence record sees a member that never catches up
//! only if it is still behind when the run ends; a leader change in
//! between hides it (the new leader starts its view of every follower
//! afresh). So the run itself is judged too, from the nodes' event logs.
//! Calm time is every fault-free stretch from [`GRACE_NS`] after the last
//! fault ended (time for a restart, an election, a follower's probe). At
//! the start of each calm interval the highest index any node has applied
//! is a target; a member of the configuration then in force that spends
//! [`WINDOW_NS`] of calm time below it, in one stretch or over several
//! (faults in between do not count, and do not excuse it), is stuck: a
//! follower that stays behind with every link open and every process
//! running, whatever the clients see.
//!
//! Applied indexes come from `apply` and `snapshot` events (a snapshot
//! installed moves a node's state that far), counted as the highest seen
//! so far, so a restart that replays its log is never mistaken for a fall
//! behind. The configuration at a time is the one with the highest index
//! any node had applied by then (voters and learners); without `config`
//! events every node with a log is a member. Nodes whose logs have no
//! `apply` event (another database's logs) are not judged.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::availability::fault_intervals;
use crate::history::events::{EventKind, NodeLog, wall_ns};
use crate::history::{History, Payload};

/// After a fault ends, how long a stretch waits before it takes its
/// target: a restart, an election, a follower's probe. Measured on the
/// correct node, a follower is caught up well within it.
pub const GRACE_NS: u64 = 1_500_000_000;
/// How long the members then have, at least, to reach the target: the
/// stretch must be this long after its grace to be judged.
pub const WINDOW_NS: u64 = 1_500_000_000;

/// A member that did not catch up in a fault-free stretch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stall {
    /// The member.
    pub node: String,
    /// When some node had applied `target` (seconds of history time, a
    /// grace after a fault ended).
    pub from_s: f64,
    /// When the member had spent [`WINDOW_NS`] of fault-free time behind it.
    pub to_s: f64,
    /// The index to reach.
    pub target: u64,
    /// The highest index the member had applied by `to_s`.
    pub applied: u64,
}

impl Stall {
    /// One sentence for the summary and the report.
    pub fn explanation(&self) -> String {
        format!(
            "{} stayed behind with no fault in force: by {:.1} s another node had applied \
             index {}, and at {:.1} s, after {:.1} s of fault-free time (each stretch \
             counted from {:.1} s after its last fault), {} had applied only {}",
            self.node,
            self.from_s,
            self.target,
            self.to_s,
            WINDOW_NS as f64 / 1e9,
            GRACE_NS as f64 / 1e9,
            self.node,
            self.applied,
        )
    }
}

/// A node's applied index over time: (history ns, highest index so far).
type Progress = Vec<(i128, u64)>;

/// The members that stayed behind in some fault-free stretch of `history`,
/// whose time 0 is `origin` (Unix ns).
pub fn stalls(history: &History, logs: &[NodeLog], origin: i128) -> Vec<Stall> {
    let ops = history.ops();
    let Some(last) = ops.last() else {
        return Vec::new();
    };
    let load_end = ops
        .iter()
        .find_map(|o| match &o.payload {
            Payload::Nemesis(n) if n.f == "recover" => Some(o.time),
            _ => None,
        })
        .unwrap_or(last.time);
    let at = |e: &crate::history::events::NodeEvent| -> Option<i128> {
        Some(wall_ns(e.time.as_deref()?)? - origin)
    };
    let progress: Vec<(&str, Progress)> = logs
        .iter()
        .filter(|l| {
            l.events
                .iter()
                .any(|e| matches!(e.kind, EventKind::Apply { .. }))
        })
        .map(|l| {
            let mut high = 0;
            let points = l
                .events
                .iter()
                .filter_map(|e| {
                    let index = match e.kind {
                        EventKind::Apply { index, .. } | EventKind::Snapshot { index, .. } => index,
                        _ => return None,
                    };
                    high = high.max(index);
                    Some((at(e)?, high))
                })
                .collect();
            (l.node.as_str(), points)
        })
        .collect();
    if progress.is_empty() {
        return Vec::new();
    }
    // (time, index, members) of every configuration any node applied.
    let mut configs: Vec<(i128, u64, BTreeSet<String>)> = logs
        .iter()
        .flat_map(|l| &l.events)
        .filter_map(|e| match &e.kind {
            EventKind::Config {
                index,
                voters,
                learners,
            } => Some((
                at(e)?,
                *index,
                voters.iter().chain(learners).cloned().collect(),
            )),
            _ => None,
        })
        .collect();
    configs.sort_by_key(|c| c.0);

    // The calm time: each fault-free stretch from GRACE after it began.
    let mut calm: Vec<(i128, i128)> = Vec::new();
    let mut cursor = 0u64;
    for &(from, to) in fault_intervals(history, load_end)
        .iter()
        .chain(std::iter::once(&(load_end, load_end)))
    {
        let start = cursor.saturating_add(GRACE_NS);
        if from > start {
            calm.push((start as i128, from as i128));
        }
        cursor = cursor.max(to);
    }
    judge(&progress, &configs, &calm)
}

/// Applied at `t`, as the highest index seen by then.
fn applied_at(p: &Progress, t: i128) -> u64 {
    let n = p.partition_point(|&(when, _)| when <= t);
    if n == 0 { 0 } else { p[n - 1].1 }
}

/// At the start of every calm interval, the highest index any node has
/// applied is a target; a member that spends [`WINDOW_NS`] of calm time
/// (over one stretch or several) below it is stuck. Each member is
/// reported once per target it never reached in time.
fn judge(
    progress: &[(&str, Progress)],
    configs: &[(i128, u64, BTreeSet<String>)],
    calm: &[(i128, i128)],
) -> Vec<Stall> {
    let secs = |t: i128| t as f64 / 1e9;
    let mut out = Vec::new();
    // Per node: until when it is already reported as behind.
    let mut reported: Vec<i128> = vec![i128::MIN; progress.len()];
    for (i, &(t0, _)) in calm.iter().enumerate() {
        let target = progress
            .iter()
            .map(|(_, p)| applied_at(p, t0))
            .max()
            .unwrap_or(0);
        if target == 0 {
            continue;
        }
        let members = configs
            .iter()
            .filter(|c| c.0 <= t0)
            .max_by_key(|c| c.1)
            .map(|c| &c.2);
        for (k, (node, p)) in progress.iter().enumerate() {
            if reported[k] > t0 || members.is_some_and(|m| !m.contains(*node)) {
                continue;
            }
            // When it reached the target (never: after everything).
            let reached = p
                .get(p.partition_point(|&(_, high)| high < target))
                .map_or(i128::MAX, |&(when, _)| when);
            let mut counted = 0i128;
            for &(a, b) in &calm[i..] {
                let (a, b) = (a.max(t0), b.min(reached));
                if b <= a {
                    if a >= reached {
                        break;
                    }
                    continue;
                }
                if counted + (b - a) >= WINDOW_NS as i128 {
                    let at = a + (WINDOW_NS as i128 - counted);
                    out.push(Stall {
                        node: node.to_string(),
                        from_s: secs(t0),
                        to_s: secs(at),
                        target,
                        applied: applied_at(p, at),
                    });
                    reported[k] = reached;
                    break;
                }
                counted += b - a;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;
    use crate::history::events::NodeEvent;
    use serde_json::json;

    const S: u64 = 1_000_000_000;
    const ORIGIN: i128 = 1_700_000_000_000_000_000;

    fn wall(ns: u64) -> String {
        let t = chrono::DateTime::from_timestamp_nanos((ORIGIN + ns as i128) as i64);
        t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    }

    /// A node that applied `index` at each (seconds, index).
    fn log(node: &str, applies: &[(f64, u64)]) -> NodeLog {
        let events = applies
            .iter()
            .enumerate()
            .map(|(i, &(t, index))| NodeEvent {
                line: i + 1,
                time: Some(wall((t * 1e9) as u64)),
                node: node.into(),
                kind: EventKind::Apply {
                    index,
                    term: 1,
                    digest: String::new(),
                },
            })
            .collect();
        NodeLog {
            node: node.into(),
            events,
            ..NodeLog::default()
        }
    }

    /// A partition from 2 s to 4 s, load until 12 s.
    fn history() -> History {
        let mut a = Op::nemesis(1, "start-partition", json!({}));
        a.time = 2 * S;
        let mut b = Op::nemesis(2, "stop-partition", json!({}));
        b.time = 4 * S;
        let mut c = Op::nemesis(3, "recover", json!({}));
        c.time = 12 * S;
        History::numbered(vec![a, b, c]).unwrap()
    }

    fn steady(node: &str, until: u64) -> NodeLog {
        let applies: Vec<(f64, u64)> = (1..=until).map(|i| (i as f64 * 0.1, i)).collect();
        log(node, &applies)
    }

    #[test]
    fn followers_that_keep_up_pass_and_a_stuck_one_is_named_with_the_stretch() {
        // 0.1 s per entry: by 5.5 s (4 s + grace) the cluster is at 55.
        let fine = [steady("n1", 110), steady("n2", 110), steady("n3", 110)];
        assert!(stalls(&history(), &fine, ORIGIN).is_empty());
        let stuck = log("n3", &[(0.1, 1), (2.9, 29)]);
        let found = stalls(
            &history(),
            &[steady("n1", 110), steady("n2", 110), stuck],
            ORIGIN,
        );
        // Calm from 1.5 s to 2 s (too short) and from 5.5 s: index 55 by
        // then, still not reached 1.5 s later.
        assert_eq!(found.len(), 1, "{found:?}");
        let s = &found[0];
        assert_eq!((s.node.as_str(), s.target, s.applied), ("n3", 55, 29));
        assert_eq!((s.from_s, s.to_s), (5.5, 7.0));
        assert!(
            s.explanation().contains("n3 stayed behind"),
            "{}",
            s.explanation()
        );
    }

    #[test]
    fn a_node_outside_the_configuration_or_catching_up_within_the_window_is_not_stuck() {
        let out = log("n3", &[(0.1, 1)]);
        let mut config = steady("n1", 110);
        config.events.push(NodeEvent {
            line: 999,
            time: Some(wall(S)),
            node: "n1".into(),
            kind: EventKind::Config {
                index: 30,
                voters: vec!["n1".into(), "n2".into()],
                learners: vec![],
            },
        });
        assert!(
            stalls(
                &history(),
                &[config, steady("n2", 110), out.clone()],
                ORIGIN
            )
            .is_empty()
        );
        // Caught up by entries in the first calm interval, then by a
        // snapshot half a second into the second.
        let mut out = log("n3", &[(0.1, 1), (1.6, 15)]);
        out.events.push(NodeEvent {
            line: 3,
            time: Some(wall(6 * S)),
            node: "n3".into(),
            kind: EventKind::Snapshot { index: 60, term: 1 },
        });
        assert!(
            stalls(
                &history(),
                &[steady("n1", 110), steady("n2", 110), out],
                ORIGIN
            )
            .is_empty()
        );
        // Logs without apply events are not judged.
        let bare = NodeLog {
            node: "n3".into(),
            ..NodeLog::default()
        };
        assert!(stalls(&history(), &[steady("n1", 110), bare], ORIGIN).is_empty());
    }

    #[test]
    fn calm_time_behind_adds_up_over_short_stretches_and_faults_do_not_count() {
        // Calm 1.5-2 s, 5.5-6.3 s, 9.5-10.3 s, 13.5-20 s: stretches of
        // 0.8 s after grace, faults of 2 s between.
        let mut ops = Vec::new();
        for (i, (a, b)) in [(2.0, 4.0), (6.3, 8.0), (10.3, 12.0)].iter().enumerate() {
            let mut start = Op::nemesis(2 * i as u64 + 1, "start-kill", json!({}));
            start.time = (a * 1e9) as u64;
            let mut stop = Op::nemesis(2 * i as u64 + 2, "stop-kill", json!({}));
            stop.time = (b * 1e9) as u64;
            ops.extend([start, stop]);
        }
        let mut end = Op::nemesis(9, "recover", json!({}));
        end.time = 20 * S;
        ops.push(end);
        let h = History::numbered(ops).unwrap();
        let stuck = log("n3", &[(0.1, 1)]);
        let found = stalls(&h, &[steady("n1", 200), stuck], ORIGIN);
        // Behind index 15 (reached by 1.5 s): 0.5 s + 0.8 s + 0.2 s of
        // calm time, and reported once.
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].from_s, found[0].target), (1.5, 15));
        assert!((found[0].to_s - 9.7).abs() < 1e-6, "{found:?}");
        // One that catches up within each calm interval is never stuck.
        let late = log(
            "n3",
            &[(0.1, 1), (6.0, 55), (9.9, 95), (13.9, 135), (19.0, 190)],
        );
        assert!(stalls(&h, &[steady("n1", 200), late], ORIGIN).is_empty());
    }
}
