//! The results in words, for the terminal: one line per checker, and for
//! each anomaly what went wrong and where.

use std::fmt::Write as _;

use super::linearizable::OpSummary;
use super::linearizable::report::fmt_ns;
use super::{Results, Verdict, availability};

/// How many failures or violations per checker the summary spells out.
const SHOWN: usize = 3;

/// The summary of `results` for the history at `source`.
pub fn render(results: &Results, source: &str) -> String {
    let mut out = String::new();
    let c = &results.checkers;
    let s = &c.stats;
    if s.ops.total == 0 && s.nemesis == 0 {
        let _ = writeln!(out, "{source}: no operations");
    } else {
        let _ = writeln!(
            out,
            "{source}: {} client operations (ok {}, fail {}, info {}), {} nemesis events",
            s.ops.total, s.ops.ok, s.ops.fail, s.ops.info, s.nemesis
        );
    }
    for (name, verdict, skipped) in c.verdicts() {
        let shown = match (verdict, skipped) {
            (Verdict::Valid, Some(_)) => "skipped",
            (Verdict::Valid, None) => "valid",
            (Verdict::Invalid, _) => "INVALID",
            (Verdict::Unknown, _) => "unknown",
        };
        let detail = match name {
            "linearizable" => format!(
                "{} keys, {} operations, {:.2} s",
                c.linearizable.keys,
                c.linearizable.ops,
                c.linearizable.elapsed_ms as f64 / 1e3
            ),
            "election" if skipped.is_none() => {
                let e = &c.election;
                let mut d = format!("{} terms with a leader", e.terms);
                if !e.violations.is_empty() {
                    d.push_str(&format!("; {} with two leaders", e.violations.len()));
                }
                if let Some(l) = e.lost_votes.first() {
                    d.push_str(&format!(
                        "; {} lost vote(s), first: {} voted for {} in term {}, then {}",
                        e.lost_votes.len(),
                        l.node,
                        l.candidate,
                        l.term,
                        l.then
                    ));
                }
                d
            }
            "state-machine" if skipped.is_none() => {
                let sm = &c.state_machine;
                let mut d = format!("{} log indexes applied", sm.indexes);
                if let Some(u) = sm.unsafe_changes.first() {
                    d.push_str(&format!(
                        "; {} unsafe membership change(s), first: {} (leader of term {}) appended a configuration at index {} when {}",
                        sm.unsafe_changes.len(),
                        u.node,
                        u.term,
                        u.index,
                        u.why
                    ));
                }
                d
            }
            "convergence" if skipped.is_none() => {
                let v = &c.convergence;
                format!(
                    "{} members at the leader's commit index {} within {:.0} s",
                    v.converged.len(),
                    v.target_index.map_or("?".into(), |i| i.to_string()),
                    v.within_s.unwrap_or(0.0)
                )
            }
            "replica-state" if skipped.is_none() => format!(
                "{} indexes compared during the run; at the end {}",
                c.replica_state.compared_indexes,
                if c.replica_state.final_compared.is_empty() {
                    "none".to_string()
                } else {
                    c.replica_state.final_compared.join(", ")
                }
            ),
            "availability" if skipped.is_none() => format!(
                "{} fault-free stretches, each held to {:.0}% of {:.0} ops/s ({})",
                c.availability.stretches.len(),
                availability::MIN_SHARE * 100.0,
                c.availability.reference_per_s,
                c.availability.reference
            ),
            "node-health" if skipped.is_none() && c.node_health.exits.is_empty() => {
                "no node exited unasked".to_string()
            }
            "stats" => {
                let counts = (!c.stats.by_f.is_empty()).then(|| {
                    let per_f: Vec<String> = c
                        .stats
                        .by_f
                        .iter()
                        .map(|(f, n)| format!("{f} {}/{}/{}", n.ok, n.fail, n.info))
                        .collect();
                    format!("{} (ok/fail/info)", per_f.join(", "))
                });
                [counts, skipped.map(str::to_string)]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ")
            }
            "perf" => match skipped {
                Some(why) => why.to_string(),
                None if c.perf.latency_ms.is_empty() => "no operation succeeded".to_string(),
                None => c
                    .perf
                    .latency_ms
                    .iter()
                    .map(|(f, l)| format!("{f} p50 {:.2} ms p99 {:.2} ms", l.p50, l.p99))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            _ => skipped.unwrap_or_default().to_string(),
        };
        let _ = writeln!(out, "  {name:<14} {shown:<8} {detail}");
        match name {
            "linearizable" => linearizable_details(&mut out, results),
            "election" => {
                for v in c.election.violations.iter().take(SHOWN) {
                    let who: Vec<String> = v
                        .nodes
                        .iter()
                        .zip(&v.times)
                        .map(|(n, t)| format!("{n} at {t}"))
                        .collect();
                    let _ = writeln!(
                        out,
                        "      term {}: two leaders: {}",
                        v.term,
                        who.join(", ")
                    );
                }
                more(&mut out, c.election.violations.len());
            }
            "state-machine" => {
                for v in c.state_machine.violations.iter().take(SHOWN) {
                    let what: Vec<String> = v
                        .entries
                        .iter()
                        .map(|e| format!("{} applied term {} digest {}", e.node, e.term, e.digest))
                        .collect();
                    let _ = writeln!(out, "      index {}: {}", v.index, what.join("; "));
                }
                more(&mut out, c.state_machine.violation_count);
            }
            "convergence" => {
                if let Some(e) = &c.convergence.explanation {
                    let _ = writeln!(out, "      {e}");
                }
            }
            "replica-state" => {
                for v in c.replica_state.violations.iter().take(SHOWN) {
                    let _ = writeln!(out, "      {}", v.explanation);
                }
                more(&mut out, c.replica_state.violation_count);
            }
            "availability" => {
                for v in c.availability.violations.iter().take(SHOWN) {
                    let _ = writeln!(out, "      {}", v.explanation);
                }
                more(&mut out, c.availability.violations.len());
            }
            "node-health" => {
                for e in c.node_health.exits.iter().take(SHOWN) {
                    let why = e.log_tail.last().map(String::as_str).unwrap_or("");
                    let _ = writeln!(
                        out,
                        "      {} exited unasked at {:.1} s ({}){}{why}",
                        e.node,
                        e.at_s,
                        e.status,
                        if why.is_empty() { "" } else { ": " }
                    );
                }
                more(&mut out, c.node_health.exits.len());
            }
            _ => {}
        }
    }
    for w in &results.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    let _ = writeln!(out, "result: {}", result_line(results));
    out
}

/// `valid`, `INVALID`, or `unknown (why)`: an undecided verdict says which
/// checker could not decide and why.
fn result_line(results: &Results) -> String {
    match results.valid {
        Verdict::Valid => "valid".to_string(),
        Verdict::Invalid => "INVALID".to_string(),
        Verdict::Unknown => {
            let c = &results.checkers;
            let why = c
                .verdicts()
                .into_iter()
                .find(|(_, v, _)| *v == Verdict::Unknown)
                .map(|(name, _, note)| match (name, note) {
                    ("linearizable", _) => format!(
                        "linearizable: {} of {} keys undecided",
                        c.linearizable.unknown_keys.len(),
                        c.linearizable.keys
                    ),
                    (name, Some(note)) => format!("{name}: {note}"),
                    (name, None) => name.to_string(),
                })
                .unwrap_or_default();
            format!("unknown ({why})")
        }
    }
}

fn linearizable_details(out: &mut String, results: &Results) {
    let lin = &results.checkers.linearizable;
    for f in lin.failures.iter().take(SHOWN) {
        let _ = writeln!(
            out,
            "      key {} ({} model): {}",
            f.key, f.model, f.explanation
        );
        let _ = writeln!(out, "      cannot linearize: {}", op_line(&f.op));
        let tail: Vec<String> = f
            .prefix
            .iter()
            .rev()
            .take(8)
            .rev()
            .map(u64::to_string)
            .collect();
        let _ = writeln!(
            out,
            "      longest linearizable prefix: {} operations{}",
            f.prefix.len(),
            if tail.is_empty() {
                String::new()
            } else {
                format!(", ending {}", tail.join(" "))
            }
        );
        let _ = writeln!(out, "      operations around it:");
        for op in &f.window {
            let mark = if op.index == f.op.index { ">" } else { " " };
            let _ = writeln!(out, "      {mark} {}", op_line(op));
        }
    }
    more(out, lin.failures.len());
    for u in lin.unknown_keys.iter().take(SHOWN) {
        let _ = writeln!(out, "      key {}: unknown ({})", u.key, u.reason);
    }
    more(out, lin.unknown_keys.len());
}

fn more(out: &mut String, total: usize) {
    if total > SHOWN {
        let _ = writeln!(
            out,
            "      ... and {} more (see results.json)",
            total - SHOWN
        );
    }
}

/// `op 12  process 3  write 4  ok  1.20 ms .. 1.90 ms`.
fn op_line(op: &OpSummary) -> String {
    let end = op.complete.map_or("(no completion)".to_string(), fmt_ns);
    let error = op
        .error
        .as_ref()
        .map(|e| format!(" {e}"))
        .unwrap_or_default();
    let value = match &op.value {
        serde_json::Value::Array(items) if items.len() > 6 => format!(
            "[{}, {}, … {} more …, {}]",
            items[0],
            items[1],
            items.len() - 3,
            items[items.len() - 1]
        ),
        v => v.to_string(),
    };
    format!(
        "op {:<6} process {:<4} {} {:<10} {}{error}  {} .. {}",
        op.index,
        op.process,
        op.f,
        value,
        op.outcome,
        fmt_ns(op.invoke),
        end
    )
}
