//! Convergence: after recovery, every running member reaches the leader's
//! commit index within a bound, and a write succeeds. A node that never
//! catches up (a leader that ignores a follower's lost log tail, issue 19's
//! finding 2) is invisible to the other checkers while the cluster has a
//! majority without it, yet it is one fault away from an outage.
//!
//! The harness observes it at the end of a run and records what it saw as
//! the history's `convergence` nemesis op (`run::convergence`); this
//! checker judges that record: `{"within_s", "elapsed_s", "leader",
//! "target_index", "write": {"ok", "index"?, "error"?}, "nodes": {"<id>":
//! {"commit", "applied", "reached"}}, "converged"}`. A history without one
//! (`--convergence-timeout 0`, another tool's history) is skipped.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::catch_up::Stall;
use crate::check::Verdict;
use crate::history::{History, Payload};

/// The nemesis op the harness records.
pub const OP: &str = "convergence";

/// The `convergence` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvergenceResult {
    /// Invalid when a running member lagged past the bound, or the write
    /// after recovery failed.
    pub valid: Verdict,
    /// Set when there was nothing to check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The bound, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_s: Option<f64>,
    /// The leader whose commit index the members had to reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Its commit index after the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_index: Option<u64>,
    /// Members that reached it.
    #[serde(default)]
    pub converged: Vec<String>,
    /// Members that did not, with their indexes.
    #[serde(default)]
    pub lagging: Vec<Lagging>,
    /// Why the write did not succeed, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_error: Option<String>,
    /// Members that stayed behind in a fault-free stretch of the run
    /// ([`super::catch_up`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stalled: Vec<Stall>,
    /// The whole verdict in words, when invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
}

impl Default for ConvergenceResult {
    fn default() -> Self {
        ConvergenceResult {
            valid: Verdict::Valid,
            skipped: Some("no convergence record in the history".into()),
            within_s: None,
            leader: None,
            target_index: None,
            converged: Vec::new(),
            lagging: Vec::new(),
            write_error: None,
            stalled: Vec::new(),
            explanation: None,
        }
    }
}

/// Adds the members that stayed behind during the run: each makes the
/// checker invalid, also where the end of the run had nothing to judge.
pub fn add_stalls(result: &mut ConvergenceResult, stalled: Vec<Stall>) {
    if stalled.is_empty() {
        return;
    }
    let mut why: Vec<String> = result.explanation.take().into_iter().collect();
    why.extend(stalled.iter().take(3).map(Stall::explanation));
    if stalled.len() > 3 {
        why.push(format!("and {} more stretches", stalled.len() - 3));
    }
    result.explanation = Some(why.join("; "));
    result.valid = Verdict::Invalid;
    result.skipped = None;
    result.stalled = stalled;
}

/// A member that did not reach the target in time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lagging {
    /// The member's id.
    pub node: String,
    /// Its commit index at the end of the wait (`None`: it did not answer).
    pub commit: Option<u64>,
    /// Its last applied index at the end of the wait.
    pub applied: Option<u64>,
}

/// Judges the convergence the harness observed after recovery (the last
/// `convergence` nemesis op of the history).
pub fn check(history: &History) -> ConvergenceResult {
    let record = history.ops().iter().rev().find_map(|op| match &op.payload {
        Payload::Nemesis(n) if n.f == OP => Some(&n.value),
        _ => None,
    });
    let Some(v) = record else {
        return ConvergenceResult {
            skipped: Some(
                "no convergence record (not a harness run, or --convergence-timeout 0)".into(),
            ),
            ..ConvergenceResult::default()
        };
    };
    judge(v)
}

fn judge(v: &Json) -> ConvergenceResult {
    let text = |k: &str| v.get(k).and_then(Json::as_str).map(str::to_string);
    let within_s = v.get("within_s").and_then(Json::as_f64);
    let target = v.get("target_index").and_then(Json::as_u64);
    let mut converged = Vec::new();
    let mut lagging = Vec::new();
    if let Some(nodes) = v.get("nodes").and_then(Json::as_object) {
        for (id, n) in nodes {
            if n.get("reached").and_then(Json::as_bool) == Some(true) {
                converged.push(id.clone());
            } else {
                lagging.push(Lagging {
                    node: id.clone(),
                    commit: n.get("commit").and_then(Json::as_u64),
                    applied: n.get("applied").and_then(Json::as_u64),
                });
            }
        }
    }
    let write = v.get("write");
    let write_ok = write.and_then(|w| w.get("ok")).and_then(Json::as_bool) == Some(true);
    let write_error = (!write_ok).then(|| {
        write
            .and_then(|w| w.get("error"))
            .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
            .unwrap_or_else(|| "no write recorded".into())
    });
    let record_error = text("error");
    let within = within_s.map_or("the bound".to_string(), |s| format!("{s:.0} s"));
    let mut why = Vec::new();
    if let Some(e) = &record_error {
        why.push(e.clone());
    }
    if let Some(e) = &write_error {
        why.push(format!("no write succeeded within {within}: {e}"));
    }
    for l in &lagging {
        let idx = |x: Option<u64>| x.map_or("?".to_string(), |i| i.to_string());
        why.push(format!(
            "{} did not reach the leader's commit index {} within {within}: commit {} applied {}",
            l.node,
            idx(target),
            idx(l.commit),
            idx(l.applied)
        ));
    }
    let invalid = !why.is_empty() || v.get("converged").and_then(Json::as_bool) == Some(false);
    if invalid && why.is_empty() {
        why.push("the members did not converge".into());
    }
    ConvergenceResult {
        valid: if invalid {
            Verdict::Invalid
        } else {
            Verdict::Valid
        },
        skipped: None,
        within_s,
        leader: text("leader"),
        target_index: target,
        converged,
        lagging,
        write_error,
        stalled: Vec::new(),
        explanation: invalid.then(|| why.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;
    use serde_json::json;

    fn with(value: Json) -> History {
        History::numbered(vec![
            Op::nemesis(1, "recover", json!({})),
            Op::nemesis(2, OP, value),
        ])
        .unwrap()
    }

    #[test]
    fn members_at_the_leaders_commit_index_and_a_write_are_valid() {
        let r = check(&with(json!({
            "within_s": 10.0, "leader": "n1", "target_index": 40,
            "write": {"ok": true, "index": 39},
            "nodes": {"n1": {"commit": 40, "applied": 40, "reached": true},
                      "n2": {"commit": 41, "applied": 41, "reached": true}},
            "converged": true})));
        assert_eq!(r.valid, Verdict::Valid, "{r:?}");
        assert_eq!(r.converged, vec!["n1", "n2"]);
        assert!(r.explanation.is_none());
    }

    #[test]
    fn a_member_behind_is_named_with_its_indexes() {
        let r = check(&with(json!({
            "within_s": 10.0, "leader": "n1", "target_index": 40,
            "write": {"ok": true, "index": 39},
            "nodes": {"n1": {"commit": 40, "applied": 40, "reached": true},
                      "n3": {"commit": 12, "applied": 11, "reached": false}},
            "converged": false})));
        assert_eq!(r.valid, Verdict::Invalid);
        assert_eq!(
            r.lagging,
            vec![Lagging {
                node: "n3".into(),
                commit: Some(12),
                applied: Some(11)
            }]
        );
        let e = r.explanation.unwrap();
        assert!(
            e.contains(
                "n3 did not reach the leader's commit index 40 within 10 s: commit 12 applied 11"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_failed_write_or_no_leader_is_invalid_and_no_record_is_skipped() {
        let r = check(&with(json!({
            "within_s": 10.0, "write": {"ok": false, "error": "timeout"},
            "nodes": {}, "converged": false})));
        assert_eq!(r.valid, Verdict::Invalid);
        assert!(
            r.explanation
                .unwrap()
                .contains("no write succeeded within 10 s: timeout")
        );
        let r = check(&with(json!({"error": "no leader", "converged": false})));
        assert_eq!(r.valid, Verdict::Invalid);
        let none = History::numbered(vec![Op::nemesis(1, "recover", json!({}))]).unwrap();
        let r = check(&none);
        assert_eq!(r.valid, Verdict::Valid);
        assert!(r.skipped.is_some());
    }
}
