//! Counts of outcomes per operation kind. A history in which no client
//! operation succeeded proves nothing (every other checker passes
//! vacuously), so its verdict is unknown, not valid.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::Verdict;
use crate::history::{F, History, Outcome};

/// The `stats` section of `results.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsResult {
    /// Valid once some client operation succeeded; else unknown.
    pub valid: Verdict,
    /// Why the verdict is unknown (no operations, or none succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// All client operations.
    pub ops: Counts,
    /// Per function: read, write, cas, append (only those that occur).
    pub by_f: BTreeMap<String, Counts>,
    /// Nemesis events.
    pub nemesis: usize,
}

/// Outcome counts. `info` includes operations without a completion, which
/// are also counted in `pending`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Operations counted: `ok + fail + info`.
    pub total: usize,
    /// Completed `ok`.
    pub ok: usize,
    /// Completed `fail`.
    pub fail: usize,
    /// Completed `info`, or not completed at all.
    pub info: usize,
    /// Not completed at all (a subset of `info`).
    pub pending: usize,
}

impl Counts {
    fn add(&mut self, outcome: Outcome) {
        self.total += 1;
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Info => self.info += 1,
            Outcome::Pending => {
                self.info += 1;
                self.pending += 1;
            }
        }
    }
}

/// Counts the client operations of `history` by outcome, in all and per
/// function, and its nemesis ops.
pub fn check(history: &History) -> StatsResult {
    let mut ops = Counts::default();
    let mut per_f = [Counts::default(); F::ALL.len()];
    for op in history.operations() {
        let outcome = op.outcome();
        ops.add(outcome);
        per_f[op.f() as usize].add(outcome);
    }
    let by_f = F::ALL
        .iter()
        .zip(per_f)
        .filter(|(_, c)| c.total > 0)
        .map(|(f, c)| (f.to_string(), c))
        .collect();
    let (valid, reason) = if ops.ok > 0 {
        (Verdict::Valid, None)
    } else if ops.total == 0 {
        (
            Verdict::Unknown,
            Some("no operations: the history has no client operations".to_string()),
        )
    } else {
        (
            Verdict::Unknown,
            Some("no client operation succeeded".to_string()),
        )
    };
    StatsResult {
        valid,
        reason,
        ops,
        by_f,
        nemesis: history.nemesis_ops().count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Action, ClientOp, Op, ProcessId};

    fn history(ops: Vec<Op>) -> History {
        History::numbered(ops).unwrap()
    }

    #[test]
    fn counts_per_f_and_outcome() {
        let w = |p| ClientOp::new(ProcessId(p), "k", Action::Write(1));
        let r = |p| ClientOp::new(ProcessId(p), "k", Action::Read(None));
        let s = check(&history(vec![
            Op::invoke(0, w(0)),
            Op::ok(1, w(0)),
            Op::invoke(2, w(0)),
            Op::fail(3, w(0), "not-leader"),
            Op::invoke(4, r(1)),
            Op::info(5, r(1), "timeout"),
            Op::invoke(6, r(2)),
            Op::nemesis(7, "start-partition", serde_json::Value::Null),
        ]));
        assert_eq!(s.valid, Verdict::Valid);
        assert_eq!(
            s.ops,
            Counts {
                total: 4,
                ok: 1,
                fail: 1,
                info: 2,
                pending: 1
            }
        );
        assert_eq!(
            s.by_f["write"],
            Counts {
                total: 2,
                ok: 1,
                fail: 1,
                info: 0,
                pending: 0
            }
        );
        assert_eq!(s.by_f["read"].info, 2);
        assert_eq!(s.nemesis, 1);
    }

    #[test]
    fn nothing_succeeded_is_unknown() {
        let w = ClientOp::new(ProcessId(0), "k", Action::Write(1));
        let s = check(&history(vec![
            Op::invoke(0, w.clone()),
            Op::info(1, w, "timeout"),
        ]));
        assert_eq!(s.valid, Verdict::Unknown);
        assert_eq!(check(&History::default()).valid, Verdict::Unknown);
    }
}
