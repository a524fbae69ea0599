//! The anomalies, each on its own terms.
//!
//! - A non-linearizable key: the checker's sentence saying why, a small
//!   timeline of the window of operations around the failure (one lane per
//!   process; each bar numbered by its place in the longest linearizable
//!   order; the operation that cannot be placed outlined in red; unknown
//!   outcomes fade out to the right, as they may take effect any time
//!   later), and the tail of that order in words.
//! - Two leaders in a term: the term, the nodes and when they said so.
//! - Two entries at one log index: the index, and what each node applied.
//! - Keys the checker could not decide, with the reason.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::View;
use super::html::{esc, fmt_time, op_brief, thousands, truncate};
use super::svg::{LEFT, RIGHT, Svg, TimeScale, WIDTH, time_ticks};
use crate::check::Results;
use crate::check::linearizable::{Failure, OpSummary};
use crate::history::Operation;

/// How many failures of each checker the page shows in full.
const SHOWN: usize = 5;
/// How many operations of the longest linearizable order are listed.
const ORDER_SHOWN: usize = 12;

/// An operation to point at on the main timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    /// History index of the failing operation's invocation.
    pub op: u64,
    /// A short label: the key.
    pub label: String,
    /// The checker's sentence saying what is wrong.
    pub sentence: String,
}

/// The failing operations of the linearizability checker.
pub fn marks(results: Option<&Results>) -> Vec<Mark> {
    let Some(r) = results else {
        return Vec::new();
    };
    r.checkers
        .linearizable
        .failures
        .iter()
        .map(|f| Mark {
            op: f.op.index,
            label: format!("key {}", truncate(&f.key, 24)),
            sentence: f.explanation.clone(),
        })
        .collect()
}

/// `read → 1`, `write 4`, `cas 1→2` from a results.json op.
fn summary_brief(op: &OpSummary) -> String {
    let v = &op.value;
    match op.f.as_str() {
        "read" if op.outcome == "ok" => format!(
            "read → {}",
            if v.is_null() {
                "nil".into()
            } else {
                short_json(v)
            }
        ),
        "read" => "read".to_string(),
        "cas" => match v.as_array().map(Vec::as_slice) {
            Some([e, n]) => format!(
                "cas {}→{}",
                if e.is_null() {
                    "nil".into()
                } else {
                    short_json(e)
                },
                short_json(n)
            ),
            _ => format!("cas {}", short_json(v)),
        },
        f => format!("{f} {}", short_json(v)),
    }
}

fn short_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Array(a) if a.len() > 6 => {
            let tail: Vec<String> = a[a.len() - 3..].iter().map(|x| x.to_string()).collect();
            format!("[… {} more, {}]", a.len() - 3, tail.join(", "))
        }
        v => v.to_string(),
    }
}

/// The small timeline of a failure's window.
pub fn window_svg(f: &Failure) -> String {
    let ops = &f.window;
    let rank: HashMap<u64, usize> = f
        .prefix
        .iter()
        .enumerate()
        .map(|(i, &x)| (x, i + 1))
        .collect();
    let t_lo = ops.iter().map(|o| o.invoke).min().unwrap_or(0);
    let t_hi = ops
        .iter()
        .filter(|o| o.outcome != "info")
        .filter_map(|o| o.complete)
        .chain(std::iter::once(f.op.complete.unwrap_or(f.op.invoke)))
        .max()
        .unwrap_or(t_lo + 1)
        .max(t_lo + 1);
    // Room on the right for unknown outcomes fading out.
    let pad = (t_hi - t_lo) / 8 + 1;
    let sc = TimeScale::new(
        t_lo.saturating_sub(pad / 2),
        t_hi + pad,
        LEFT,
        WIDTH - RIGHT,
    );
    let mut procs: Vec<u64> = Vec::new();
    for o in ops {
        if !procs.contains(&o.process) {
            procs.push(o.process);
        }
    }
    const LANE: f64 = 34.0;
    let top = 24.0;
    let bottom = top + LANE * procs.len() as f64;
    let mut svg = Svg::new(
        WIDTH,
        bottom + 24.0,
        "window",
        &format!("Operations on key {} around the failure", f.key),
    );
    for (t, label) in time_ticks(sc.t0, sc.t1, 10) {
        let x = sc.x(t);
        svg.line(x, 16.0, x, bottom, "grid");
        svg.text(x, 12.0, "middle", "axis", &label);
    }
    // The failing operation's interval, across the lanes.
    let (fx0, fx1) = (sc.x(f.op.invoke), sc.x(f.op.complete.unwrap_or(sc.t1)));
    svg.rect(fx0, 16.0, fx1 - fx0, bottom - 16.0, "stuck-zone", None);
    for (l, p) in procs.iter().enumerate() {
        let y = top + LANE * l as f64;
        svg.text(4.0, y + 24.0, "start", "rowlabel", &format!("process {p}"));
        // Labels sit above their bars, left to right; one that would run
        // into the previous label is left to the tooltip (never the stuck
        // operation's).
        let mut next_free = 0.0;
        for o in ops.iter().filter(|o| o.process == *p) {
            let stuck = o.index == f.op.index;
            let x0 = sc.x(o.invoke);
            let (x1, open) = match (o.outcome.as_str(), o.complete) {
                ("info", _) | (_, None) => (sc.x1, true),
                (_, Some(c)) => (sc.x(c), false),
            };
            let class = match (o.outcome.as_str(), open, stuck) {
                (_, _, true) => "wbar stuck-op",
                ("ok", _, _) => "wbar ok",
                ("fail", _, _) => "wbar fail",
                _ => "wbar info open",
            };
            let mut label = format!("op {} {}", o.index, summary_brief(o));
            if let Some(e) = &o.error {
                let _ = write!(label, " ({})", truncate(e, 20));
            }
            if o.outcome != "ok" {
                let _ = write!(label, " {}", o.outcome);
            }
            let badge = match (stuck, rank.get(&o.index)) {
                (true, _) => "✗ ".to_string(),
                (false, Some(r)) => format!("#{r} "),
                (false, None) => String::new(),
            };
            let title = format!(
                "{badge}{label} · process {} · {} → {}{}",
                o.process,
                fmt_time(o.invoke, sc.span()),
                o.complete
                    .map_or("no completion".into(), |c| fmt_time(c, sc.span())),
                if stuck {
                    " · cannot be placed in any linearizable order"
                } else {
                    ""
                }
            );
            svg.rect(x0, y + 14.0, x1 - x0, 14.0, class, Some(&title));
            let text = truncate(&format!("{badge}{label}"), 48);
            let width = 6.6 * text.chars().count() as f64;
            let lx = x0.min(WIDTH - 4.0 - width).max(LEFT);
            if stuck || lx >= next_free {
                svg.text_titled(
                    lx,
                    y + 10.0,
                    "start",
                    if stuck { "wlabel bad" } else { "wlabel" },
                    &text,
                    &title,
                );
                next_free = lx + width + 6.0;
            }
        }
    }
    svg.line(sc.x0, bottom, sc.x1, bottom, "axisline");
    svg.finish()
}

fn op_words(by_index: &HashMap<u64, Operation<'_>>, index: u64, span: u64) -> String {
    match by_index.get(&index) {
        Some(op) => format!(
            "op {index} (process {}) {} at {}",
            op.client().process,
            op_brief(op),
            fmt_time(op.completion.map_or(op.invoke.time, |c| c.time), span)
        ),
        None => format!("op {index}"),
    }
}

fn linearizability(
    out: &mut String,
    f: &Failure,
    view: &View<'_>,
    by_index: &HashMap<u64, Operation<'_>>,
) {
    let span = view.end;
    let _ = write!(
        out,
        "<div class=\"anomaly\"><h3>Key {} ({} model) is not linearizable</h3><p class=\"why\">{}</p>",
        esc(&f.key),
        esc(&f.model),
        esc(&f.explanation)
    );
    let _ = write!(
        out,
        "<div class=\"legend\">The {} operations around the failure, one lane per process. \
         <b>#n</b>: place in the longest linearizable order found; <b class=\"bad\">✗</b>: the operation \
         that cannot be placed after it (red band: its interval); bars running to the right edge \
         have an unknown outcome and may take effect any time after their invocation.</div>",
        f.window.len()
    );
    out.push_str("<div class=\"chart\">");
    out.push_str(&window_svg(f));
    out.push_str("</div>");
    let n = f.prefix.len();
    let _ = write!(
        out,
        "<p><b>Longest linearizable order</b> ({} operation{}{}):</p><ol class=\"order\" start=\"{}\">",
        thousands(n),
        if n == 1 { "" } else { "s" },
        if n > ORDER_SHOWN {
            format!(", the last {ORDER_SHOWN}")
        } else {
            String::new()
        },
        n.saturating_sub(ORDER_SHOWN) + 1
    );
    for &i in f.prefix.iter().skip(n.saturating_sub(ORDER_SHOWN)) {
        let _ = write!(out, "<li>{}</li>", esc(&op_words(by_index, i, span)));
    }
    let _ = write!(
        out,
        "</ol><p class=\"stuck-line\">✗ cannot be placed next: {} ({})</p></div>",
        esc(&format!(
            "op {} (process {}) {}",
            f.op.index,
            f.op.process,
            summary_brief(&f.op)
        )),
        esc(&f.op.outcome)
    );
}

/// Section 4: each anomaly on its own terms (or why there is none to show).
pub fn section(view: &View<'_>) -> String {
    let mut out = String::new();
    let Some(r) = view.input.results.as_ref() else {
        out.push_str("<p class=\"note\">Not checked: no results for this history (run <code>harness check</code> on it).</p>");
        return out;
    };
    let c = &r.checkers;
    let by_index: HashMap<u64, Operation<'_>> = view.ops.iter().map(|o| (o.index(), *o)).collect();
    let mut any = false;
    for f in c.linearizable.failures.iter().take(SHOWN) {
        any = true;
        linearizability(&mut out, f, view, &by_index);
    }
    if c.linearizable.failures.len() > SHOWN {
        let _ = write!(
            out,
            "<p>… and {} more non-linearizable keys (see results.json).</p>",
            c.linearizable.failures.len() - SHOWN
        );
    }
    if !c.election.violations.is_empty() {
        any = true;
        out.push_str(
            "<div class=\"anomaly\"><h3>Election safety: two leaders in one term</h3>\
             <table><thead><tr><th>term</th><th>leaders</th><th>when each said so</th></tr></thead><tbody>",
        );
        for v in &c.election.violations {
            let when: Vec<String> = v
                .nodes
                .iter()
                .zip(&v.times)
                .map(|(n, t)| format!("{n} at {t}{}", into_the_run(view, t)))
                .collect();
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                v.term,
                esc(&v.nodes.join(", ")),
                esc(&when.join("; "))
            );
        }
        out.push_str("</tbody></table><p class=\"note\">The node rows of the timeline show each leader's term.</p></div>");
    }
    if !c.election.lost_votes.is_empty() {
        any = true;
        out.push_str(
            "<div class=\"anomaly\"><h3>Election safety: votes given, then lost</h3>\
             <table><thead><tr><th>node</th><th>term</th><th>voted for</th><th>then</th></tr></thead><tbody>",
        );
        for l in &c.election.lost_votes {
            let at = |t: &str| into_the_run(view, t);
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{} at {}{}</td><td>{} at {}{}</td></tr>",
                esc(&l.node),
                l.term,
                esc(&l.candidate),
                esc(&l.given),
                at(&l.given),
                esc(&l.then),
                esc(&l.at),
                at(&l.at)
            );
        }
        out.push_str(
            "</tbody></table><p class=\"note\">A vote is on record only once it is durable: \
             a node that comes back without it can vote twice in one term.</p></div>",
        );
    }
    if !c.state_machine.unsafe_changes.is_empty() {
        any = true;
        out.push_str(
            "<div class=\"anomaly\"><h3>Membership changes against Raft's rules</h3>\
             <table><thead><tr><th>leader</th><th>term</th><th>configuration at</th>\
             <th>its commit index then</th><th>the one before at</th><th>why</th><th>when</th></tr></thead><tbody>",
        );
        for u in &c.state_machine.unsafe_changes {
            let when = u
                .time
                .as_deref()
                .map(|t| format!("{}{}", esc(t), into_the_run(view, t)))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&u.node),
                u.term,
                u.index,
                u.committed,
                u.previous,
                esc(&u.why),
                when
            );
        }
        out.push_str(
            "</tbody></table><p class=\"note\">One change at a time, and none before the \
             leader's term has committed an entry: otherwise an old and a new configuration can \
             each elect a leader without a common voter.</p></div>",
        );
    }
    let sm = &c.state_machine;
    if !sm.violations.is_empty() {
        any = true;
        let _ = write!(
            out,
            "<div class=\"anomaly\"><h3>State-machine safety: different entries applied at one index</h3>\
             <p class=\"why\">{} log index{} where nodes applied different entries{}.</p>\
             <table><thead><tr><th>index</th><th>node</th><th>term</th><th>entry digest</th><th>applied at</th></tr></thead><tbody>",
            thousands(sm.violation_count),
            if sm.violation_count == 1 { "" } else { "es" },
            if sm.violation_count > sm.violations.len() {
                format!(" (the first {} listed)", sm.violations.len())
            } else {
                String::new()
            }
        );
        for v in &sm.violations {
            let mut by_node: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for e in &v.entries {
                by_node.entry(&e.node).or_default().push(e.digest.clone());
            }
            for (i, e) in v.entries.iter().enumerate() {
                let _ = write!(
                    out,
                    "<tr{}><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                    if i == 0 { " class=\"first\"" } else { "" },
                    if i == 0 {
                        v.index.to_string()
                    } else {
                        String::new()
                    },
                    esc(&e.node),
                    e.term,
                    esc(&truncate(&e.digest, 24)),
                    esc(e.time.as_deref().unwrap_or("?"))
                );
            }
        }
        out.push_str("</tbody></table></div>");
    }
    let unknown = &c.linearizable.unknown_keys;
    if !unknown.is_empty() {
        any = true;
        let _ = write!(
            out,
            "<div class=\"anomaly undecided\"><h3>Undecided keys ({})</h3><table><thead><tr><th>key</th><th>why</th></tr></thead><tbody>",
            unknown.len()
        );
        for u in unknown.iter().take(50) {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&u.key),
                esc(&u.reason)
            );
        }
        out.push_str("</tbody></table></div>");
    }
    if !any {
        out.push_str("<p class=\"good\">No anomaly found.</p>");
    }
    out
}

/// " (1.2 s into the run)" for a node's wall-clock time, when the run's
/// clock can place it; else nothing.
fn into_the_run(view: &View, t: &str) -> String {
    view.clock
        .as_ref()
        .and_then(|c| c.at(Some(t), u64::MAX))
        .map(|ns| format!(" ({} into the run)", fmt_time(ns, view.end)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(
        index: u64,
        process: u64,
        f: &str,
        value: serde_json::Value,
        outcome: &str,
        invoke: u64,
        complete: Option<u64>,
    ) -> OpSummary {
        OpSummary {
            index,
            process,
            f: f.into(),
            value,
            outcome: outcome.into(),
            invoke,
            complete,
            error: None,
            actual: None,
        }
    }

    #[test]
    fn the_window_numbers_the_order_and_marks_the_stuck_op() {
        let stuck = op(7, 0, "read", 1.into(), "ok", 6_000_000, Some(7_000_000));
        let f = Failure {
            key: "x<".into(),
            model: "register".into(),
            op: stuck.clone(),
            prefix: vec![0, 2, 3],
            window: vec![
                op(0, 0, "write", 1.into(), "ok", 1_000_000, Some(2_000_000)),
                op(2, 1, "write", 2.into(), "ok", 3_000_000, Some(4_000_000)),
                op(3, 2, "read", 2.into(), "ok", 3_500_000, Some(5_000_000)),
                op(
                    5,
                    3,
                    "cas",
                    serde_json::json!([null, 4]),
                    "info",
                    3_600_000,
                    None,
                ),
                stuck,
            ],
            explanation: "read of x returned 1 at 7.00 ms, but the only value it could see was 2"
                .into(),
            lost_writes: Vec::new(),
        };
        let svg = window_svg(&f);
        assert!(svg.contains("#1 op 0 write 1"), "{svg}");
        assert!(svg.contains("#3 op 3 read → 2"), "{svg}");
        assert!(svg.contains("✗ op 7 read → 1"), "{svg}");
        assert!(svg.contains("class=\"wbar stuck-op\""), "{svg}");
        assert!(svg.contains("class=\"wbar info open\""), "{svg}");
        assert!(svg.contains("cas nil→4"), "{svg}");
        assert!(svg.contains("Operations on key x&lt;"), "{svg}");
        assert_eq!(svg.matches("process 2</text>").count(), 1);
    }
}
