//! Replica state: replicas that applied the same log up to an index hold
//! the same state there. The state-machine checker compares what was
//! applied (the entries' digests); this one compares what it made, so it
//! sees a replica whose state went wrong while its log is right (a
//! snapshot installed into the log but not into the state machine,
//! sessions lost in a snapshot, an entry applied twice on one node).
//!
//! Two sources:
//!
//! - **During the run**: each node's `state` events (digests of its values
//!   and client sessions every few dozen applied indexes and at snapshots).
//!   At each index every digest must agree: across nodes, and for one node
//!   across restarts (replaying the same log must rebuild the same state).
//! - **At the end**: `replicas.json`, each node's own applied state read
//!   through `Admin.LocalDump` (not through the leader) after the final
//!   reads, once the nodes' applied indexes agreed. Nodes at equal applied
//!   indexes must hold equal values and equal sessions.
//!
//! A difference names the node, the index and a key (from the per-key
//! digests, or the values themselves), or says it is in the sessions.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::check::Verdict;
use crate::history::events::{EventKind, NodeLog};

/// The file a run writes after its final reads.
pub const REPLICAS_FILE: &str = "replicas.json";

/// How many differences `results.json` lists.
pub const MAX_VIOLATIONS: usize = 20;

/// `replicas.json`: each node's state at the end of the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replicas {
    /// How long the harness waited for the applied indexes to agree.
    pub waited_ms: u64,
    /// Every node's dump, or why there is none.
    pub nodes: Vec<ReplicaDump>,
}

/// One node's answer to `Admin.LocalDump`, or why there is none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaDump {
    /// The node's id.
    pub node: String,
    /// Why the node gave no dump (unreachable, refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The last index the node applied when it answered.
    #[serde(default)]
    pub applied_index: u64,
    /// The node's commit index then.
    #[serde(default)]
    pub commit_index: u64,
    /// The digest of its values, as its state events write it.
    #[serde(default)]
    pub values_digest: String,
    /// The digest of its client sessions.
    #[serde(default)]
    pub sessions_digest: String,
    /// Key → value (UTF-8, or `hex:` and the bytes).
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

/// Reads `DIR/replicas.json`; `None` when the run wrote none.
pub fn read_replicas(dir: &Path) -> Result<Option<Replicas>, String> {
    let path = dir.join(REPLICAS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}:{}: {e}", path.display(), e.line())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The `replica-state` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStateResult {
    /// Invalid when two replicas differ at one applied index.
    pub valid: Verdict,
    /// Set when there was nothing to compare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Indexes at which two or more digests were compared during the run.
    pub compared_indexes: usize,
    /// Nodes compared at the end, at their common applied index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub final_compared: Vec<String>,
    /// Nodes left out at the end (no answer, or another applied index),
    /// each with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub final_not_compared: Vec<String>,
    /// The first differences found (the report shows a few).
    pub violations: Vec<ReplicaViolation>,
    /// How many differences there were in all.
    pub violation_count: usize,
}

impl Default for ReplicaStateResult {
    fn default() -> Self {
        ReplicaStateResult {
            valid: Verdict::Valid,
            skipped: Some("not checked".into()),
            compared_indexes: 0,
            final_compared: Vec::new(),
            final_not_compared: Vec::new(),
            violations: Vec::new(),
            violation_count: 0,
        }
    }
}

/// Two replicas (or one, before and after a restart) with different states
/// at one applied index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaViolation {
    /// `run` (state events) or `end` (LocalDump).
    pub when: String,
    /// The applied index at which the states differ.
    pub index: u64,
    /// The node whose state differs from the majority's at the index.
    pub node: String,
    /// The node it was compared with.
    pub other: String,
    /// A key whose value differs, or `(client sessions)`.
    pub key: String,
    /// When the differing digest was logged (run), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// What differs, in words.
    pub explanation: String,
}

/// One digest seen at an index.
struct Seen<'a> {
    node: &'a str,
    values: &'a str,
    sessions: &'a str,
    per_key: Option<&'a BTreeMap<String, String>>,
    time: Option<&'a str>,
}

/// Compares `state` events across logs, and the final dumps if any.
pub fn check(logs: &[NodeLog], dumps: Option<&Replicas>) -> ReplicaStateResult {
    let mut at: BTreeMap<u64, Vec<Seen<'_>>> = BTreeMap::new();
    for log in logs {
        for e in &log.events {
            if let EventKind::State {
                index,
                values,
                sessions,
                per_key,
            } = &e.kind
            {
                at.entry(*index).or_default().push(Seen {
                    node: &log.node,
                    values,
                    sessions,
                    per_key: per_key.as_ref(),
                    time: e.time.as_deref(),
                });
            }
        }
    }
    let has_events = !at.is_empty();
    let mut violations = Vec::new();
    let mut compared_indexes = 0;
    for (index, seen) in &at {
        if seen.len() < 2 {
            continue;
        }
        compared_indexes += 1;
        // The most common digest is taken as the reference.
        let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for s in seen {
            *counts.entry((s.values, s.sessions)).or_default() += 1;
        }
        let Some(reference) = counts.iter().max_by_key(|(_, n)| **n).map(|(d, _)| *d) else {
            continue;
        };
        let Some(good) = seen.iter().find(|s| (s.values, s.sessions) == reference) else {
            continue;
        };
        // One violation per differing node at an index.
        let mut named: Vec<&str> = Vec::new();
        for s in seen.iter().filter(|s| (s.values, s.sessions) != reference) {
            if named.contains(&s.node) {
                continue;
            }
            named.push(s.node);
            let key = differing_key(good, s);
            let same_node = s.node == good.node;
            violations.push(ReplicaViolation {
                when: "run".into(),
                index: *index,
                node: s.node.to_string(),
                other: good.node.to_string(),
                key: key.clone(),
                time: s.time.map(str::to_string),
                explanation: if same_node {
                    format!(
                        "{} logged two different states at applied index {index} \
                         (replaying the same log rebuilt another state): {key} differs",
                        s.node
                    )
                } else {
                    format!(
                        "at applied index {index}, {}'s state differs from {}'s: {key}",
                        s.node, good.node
                    )
                },
            });
        }
    }

    let (mut final_compared, mut final_not_compared) = (Vec::new(), Vec::new());
    if let Some(r) = dumps {
        compare_dumps(
            r,
            &mut violations,
            &mut final_compared,
            &mut final_not_compared,
        );
    }
    let nothing = !has_events && final_compared.len() < 2;
    let violation_count = violations.len();
    violations.truncate(MAX_VIOLATIONS);
    ReplicaStateResult {
        valid: if violation_count > 0 {
            Verdict::Invalid
        } else {
            Verdict::Valid
        },
        skipped: (nothing && violation_count == 0).then(|| {
            if dumps.is_none() {
                "no state digests in the event logs and no replicas.json".into()
            } else {
                "fewer than two replicas could be compared".into()
            }
        }),
        compared_indexes,
        final_compared,
        final_not_compared,
        violations,
        violation_count,
    }
}

/// What differs between two digests at one index.
fn differing_key(good: &Seen<'_>, bad: &Seen<'_>) -> String {
    if good.values == bad.values {
        return "(client sessions)".into();
    }
    match (good.per_key, bad.per_key) {
        (Some(a), Some(b)) => a
            .iter()
            .find(|(k, h)| b.get(*k) != Some(h))
            .map(|(k, _)| format!("key {k}"))
            .or_else(|| {
                b.keys()
                    .find(|k| !a.contains_key(*k))
                    .map(|k| format!("key {k}"))
            })
            .unwrap_or_else(|| "(values)".into()),
        _ => "(values; too many keys to name one)".into(),
    }
}

fn compare_dumps(
    r: &Replicas,
    violations: &mut Vec<ReplicaViolation>,
    compared: &mut Vec<String>,
    not_compared: &mut Vec<String>,
) {
    let answered: Vec<&ReplicaDump> = r.nodes.iter().filter(|d| d.error.is_none()).collect();
    for d in r.nodes.iter().filter(|d| d.error.is_some()) {
        not_compared.push(format!(
            "{}: {}",
            d.node,
            d.error.as_deref().unwrap_or_default()
        ));
    }
    // The applied index most nodes reached (the highest on a tie).
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for d in &answered {
        *counts.entry(d.applied_index).or_default() += 1;
    }
    let Some(index) = counts
        .iter()
        .max_by_key(|(i, n)| (**n, **i))
        .map(|(i, _)| *i)
    else {
        return;
    };
    let group: Vec<&ReplicaDump> = answered
        .iter()
        .copied()
        .filter(|d| d.applied_index == index)
        .collect();
    for d in answered.iter().filter(|d| d.applied_index != index) {
        not_compared.push(format!(
            "{}: applied index {} (the others {index})",
            d.node, d.applied_index
        ));
    }
    compared.extend(group.iter().map(|d| d.node.clone()));
    let Some(first) = group.first() else {
        return;
    };
    for d in &group[1..] {
        let key = first
            .values
            .iter()
            .find(|(k, v)| d.values.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .or_else(|| {
                d.values
                    .keys()
                    .find(|k| !first.values.contains_key(*k))
                    .cloned()
            });
        let explanation = match &key {
            Some(k) => format!(
                "at the end, both at applied index {index}: {} holds {k} = {}, {} holds {}",
                d.node,
                show(d.values.get(k)),
                first.node,
                show(first.values.get(k))
            ),
            None if d.sessions_digest != first.sessions_digest => format!(
                "at the end, both at applied index {index}: {} and {} hold equal values \
                 but different client sessions",
                d.node, first.node
            ),
            None => continue,
        };
        violations.push(ReplicaViolation {
            when: "end".into(),
            index,
            node: d.node.clone(),
            other: first.node.clone(),
            key: key.map_or_else(|| "(client sessions)".into(), |k| format!("key {k}")),
            time: None,
            explanation,
        });
    }
}

fn show(v: Option<&String>) -> String {
    match v {
        Some(v) if v.len() > 80 => {
            let cut: String = v.chars().take(80).collect();
            format!("{cut:?}… ({} bytes)", v.len())
        }
        Some(v) => format!("{v:?}"),
        None => "nothing".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::events::parse_node_log;

    fn log(node: &str, lines: &[(u64, &str, &str, &str)]) -> NodeLog {
        let text: String = lines
            .iter()
            .map(|(i, v, s, k)| {
                format!(
                    "{{\"time\":\"t\",\"event\":\"state\",\"index\":{i},\"values\":\"{v}\",\
                     \"sessions\":\"{s}\",\"keys\":1,\"per_key\":{{\"k1\":\"{k}\"}}}}\n"
                )
            })
            .collect();
        parse_node_log(&text, Path::new("events.jsonl"), node).unwrap()
    }

    #[test]
    fn equal_digests_are_valid_and_a_differing_node_is_named_with_its_key() {
        let a = log("n1", &[(64, "a", "s", "x"), (128, "b", "s", "y")]);
        let b = log("n2", &[(64, "a", "s", "x"), (128, "b", "s", "y")]);
        let r = check(&[a.clone(), b], None);
        assert_eq!(r.valid, Verdict::Valid, "{r:?}");
        assert_eq!(r.compared_indexes, 2);
        let c = log("n3", &[(128, "c", "s", "z")]);
        let d = log("n2", &[(128, "b", "s", "y")]);
        let r = check(&[a, d, c], None);
        assert_eq!(r.valid, Verdict::Invalid);
        assert_eq!(r.violations[0].node, "n3");
        assert_eq!(r.violations[0].index, 128);
        assert_eq!(r.violations[0].key, "key k1");
    }

    #[test]
    fn one_node_rebuilding_another_state_after_a_restart_is_caught() {
        let a = log("n1", &[(64, "a", "s1", "x"), (64, "a", "s0", "x")]);
        let r = check(&[a], None);
        assert_eq!(r.valid, Verdict::Invalid, "{r:?}");
        assert_eq!(r.violations[0].key, "(client sessions)");
    }

    #[test]
    fn final_dumps_at_equal_indexes_must_hold_equal_values() {
        let dump = |node: &str, index, v: &str| ReplicaDump {
            node: node.into(),
            applied_index: index,
            values: [("k".to_string(), v.to_string())].into(),
            sessions_digest: "s".into(),
            ..ReplicaDump::default()
        };
        let ok = Replicas {
            waited_ms: 0,
            nodes: vec![dump("n1", 9, "1"), dump("n2", 9, "1"), dump("n3", 7, "0")],
        };
        let r = check(&[], Some(&ok));
        assert_eq!(r.valid, Verdict::Valid, "{r:?}");
        assert_eq!(r.final_compared, ["n1", "n2"]);
        assert!(r.final_not_compared[0].starts_with("n3: applied index 7"));
        let bad = Replicas {
            waited_ms: 0,
            nodes: vec![dump("n1", 9, "1"), dump("n2", 9, "2")],
        };
        let r = check(&[], Some(&bad));
        assert_eq!(r.valid, Verdict::Invalid);
        assert_eq!(r.violations[0].node, "n2");
        assert_eq!(r.violations[0].key, "key k");
        assert!(r.violations[0].explanation.contains("\"2\""), "{r:?}");
    }
}
