//! Node health: a node process that exits without being asked (a panic, a
//! refused write, an assertion) is a failure of the system under test, even
//! when every answer it gave was right. The run records each such exit as a
//! `node-exited` nemesis operation; this checker judges them, with the tail
//! of the node's own log where the run directory has it.
//!
//! An exit the harness itself caused is not the node's fault: a restart
//! that could not bind its address (the old socket still held) makes the
//! verdict unknown, with the reason, rather than invalid.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::check::Verdict;
use crate::history::History;
use crate::history::op::Payload;

/// Lines of a node's log quoted with its exit.
const LOG_TAIL_LINES: usize = 6;

/// What a node's log says when its restart could not bind its address.
const HARNESS_SIDE: [&str; 2] = ["Address already in use", "address in use"];

/// The `node-health` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeHealthResult {
    /// Invalid when a node process exited without the harness asking.
    pub valid: Verdict,
    /// Set when there was nothing to judge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Why the verdict is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every exit nobody asked for.
    pub exits: Vec<NodeExit>,
}

impl Default for NodeHealthResult {
    fn default() -> Self {
        NodeHealthResult {
            valid: Verdict::Valid,
            skipped: Some("not checked".into()),
            reason: None,
            exits: Vec::new(),
        }
    }
}

/// A node that exited on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeExit {
    /// The node's id.
    pub node: String,
    /// Seconds into the run.
    pub at_s: f64,
    /// How it exited (`exit status: 1`, `signal: 6 (SIGABRT)`).
    pub status: String,
    /// The last lines of its log, where the run directory has it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
    /// Whether the harness, not the node, caused it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub harness_side: bool,
}

/// Judges the `node-exited` operations of `history`; `run_dir`, when given,
/// is where `nodes/<id>/node.log` is read for each exit's reason.
pub fn check(history: &History, run_dir: Option<&Path>) -> NodeHealthResult {
    let mut exits = Vec::new();
    for op in history.nemesis_ops() {
        let Payload::Nemesis(n) = &op.payload else {
            continue;
        };
        if n.f != "node-exited" {
            continue;
        }
        let node = n.value["node"].as_str().unwrap_or("?").to_string();
        let status = n.value["status"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| n.value["status"].to_string());
        let log_tail = run_dir
            .map(|d| log_tail(&d.join("nodes").join(&node).join("node.log")))
            .unwrap_or_default();
        let harness_side = log_tail
            .iter()
            .any(|l| HARNESS_SIDE.iter().any(|m| l.contains(m)));
        exits.push(NodeExit {
            node,
            at_s: op.time as f64 / 1e9,
            status,
            log_tail,
            harness_side,
        });
    }
    let node_side = exits.iter().any(|e| !e.harness_side);
    let (valid, reason) = if node_side {
        (Verdict::Invalid, None)
    } else if !exits.is_empty() {
        (
            Verdict::Unknown,
            Some(
                "a node restart could not bind its address (the harness's doing, not the node's)"
                    .into(),
            ),
        )
    } else {
        (Verdict::Valid, None)
    };
    NodeHealthResult {
        valid,
        skipped: None,
        reason,
        exits,
    }
}

/// The last lines of a node's log (empty when it cannot be read).
fn log_tail(path: &Path) -> Vec<String> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..]
        .iter()
        .map(|l| l.chars().take(300).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::op::Op;

    fn history(exits: &[(&str, &str)]) -> History {
        let ops = exits
            .iter()
            .enumerate()
            .map(|(i, (node, status))| {
                Op::nemesis(
                    (i as u64 + 1) * 1_000_000_000,
                    "node-exited",
                    serde_json::json!({"node": node, "status": status}),
                )
            })
            .collect();
        History::numbered(ops).unwrap()
    }

    #[test]
    fn an_exit_nobody_asked_for_is_invalid_with_its_log_tail() {
        assert_eq!(check(&history(&[]), None).valid, Verdict::Valid);
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("nodes/n2");
        std::fs::create_dir_all(&log).unwrap();
        std::fs::write(
            log.join("node.log"),
            "started\nthread 'driver' panicked at src/x.rs:1: boom\n",
        )
        .unwrap();
        let r = check(&history(&[("n2", "exit status: 101")]), Some(dir.path()));
        assert_eq!(r.valid, Verdict::Invalid);
        assert_eq!(r.exits[0].node, "n2");
        assert!(r.exits[0].log_tail[1].contains("panicked"), "{r:?}");
    }

    #[test]
    fn a_restart_that_could_not_bind_is_the_harness_not_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("nodes/n1");
        std::fs::create_dir_all(&log).unwrap();
        std::fs::write(
            log.join("node.log"),
            "error: cannot listen on 198.18.1.1:7000: Address already in use\n",
        )
        .unwrap();
        let r = check(&history(&[("n1", "exit status: 1")]), Some(dir.path()));
        assert_eq!(r.valid, Verdict::Unknown, "{r:?}");
        assert!(r.exits[0].harness_side);
    }
}
