//! When an anomaly became visible: the earliest moment, in seconds since the
//! history began, by which some checker's evidence was complete. The
//! self-test reports it as how long a bug took to show.
//!
//! - linearizable: the completion of the operation that cannot be placed;
//! - state-machine: the moment a second, different entry was applied at an
//!   index (the first time each digest appears, the second of those);
//! - election: the moment the second leader of a term took office, or a
//!   node showed it had lost a vote (its restart, or its second vote).
//!
//! Node events carry wall-clock times, placed on the history's clock by
//! `history_start` in the run's record; without it only the linearizable
//! evidence has a time.

use serde_json::Value as Json;

use super::Results;
use crate::history::events::wall_ns;

/// Seconds since the history began at which the first anomaly was complete,
/// or `None` if no checker found one (or none of its evidence has a time).
pub fn first_anomaly_secs(results: &Results) -> Option<f64> {
    let origin = results
        .run
        .get("history_start")
        .and_then(Json::as_str)
        .and_then(wall_ns);
    let on_history_clock = |t: &str| -> Option<f64> { Some((wall_ns(t)? - origin?) as f64 / 1e9) };
    let c = &results.checkers;
    let linearizable = c
        .linearizable
        .failures
        .iter()
        .map(|f| f.op.complete.unwrap_or(f.op.invoke) as f64 / 1e9);
    let state_machine = c.state_machine.violations.iter().filter_map(|v| {
        let mut firsts: Vec<(f64, &str)> = Vec::new();
        for e in &v.entries {
            let Some(t) = e.time.as_deref().and_then(on_history_clock) else {
                continue;
            };
            match firsts.iter_mut().find(|(_, d)| *d == e.digest) {
                Some(first) => first.0 = first.0.min(t),
                None => firsts.push((t, &e.digest)),
            }
        }
        second_smallest(firsts.into_iter().map(|(t, _)| t))
    });
    let changes = c
        .state_machine
        .unsafe_changes
        .iter()
        .filter_map(|u| u.time.as_deref().and_then(on_history_clock));
    let election = c
        .election
        .violations
        .iter()
        .filter_map(|v| second_smallest(v.times.iter().filter_map(|t| on_history_clock(t))))
        .chain(
            c.election
                .lost_votes
                .iter()
                .filter_map(|l| on_history_clock(&l.at)),
        );
    // A replica's differing digest is visible when it is logged; a final
    // dump's difference, availability and node exits at their own times.
    let replica = c.replica_state.violations.iter().filter_map(|v| {
        v.time
            .as_deref()
            .and_then(on_history_clock)
            .or_else(|| (v.when == "end").then_some(f64::INFINITY))
    });
    let availability = c.availability.violations.iter().map(|v| v.to_s);
    let exits = c
        .node_health
        .exits
        .iter()
        .filter(|e| !e.harness_side)
        .map(|e| e.at_s);
    linearizable
        .chain(state_machine)
        .chain(changes)
        .chain(election)
        .chain(replica)
        .chain(availability)
        .chain(exits)
        .filter(|t| t.is_finite())
        .min_by(f64::total_cmp)
        .map(|t| t.max(0.0))
}

fn second_smallest(times: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = times.collect();
    v.sort_by(f64::total_cmp);
    v.get(1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::election::ElectionViolation;
    use crate::check::state_machine::{AppliedEntry, StateMachineViolation};
    use crate::check::{CheckOptions, check_history};
    use crate::history::History;

    fn results() -> Results {
        let mut r = check_history(
            &History::new(Vec::new()).unwrap(),
            &[],
            &CheckOptions::default(),
        );
        r.run = serde_json::json!({"history_start": "2026-01-01T00:00:10Z"});
        r
    }

    fn entry(node: &str, digest: &str, time: &str) -> AppliedEntry {
        AppliedEntry {
            node: node.into(),
            term: 1,
            digest: digest.into(),
            time: Some(time.into()),
        }
    }

    #[test]
    fn a_valid_run_has_no_anomaly_time() {
        assert_eq!(first_anomaly_secs(&results()), None);
    }

    #[test]
    fn two_entries_at_an_index_count_from_the_second_digest() {
        let mut r = results();
        r.checkers
            .state_machine
            .violations
            .push(StateMachineViolation {
                index: 7,
                nodes: vec!["n1".into(), "n2".into()],
                entries: vec![
                    entry("n1", "aa", "2026-01-01T00:00:12Z"),
                    entry("n2", "aa", "2026-01-01T00:00:11Z"),
                    entry("n3", "bb", "2026-01-01T00:00:15.5Z"),
                    entry("n1", "bb", "2026-01-01T00:00:19Z"),
                ],
            });
        assert_eq!(first_anomaly_secs(&r), Some(5.5));
        // A second leader in a term, earlier, wins.
        r.checkers.election.violations.push(ElectionViolation {
            term: 3,
            nodes: vec!["n1".into(), "n2".into()],
            times: vec!["2026-01-01T00:00:14Z".into(), "2026-01-01T00:00:13Z".into()],
        });
        assert_eq!(first_anomaly_secs(&r), Some(4.0));
    }

    #[test]
    fn without_a_history_start_node_evidence_has_no_time() {
        let mut r = results();
        r.run = Json::Null;
        r.checkers.election.violations.push(ElectionViolation {
            term: 3,
            nodes: vec!["n1".into(), "n2".into()],
            times: vec!["2026-01-01T00:00:14Z".into(), "2026-01-01T00:00:13Z".into()],
        });
        assert_eq!(first_anomaly_secs(&r), None);
    }
}
