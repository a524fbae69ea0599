//! Safety of membership changes, a rule of the `state-machine` checker.
//! Raft changes its configuration one server at a time (§4.1 of Ongaro's
//! thesis), and that is safe only under two conditions on the leader that
//! appends a configuration entry:
//!
//! 1. the configuration before it has committed (one change at a time);
//! 2. the leader has committed an entry of its own term (the correction
//!    Ongaro posted to raft-dev in 2015: without it, a leader elected under
//!    the old configuration can overwrite a change another leader
//!    committed).
//!
//! Broken, they make two majorities that do not overlap, and the logs
//! diverge only when a later election happens to use both. So the rule is
//! checked where it is broken, from the leader's `change` event (its
//! commit index and the previous configuration's index when it appended)
//! and the `apply` events (the term of the entry at that commit index).
//! An entry at the commit index whose term nobody logged (inside a
//! snapshot) is not judged by the second rule.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::history::events::{EventKind, NodeLog};

/// A configuration entry a leader appended against one of the rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsafeChange {
    /// The leader.
    pub node: String,
    /// Its term.
    pub term: u64,
    /// The configuration entry's index.
    pub index: u64,
    /// The leader's commit index when it appended the entry.
    pub committed: u64,
    /// The index of the configuration before it.
    pub previous: u64,
    /// Which rule, in words.
    pub why: String,
    /// When the leader logged the change (RFC 3339), if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// Judges every `change` event of `logs`; returns how many there were and
/// those that broke a rule.
pub fn check(logs: &[NodeLog]) -> (usize, Vec<UnsafeChange>) {
    let mut term_at: HashMap<u64, u64> = HashMap::new();
    for e in logs.iter().flat_map(|l| &l.events) {
        if let EventKind::Apply { index, term, .. } = e.kind {
            term_at.insert(index, term);
        }
    }
    let mut judged = 0;
    let mut unsafe_changes = Vec::new();
    for e in logs.iter().flat_map(|l| &l.events) {
        let EventKind::Change {
            index,
            term,
            committed,
            previous,
        } = e.kind
        else {
            continue;
        };
        judged += 1;
        let why = if previous > committed {
            Some(format!(
                "the configuration before it (index {previous}) had not committed: two changes \
                 in flight"
            ))
        } else {
            match term_at.get(&committed) {
                Some(&t) if t < term => Some(format!(
                    "its term had not committed an entry (its commit index {committed} holds an \
                     entry of term {t}): a change before the leader's first entry commits"
                )),
                _ => None,
            }
        };
        if let Some(why) = why {
            unsafe_changes.push(UnsafeChange {
                node: e.node.clone(),
                term,
                index,
                committed,
                previous,
                why,
                time: e.time.clone(),
            });
        }
    }
    (judged, unsafe_changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::events::parse_node_log;
    use std::path::Path;

    fn log(node: &str, lines: &[&str]) -> NodeLog {
        let text: String = lines
            .iter()
            .map(|l| format!("{{\"node\":\"{node}\",{l}}}\n"))
            .collect();
        parse_node_log(&text, Path::new("events.jsonl"), node).unwrap()
    }

    fn apply(index: u64, term: u64) -> String {
        format!(r#""event":"apply","index":{index},"term":{term},"digest":"00""#)
    }

    fn change(index: u64, term: u64, committed: u64, previous: u64) -> String {
        format!(
            r#""event":"change","index":{index},"term":{term},"committed":{committed},"previous":{previous}"#
        )
    }

    #[test]
    fn changes_after_the_terms_first_commit_one_at_a_time_are_safe() {
        let n1 = log(
            "n1",
            &[
                &apply(1, 1),
                &apply(2, 2),
                &change(3, 2, 2, 0),
                &apply(3, 2),
                &change(4, 2, 3, 3),
            ],
        );
        // The entry at a commit index in a snapshot is not judged.
        let n2 = log("n2", &[&change(9, 3, 7, 4)]);
        let (judged, bad) = check(&[n1, n2]);
        assert_eq!(judged, 3);
        assert!(bad.is_empty(), "{bad:?}");
    }

    #[test]
    fn a_change_before_the_terms_first_commit_or_during_another_is_unsafe() {
        // n2 leads term 3; its no-op is 6; it appends a change at 7 while
        // its commit index (5) holds an entry of term 2.
        let n2 = log(
            "n2",
            &[&apply(5, 2), &change(7, 3, 5, 4), &change(8, 3, 7, 7)],
        );
        let n3 = log("n3", &[&apply(6, 3), &apply(7, 3)]);
        let (judged, bad) = check(&[n2, n3]);
        assert_eq!(judged, 2);
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(
            (bad[0].node.as_str(), bad[0].index, bad[0].term),
            ("n2", 7, 3)
        );
        assert!(bad[0].why.contains("term 2"), "{}", bad[0].why);
        let two = log("n1", &[&apply(10, 4), &change(12, 4, 10, 11)]);
        let (_, bad) = check(&[two]);
        assert!(bad[0].why.contains("two changes in flight"), "{bad:?}");
    }
}
