//! Election safety (Raft §5.2, Figure 3): at most one leader per term.
//!
//! Reads the `role` events of every node's log and reports each term in
//! which more than one node said it became leader, with the nodes and the
//! times they said so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::Verdict;
use crate::history::events::{EventKind, NodeLog, Role};

/// The `election` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionResult {
    /// Invalid when some term had two leaders; unknown when some node's
    /// log is missing (see `reason`).
    pub valid: Verdict,
    /// Set when there was nothing to check (see [`crate::check`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Why the verdict is unknown: some node's events could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Terms in which some node became leader.
    pub terms: usize,
    /// Every term with more than one leader, in term order.
    pub violations: Vec<ElectionViolation>,
}

/// Two or more leaders in one term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionViolation {
    /// The term.
    pub term: u64,
    /// The nodes that said they became its leader, sorted.
    pub nodes: Vec<String>,
    /// When each node (same order) first logged that it became leader.
    pub times: Vec<String>,
}

/// Checks the `role` events of every log. No logs at all is a skip, not a
/// verdict (valid, with [`super::NO_EVENT_LOGS`]); a node whose log is
/// missing is for the caller to judge.
pub fn check(logs: &[NodeLog]) -> ElectionResult {
    if logs.is_empty() {
        return ElectionResult {
            valid: Verdict::Valid,
            skipped: Some(super::NO_EVENT_LOGS.to_string()),
            reason: None,
            terms: 0,
            violations: Vec::new(),
        };
    }
    // term -> node -> time of its first leader event in that term.
    let mut leaders: BTreeMap<u64, BTreeMap<&str, String>> = BTreeMap::new();
    for log in logs {
        for e in &log.events {
            if let EventKind::Role {
                role: Role::Leader,
                term,
            } = e.kind
            {
                let time = e
                    .time
                    .clone()
                    .unwrap_or_else(|| format!("{}:{} (no time)", log.path.display(), e.line));
                leaders
                    .entry(term)
                    .or_default()
                    .entry(e.node.as_str())
                    .or_insert(time);
            }
        }
    }
    let violations: Vec<ElectionViolation> = leaders
        .iter()
        .filter(|(_, nodes)| nodes.len() > 1)
        .map(|(&term, nodes)| ElectionViolation {
            term,
            nodes: nodes.keys().map(|n| n.to_string()).collect(),
            times: nodes.values().cloned().collect(),
        })
        .collect();
    ElectionResult {
        valid: if violations.is_empty() {
            Verdict::Valid
        } else {
            Verdict::Invalid
        },
        skipped: None,
        reason: None,
        terms: leaders.len(),
        violations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::events::parse_node_log;
    use std::path::Path;

    fn log(node: &str, lines: &[(&str, &str, u64)]) -> NodeLog {
        let text: String = lines
            .iter()
            .map(|(time, role, term)| {
                format!(
                    "{{\"time\":\"{time}\",\"node\":\"{node}\",\"event\":\"role\",\"role\":\"{role}\",\"term\":{term}}}\n"
                )
            })
            .collect();
        parse_node_log(&text, Path::new("events.jsonl"), node).unwrap()
    }

    #[test]
    fn one_leader_per_term_is_valid_even_when_repeated() {
        let r = check(&[
            log(
                "n1",
                &[
                    ("t1", "candidate", 1),
                    ("t2", "leader", 1),
                    ("t9", "leader", 1),
                ],
            ),
            log(
                "n2",
                &[
                    ("t1", "follower", 1),
                    ("t3", "candidate", 2),
                    ("t4", "leader", 2),
                ],
            ),
            log("n3", &[("t5", "candidate", 2), ("t6", "follower", 2)]),
        ]);
        assert_eq!(r.valid, Verdict::Valid);
        assert_eq!(r.terms, 2);
        assert!(r.violations.is_empty());
    }

    #[test]
    fn two_leaders_in_a_term_name_the_term_nodes_and_times() {
        let r = check(&[
            log("n1", &[("10:00:01", "leader", 3)]),
            log("n2", &[("10:00:00", "leader", 2)]),
            log(
                "n3",
                &[("10:00:02", "leader", 3), ("10:00:03", "leader", 4)],
            ),
        ]);
        assert_eq!(r.valid, Verdict::Invalid);
        assert_eq!(
            r.violations,
            vec![ElectionViolation {
                term: 3,
                nodes: vec!["n1".into(), "n3".into()],
                times: vec!["10:00:01".into(), "10:00:02".into()],
            }]
        );
    }

    #[test]
    fn no_logs_is_skipped() {
        let r = check(&[]);
        assert_eq!(r.valid, Verdict::Valid);
        assert!(r.skipped.is_some());
    }
}
