//! State-machine safety (Raft §5.4.3, Figure 3): if a node has applied a
//! log entry at an index, no node ever applies a different entry there.
//!
//! Reads `apply` events (index, term, digest of the command): at each index
//! all of them must agree on (term, digest). One node applying the same
//! entry again after a restart is fine; one node applying two different
//! entries at one index is not. `snapshot` events are not judged: `docs/contract.md`
//! does not pin down which term they carry (the last included entry's, or
//! the node's current one), and a checker must not guess its way to a
//! false alarm.
//!
//! Its second rule, on the membership changes leaders made, is in
//! [`super::changes`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::Verdict;
use crate::check::changes::{self, UnsafeChange};
use crate::history::events::{EventKind, NodeLog};

/// The `state-machine` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachineResult {
    /// Invalid when nodes applied different entries at one index; unknown
    /// when some node's log is missing (see `reason`).
    pub valid: Verdict,
    /// Set when there was nothing to check (see [`crate::check`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Why the verdict is unknown: some node's events could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Distinct log indexes applied.
    pub indexes: usize,
    /// The first [`MAX_VIOLATIONS`] indexes where nodes disagree.
    pub violations: Vec<StateMachineViolation>,
    /// All indexes where nodes disagree (a diverged log disagrees at many).
    pub violation_count: usize,
    /// Configuration entries leaders said they appended (`change` events).
    #[serde(default)]
    pub changes: usize,
    /// Those appended against Raft's rules for changes ([`super::changes`]).
    #[serde(default)]
    pub unsafe_changes: Vec<UnsafeChange>,
}

/// Nodes that applied different entries at one index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachineViolation {
    /// The log index.
    pub index: u64,
    /// The nodes that applied an entry there, sorted, each once.
    pub nodes: Vec<String>,
    /// Each distinct (node, entry) seen at the index.
    pub entries: Vec<AppliedEntry>,
}

/// What a node applied at an index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedEntry {
    /// The node that applied it.
    pub node: String,
    /// The entry's term, as the `apply` event said.
    pub term: u64,
    /// The digest of the entry's command, as the node logged it.
    pub digest: String,
    /// When the node first logged it (RFC 3339); `None`: the event had no
    /// time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// How many violations `results.json` lists.
pub const MAX_VIOLATIONS: usize = 20;

/// Checks the `apply` events of every log. No logs at all is a skip, not a
/// verdict (valid, with [`super::NO_EVENT_LOGS`]); a node whose log is
/// missing is for the caller to judge.
pub fn check(logs: &[NodeLog]) -> StateMachineResult {
    if logs.is_empty() {
        return StateMachineResult {
            valid: Verdict::Valid,
            skipped: Some(super::NO_EVENT_LOGS.to_string()),
            reason: None,
            indexes: 0,
            violations: Vec::new(),
            violation_count: 0,
            changes: 0,
            unsafe_changes: Vec::new(),
        };
    }
    let mut at: BTreeMap<u64, Vec<AppliedEntry>> = BTreeMap::new();
    for log in logs {
        for e in &log.events {
            let EventKind::Apply {
                index,
                term,
                digest,
            } = &e.kind
            else {
                continue;
            };
            let entries = at.entry(*index).or_default();
            let same =
                |x: &AppliedEntry| x.node == e.node && x.term == *term && &x.digest == digest;
            if !entries.iter().any(same) {
                entries.push(AppliedEntry {
                    node: e.node.clone(),
                    term: *term,
                    digest: digest.clone(),
                    time: e.time.clone(),
                });
            }
        }
    }
    let mut violations = Vec::new();
    let mut violation_count = 0;
    for (&index, entries) in &at {
        let first = &entries[0];
        let agree = entries
            .iter()
            .all(|e| e.term == first.term && e.digest == first.digest);
        if agree {
            continue;
        }
        violation_count += 1;
        if violations.len() < MAX_VIOLATIONS {
            let mut nodes: Vec<String> = entries.iter().map(|e| e.node.clone()).collect();
            nodes.sort();
            nodes.dedup();
            violations.push(StateMachineViolation {
                index,
                nodes,
                entries: entries.clone(),
            });
        }
    }
    let (changes, unsafe_changes) = changes::check(logs);
    StateMachineResult {
        valid: if violation_count == 0 && unsafe_changes.is_empty() {
            Verdict::Valid
        } else {
            Verdict::Invalid
        },
        skipped: None,
        reason: None,
        indexes: at.len(),
        violations,
        violation_count,
        changes,
        unsafe_changes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::events::parse_node_log;
    use std::path::Path;

    fn apply(index: u64, term: u64, digest: &str) -> String {
        format!(
            "{{\"time\":\"t{index}\",\"event\":\"apply\",\"index\":{index},\"term\":{term},\"digest\":\"{digest}\"}}\n"
        )
    }

    fn log(node: &str, lines: &[String]) -> NodeLog {
        parse_node_log(&lines.concat(), Path::new("events.jsonl"), node).unwrap()
    }

    #[test]
    fn agreeing_nodes_and_reapplying_after_restart_are_valid() {
        let r = check(&[
            log(
                "n1",
                &[
                    apply(1, 1, "a"),
                    apply(2, 1, "b"),
                    apply(1, 1, "a"),
                    apply(2, 1, "b"),
                ],
            ),
            log(
                "n2",
                &[apply(1, 1, "a"), apply(2, 1, "b"), apply(3, 2, "c")],
            ),
            log(
                "n3",
                &[
                    "{\"event\":\"snapshot\",\"index\":2,\"term\":1}\n".into(),
                    apply(3, 2, "c"),
                ],
            ),
        ]);
        assert_eq!(r.valid, Verdict::Valid, "{r:?}");
        assert_eq!(r.indexes, 3);
    }

    #[test]
    fn different_entries_at_an_index_name_the_index_and_nodes() {
        let r = check(&[
            log("n1", &[apply(1, 1, "a"), apply(2, 1, "b")]),
            log("n2", &[apply(1, 1, "a"), apply(2, 2, "x")]),
        ]);
        assert_eq!(r.valid, Verdict::Invalid);
        assert_eq!(r.violation_count, 1);
        let v = &r.violations[0];
        assert_eq!(v.index, 2);
        assert_eq!(v.nodes, vec!["n1", "n2"]);
        assert_eq!(v.entries.len(), 2);
        assert_eq!(v.entries[1].digest, "x");
    }

    #[test]
    fn same_term_different_digest_is_a_violation() {
        let r = check(&[
            log("n1", &[apply(5, 3, "a")]),
            log("n2", &[apply(5, 3, "b")]),
        ]);
        assert_eq!(r.valid, Verdict::Invalid);
    }

    #[test]
    fn one_node_applying_two_entries_at_one_index_is_a_violation() {
        let r = check(&[log("n1", &[apply(1, 1, "a"), apply(1, 2, "z")])]);
        assert_eq!(r.valid, Verdict::Invalid);
        assert_eq!(r.violations[0].nodes, vec!["n1"]);
    }
}
