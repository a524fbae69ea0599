//! Section 1: the verdict of each checker, the anomaly in one sentence, the
//! run's options and seed, and the command line that reproduces it.

use std::fmt::Write as _;

use serde_json::Value as Json;

use super::html::{esc, fmt_duration, thousands, truncate};
use super::{Source, View};
use crate::check::Verdict;

/// `valid`, `INVALID`, `unknown` or `skipped`, and its CSS class.
fn shown(verdict: Verdict, skipped: Option<&str>) -> (&'static str, &'static str) {
    match (verdict, skipped) {
        (Verdict::Valid, Some(_)) => ("skipped", "v-skipped"),
        (Verdict::Valid, None) => ("valid", "v-valid"),
        (Verdict::Invalid, _) => ("INVALID", "v-invalid"),
        (Verdict::Unknown, _) => ("unknown", "v-unknown"),
    }
}

/// What the history came from: `a run directory`, `a bare history.jsonl`,
/// `a history imported from Jepsen EDN`.
pub fn source_kind(view: &View<'_>) -> &'static str {
    match view.input.source {
        Source::RunDir => "a run directory",
        Source::Jsonl => "a bare history.jsonl",
        Source::Edn => "a history imported from Jepsen EDN",
    }
}

/// [`source_kind`], saying when there are no node event logs.
pub fn source_words(view: &View<'_>) -> String {
    if view.input.logs.is_empty() {
        format!("{} (no node event logs)", source_kind(view))
    } else {
        source_kind(view).to_string()
    }
}

/// Section 1: the verdict of each checker, the run's options and the command
/// that reproduces it.
pub fn section(view: &View<'_>) -> String {
    let input = view.input;
    let mut out = String::new();
    let overall = input.results.as_ref().map(|r| r.valid);
    let (word, class) = match overall {
        None => ("NOT CHECKED", "v-skipped"),
        Some(v) => {
            let (w, c) = shown(v, None);
            (if v == Verdict::Valid { "VALID" } else { w }, c)
        }
    };
    let counts = input.results.as_ref().map(|r| r.checkers.stats.ops);
    let _ = write!(
        out,
        "<div class=\"verdict {class}\">{word}</div><p class=\"lead\">{} client operations",
        thousands(view.ops.len())
    );
    if let Some(c) = counts {
        let _ = write!(
            out,
            " (ok {}, fail {}, info {})",
            thousands(c.ok),
            thousands(c.fail),
            thousands(c.info)
        );
    }
    let _ = write!(
        out,
        ", {} fault{} over {} · {}</p>",
        view.faults.len(),
        if view.faults.len() == 1 { "" } else { "s" },
        fmt_duration(view.end),
        source_words(view)
    );
    if let Some(r) = &input.results {
        // The anomalies in words, first thing.
        let c = &r.checkers;
        let mut said = Vec::new();
        for f in c.linearizable.failures.iter().take(3) {
            said.push(format!("Key {}: {}.", f.key, f.explanation));
        }
        for v in c.election.violations.iter().take(3) {
            said.push(format!(
                "Term {} had {} leaders: {}.",
                v.term,
                v.nodes.len(),
                v.nodes.join(", ")
            ));
        }
        for l in c.election.lost_votes.iter().take(3) {
            said.push(format!(
                "{} lost its vote for {} in term {}: it {}.",
                l.node, l.candidate, l.term, l.then
            ));
        }
        for u in c.state_machine.unsafe_changes.iter().take(3) {
            said.push(format!(
                "{}, leading term {}, appended a configuration at index {} when {}.",
                u.node, u.term, u.index, u.why
            ));
        }
        for v in c.state_machine.violations.iter().take(3) {
            said.push(format!(
                "Log index {}: nodes {} applied different entries.",
                v.index,
                v.nodes.join(", ")
            ));
        }
        if let Some(e) = &c.convergence.explanation {
            said.push(format!("The members did not converge: {e}."));
        }
        if !said.is_empty() {
            out.push_str("<div class=\"what\"><b>What went wrong</b> (details under <a href=\"#anomalies\">Anomalies</a>):<ul>");
            for s in said {
                let _ = write!(out, "<li>{}</li>", esc(&s));
            }
            out.push_str("</ul></div>");
        }
        out.push_str("<table class=\"checkers\"><thead><tr><th>checker</th><th>verdict</th><th>detail</th></tr></thead><tbody>");
        for (name, verdict, skipped) in c.verdicts() {
            let (w, cl) = shown(verdict, skipped);
            let detail = match name {
                "linearizable" => {
                    let l = &c.linearizable;
                    let mut d = format!(
                        "{} key{}, {} operations checked in {:.2} s",
                        l.keys,
                        if l.keys == 1 { "" } else { "s" },
                        thousands(l.ops),
                        l.elapsed_ms as f64 / 1e3
                    );
                    if !l.failures.is_empty() {
                        let _ = write!(d, "; {} key(s) not linearizable", l.failures.len());
                    }
                    if !l.unknown_keys.is_empty() {
                        let _ = write!(d, "; {} key(s) undecided", l.unknown_keys.len());
                    }
                    d
                }
                "election" => match skipped {
                    Some(s) => s.to_string(),
                    None => {
                        let mut d = format!(
                            "{} terms with a leader; {} with two or more",
                            c.election.terms,
                            c.election.violations.len()
                        );
                        if !c.election.lost_votes.is_empty() {
                            let _ = write!(d, "; {} lost vote(s)", c.election.lost_votes.len());
                        }
                        d
                    }
                },
                "state-machine" => match skipped {
                    Some(s) => s.to_string(),
                    None => {
                        let mut d = format!(
                            "{} log indexes applied; {} with different entries",
                            thousands(c.state_machine.indexes),
                            c.state_machine.violation_count
                        );
                        if !c.state_machine.unsafe_changes.is_empty() {
                            let _ = write!(
                                d,
                                "; {} unsafe membership change(s)",
                                c.state_machine.unsafe_changes.len()
                            );
                        }
                        d
                    }
                },
                "convergence" => match skipped {
                    Some(s) => s.to_string(),
                    None => match &c.convergence.explanation {
                        Some(e) => e.clone(),
                        None => format!(
                            "{} members at the leader's commit index {} within {:.0} s; a write succeeded",
                            c.convergence.converged.len(),
                            c.convergence.target_index.unwrap_or(0),
                            c.convergence.within_s.unwrap_or(0.0)
                        ),
                    },
                },
                "stats" => {
                    let mut d: Vec<String> = c
                        .stats
                        .by_f
                        .iter()
                        .map(|(f, n)| format!("{f} {}/{}/{}", n.ok, n.fail, n.info))
                        .collect();
                    if !d.is_empty() {
                        d.push("(ok/fail/info)".into());
                    }
                    if let Some(s) = skipped {
                        d.push(format!("— {s}"));
                    }
                    d.join(" ")
                }
                "perf" => {
                    let mut d: Vec<String> = c
                        .perf
                        .latency_ms
                        .iter()
                        .map(|(f, l)| format!("{f} p50 {:.2} ms p99 {:.2} ms", l.p50, l.p99))
                        .collect();
                    d.push(format!("{:.0} ok/s", c.perf.ok_per_s));
                    d.join(", ")
                }
                _ => String::new(),
            };
            let _ = write!(
                out,
                "<tr><td>{name}</td><td class=\"{cl}\">{w}</td><td>{}</td></tr>",
                esc(&detail)
            );
        }
        out.push_str("</tbody></table>");
        if !r.warnings.is_empty() {
            out.push_str("<ul class=\"warnings\">");
            for w in r.warnings.iter().take(20) {
                let _ = write!(out, "<li>warning: {}</li>", esc(w));
            }
            out.push_str("</ul>");
        }
    }
    for n in &input.notes {
        let _ = write!(out, "<p class=\"note\">Note: {}.</p>", esc(n));
    }
    run_facts(&mut out, view);
    out
}

/// Seed, command, options and the run's own counts.
fn run_facts(out: &mut String, view: &View<'_>) {
    let run = &view.input.run;
    out.push_str("<table class=\"facts\"><tbody>");
    let _ = write!(
        out,
        "<tr><th>source</th><td><code>{}</code></td></tr>",
        esc(&view.input.path.display().to_string())
    );
    if let Some(cmd) = run.get("command").and_then(Json::as_str) {
        let _ = write!(
            out,
            "<tr><th>reproduce with</th><td><code class=\"cmd\">{}</code></td></tr>",
            esc(cmd)
        );
    }
    let seed = run
        .get("seed")
        .or_else(|| run.get("options").and_then(|o| o.get("seed")));
    if let Some(seed) = seed {
        let _ = write!(out, "<tr><th>seed</th><td>{}</td></tr>", esc(&text(seed)));
    }
    for key in [
        "started",
        "finished",
        "harness_version",
        "recovered_leader",
        "final_reads_missed",
        "unexpected_exits",
    ] {
        if let Some(v) = run.get(key).filter(|v| !v.is_null()) {
            let _ = write!(
                out,
                "<tr><th>{}</th><td>{}</td></tr>",
                key.replace('_', " "),
                esc(&truncate(&text(v), 200))
            );
        }
    }
    if let Some(Json::Object(opts)) = run.get("options") {
        let items: Vec<String> = opts
            .iter()
            .filter(|(_, v)| {
                !(v.is_null()
                    || v.as_array().is_some_and(Vec::is_empty)
                    || v.as_str().is_some_and(str::is_empty))
            })
            .map(|(k, v)| {
                format!(
                    "<span class=\"opt\"><b>{}</b> {}</span>",
                    esc(k),
                    esc(&truncate(&text(v), 120))
                )
            })
            .collect();
        let _ = write!(out, "<tr><th>options</th><td>{}</td></tr>", items.join(" "));
    } else if view.input.source == Source::RunDir {
        out.push_str("<tr><th>options</th><td>unknown (no run.json)</td></tr>");
    }
    out.push_str("</tbody></table>");
}

fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        v => v.to_string(),
    }
}
