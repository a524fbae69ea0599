//! The page: head, style, the five sections in order, and a footer.
//!
//! The style sheet avoids `<`, `>` and `&` so the page stays well-formed
//! XML without CDATA sections.

use std::fmt::Write as _;

use super::html::esc;
use super::{View, anomaly, latency, nodes, timeline, verdict};
use crate::check::Verdict;

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f24; background: #fff; margin: 0 auto; max-width: 1240px; padding: 10px 18px 40px; }
h1 { font-size: 20px; margin: 6px 0 2px; word-break: break-all; }
h2 { font-size: 17px; margin: 26px 0 6px; padding-top: 6px; border-top: 2px solid #e5e7eb; }
h3 { font-size: 15px; margin: 16px 0 4px; }
nav { font-size: 13px; margin-bottom: 6px; }
nav a { margin-right: 14px; color: #1f5fbf; text-decoration: none; }
a { color: #1f5fbf; }
table { border-collapse: collapse; margin: 6px 0; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid #eceff3; vertical-align: top; }
th { font-weight: 600; color: #374151; }
code { font: 12.5px ui-monospace, "DejaVu Sans Mono", monospace; }
code.cmd { background: #f3f4f6; padding: 2px 6px; border-radius: 3px; user-select: all; }
.verdict { display: inline-block; font-size: 26px; font-weight: 700; color: #fff; padding: 2px 16px; border-radius: 6px; margin: 6px 0 2px; }
.verdict.v-valid { background: #2e9e4f; } .verdict.v-invalid { background: #c62828; }
.verdict.v-unknown { background: #b7791f; } .verdict.v-skipped { background: #6b7280; }
td.v-valid { color: #2e7d32; font-weight: 600; } td.v-invalid { color: #c62828; font-weight: 700; }
td.v-unknown { color: #b7791f; font-weight: 600; } td.v-skipped { color: #6b7280; }
.lead { margin: 4px 0 8px; color: #374151; }
.what { background: #fff1f1; border: 1px solid #f5c2c2; border-radius: 4px; padding: 6px 12px; margin: 8px 0; }
.what ul { margin: 4px 0; padding-left: 20px; }
.why { font-size: 15px; background: #fff1f1; border-left: 4px solid #c62828; padding: 8px 12px; margin: 6px 0; }
.good { color: #2e7d32; font-weight: 600; }
.note { color: #4b5563; font-size: 12.5px; margin: 4px 0; }
.warn, .warnings { color: #b45309; }
.opt { display: inline-block; margin: 0 14px 2px 0; white-space: nowrap; }
.opt b { font-weight: 600; color: #374151; }
.facts th { width: 150px; white-space: nowrap; }
.chart { overflow-x: auto; margin: 2px 0; }
.chart svg { display: block; max-width: 100%; height: auto; }
.legend { font-size: 12px; color: #374151; margin: 4px 0; }
.legend .key, .swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; vertical-align: -1px; margin: 0 3px 0 9px; }
.swatch { margin: 0 6px 0 0; }
.legend .line { display: inline-block; width: 20px; vertical-align: middle; margin: 0 3px 0 9px; border-top: 2px solid #111; }
.legend .line.p95 { border-top: 2px dashed #555; } .legend .line.p99 { border-top: 2px dotted #888; }
.anomaly { border: 1px solid #f0d0d0; border-radius: 6px; padding: 4px 14px 10px; margin: 10px 0; }
.anomaly.undecided { border-color: #eedfb8; }
ol.order { margin: 2px 0; font-size: 13px; }
.stuck-line { color: #c62828; font-weight: 600; margin: 2px 0 4px 20px; }
details summary { cursor: pointer; color: #1f5fbf; font-size: 13px; }
footer { margin-top: 30px; color: #6b7280; font-size: 12px; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", sans-serif; fill: #1f2937; }
svg .axis { fill: #6b7280; font-size: 10px; }
svg .grid { stroke: #eceff3; stroke-width: 1; }
svg .axisline { stroke: #9ca3af; }
svg .rowlabel { font-weight: 600; }
svg .lanelabel { fill: #6b7280; font-size: 9.5px; }
.ok { fill: #2e9e4f; background: #2e9e4f; }
.fail { fill: #d93025; background: #d93025; }
.mismatch { fill: #f4a9a3; background: #f4a9a3; }
.info { fill: #f29900; background: #f29900; }
.pending { fill: #b08bd0; background: #b08bd0; }
.fk-partition { fill: #7c3aed; background: #7c3aed; }
.fk-packet { fill: #0f766e; background: #0f766e; }
.fk-kill { fill: #374151; background: #374151; }
.fk-pause { fill: #0284c7; background: #0284c7; }
.fk-other { fill: #a16207; background: #a16207; }
.fk-power { fill: #be185d; background: #be185d; }
.fk-slow-disk { fill: #9333ea; background: #9333ea; }
.fk-member { fill: #4d7c0f; background: #4d7c0f; }
.fk-wipe { fill: #b45309; background: #b45309; }
svg .shade { opacity: 0.11; }
svg .fault { opacity: 0.9; }
svg .faultlabel { fill: #fff; font-size: 10.5px; }
.down { fill: #111827; background: #111827; }
.paused { fill: #0284c7; background: #0284c7; }
.powered-off { fill: #be185d; background: #be185d; }
svg .statelabel { fill: #fff; font-size: 10px; }
.r-candidate { fill: #f59e0b; background: #f59e0b; }
.r-follower { fill: #cbd5e1; background: #cbd5e1; }
.legend .leader { background: #1f5fbf; }
svg .leaderlabel { fill: #fff; font-size: 10px; font-weight: 600; }
svg .marker { stroke: #4b5563; stroke-dasharray: 3 3; }
svg .markerlabel { fill: #374151; font-size: 10.5px; }
svg .anomaly { fill: #c62828; }
svg .anomaly-line { stroke: #c62828; stroke-dasharray: 2 2; }
svg .anomaly-label, svg .bad { fill: #c62828; font-weight: 700; }
svg .stuck { fill: none; stroke: #c62828; stroke-width: 2; }
svg .marks .ok, svg .marks .fail, svg .marks .mismatch, svg .marks .info { fill-opacity: 0.6; }
svg .pline { fill: none; stroke-width: 1.6; }
svg .p50 { stroke: #111; } svg .p95 { stroke: #555; stroke-dasharray: 6 3; } svg .p99 { stroke: #888; stroke-dasharray: 2 2; }
svg .wbar { stroke: #4b5563; stroke-width: 0.6; }
svg .wbar.ok { fill: #a7dcb5; } svg .wbar.fail { fill: #f5b5b0; } svg .wbar.info { fill: #fcd9a0; }
svg .wbar.open { fill-opacity: 0.55; stroke-dasharray: 4 2; }
svg .wbar.stuck-op { fill: #fecaca; stroke: #c62828; stroke-width: 2.5; }
svg .stuck-zone { fill: #c62828; opacity: 0.07; }
svg .wlabel { font-size: 11.5px; }
"#;

/// The whole report.
pub fn page(view: &View<'_>) -> String {
    let input = view.input;
    let name = input.path.file_name().map_or_else(
        || input.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let word = match input.results.as_ref().map(|r| r.valid) {
        None => "not checked",
        Some(Verdict::Valid) => "valid",
        Some(Verdict::Invalid) => "INVALID",
        Some(Verdict::Unknown) => "unknown",
    };
    let mut out = String::with_capacity(1 << 20);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/><title>{} — {word}</title>\
         <style>{STYLE}</style></head><body>",
        esc(&name)
    );
    let _ = write!(
        out,
        "<header><h1>Test report: {}</h1><nav><a href=\"#verdict\">1 Verdict</a><a href=\"#timeline\">2 Timeline</a>\
         <a href=\"#latency\">3 Latency</a><a href=\"#anomalies\">4 Anomalies</a><a href=\"#nodes\">5 Nodes</a></nav></header>",
        esc(&name)
    );
    let dir = (input.source == super::Source::RunDir).then_some(input.path.as_path());
    let sections: [(&str, &str, String); 5] = [
        ("verdict", "1. Verdict", verdict::section(view)),
        ("timeline", "2. Timeline", timeline::section(view)),
        (
            "latency",
            "3. Latency and throughput",
            latency::section(view),
        ),
        ("anomalies", "4. Anomalies", anomaly::section(view)),
        (
            "nodes",
            "5. Nodes",
            nodes::section(
                &view.nodes,
                dir,
                !input.logs.is_empty(),
                verdict::source_kind(view),
            ),
        ),
    ];
    for (id, title, body) in sections {
        let _ = write!(out, "<section id=\"{id}\"><h2>{title}</h2>{body}</section>");
    }
    let _ = writeln!(
        out,
        "<footer>Written by harness {} from {}. Self-contained: no scripts, nothing loaded from the network.</footer></body></html>",
        env!("CARGO_PKG_VERSION"),
        esc(&input.path.display().to_string())
    );
    out
}
