//! The rows of faults, one per kind with its intervals and targets, and
//! the row of nemesis events without duration (`recover`, `node-exited`,
//! ...), each a line down the whole chart.

use super::super::View;
use super::super::faults::kind_class;
use super::super::html::{fmt_duration, fmt_time, truncate};
use super::super::svg::{Svg, TimeScale, WIDTH};
use super::ROW_H;

/// The harness's own fault kinds, in the order of their rows.
const OWN: [&str; 8] = [
    "partition",
    "packet",
    "kill",
    "pause",
    "power",
    "slow-disk",
    "member",
    "wipe",
];

/// The fault kinds with a row, top to bottom: the harness's own first, then
/// any others (from a Jepsen history) by name.
pub fn kinds<'v>(view: &'v View<'_>) -> Vec<&'v str> {
    let mut kinds: Vec<&str> = Vec::new();
    for k in OWN {
        if view.faults.iter().any(|f| f.kind == k) {
            kinds.push(k);
        }
    }
    let mut others: Vec<&str> = view
        .faults
        .iter()
        .map(|f| f.kind.as_str())
        .filter(|k| !OWN.contains(k))
        .collect();
    others.sort();
    others.dedup();
    kinds.extend(others);
    kinds
}

/// Draws a row per kind in `kinds`, from `y` down.
pub fn draw(svg: &mut Svg, view: &View<'_>, sc: &TimeScale, kinds: &[&str], y: f64) {
    let (span, faults_y) = (sc.span(), y);
    for (row, kind) in kinds.iter().enumerate() {
        let ry = faults_y + ROW_H * row as f64;
        svg.text(4.0, ry + 13.0, "start", "rowlabel", &truncate(kind, 16));
        for f in view.faults.iter().filter(|f| f.kind == *kind) {
            let (x0, x1) = (sc.x(f.start), sc.x(f.end));
            let mut title = format!(
                "{} · {} → {} ({}), ended by {}",
                f.label(),
                fmt_time(f.start, span),
                fmt_time(f.end, span),
                fmt_duration(f.end - f.start),
                f.ended_by
            );
            for l in &f.lost {
                title.push_str(&format!(" · {} lost {}", l.node, l.words()));
            }
            let class = format!("fault {}", kind_class(kind));
            svg.rect(x0, ry + 2.0, x1 - x0, ROW_H - 4.0, &class, Some(&title));
            let room = ((x1 - x0 - 6.0) / 6.2).floor();
            let text = if f.targets.is_empty() {
                f.kind.as_str()
            } else {
                f.targets.as_str()
            };
            if room >= 3.0 {
                svg.text_titled(
                    x0 + 3.0,
                    ry + 13.0,
                    "start",
                    "faultlabel",
                    &truncate(text, room as usize),
                    &title,
                );
            }
        }
    }
}

/// Draws the events row at `y`, each event a line down to `bottom`. Draws
/// nothing when there is no event.
pub fn draw_markers(svg: &mut Svg, view: &View<'_>, sc: &TimeScale, y: f64, bottom: f64) {
    if view.markers.is_empty() {
        return;
    }
    let (span, markers_y) = (sc.span(), y);
    svg.text(4.0, markers_y + 13.0, "start", "rowlabel", "events");
    let mut next_free = 0.0;
    for m in &view.markers {
        let x = sc.x(m.time);
        let title = format!("{} at {} {}", m.f, fmt_time(m.time, span), m.detail);
        svg.line(x, markers_y + 2.0, x, bottom, "marker");
        let label = truncate(&m.f, 14);
        let width = 6.2 * label.chars().count() as f64;
        // Near the right edge the label goes to the left of its line.
        let (lx, anchor) = if x + 3.0 + width > WIDTH {
            (x - 3.0, "end")
        } else {
            (x + 3.0, "start")
        };
        let left = if anchor == "end" { lx - width } else { lx };
        if left >= next_free {
            svg.text_titled(lx, markers_y + 13.0, anchor, "markerlabel", &label, &title);
            next_free = left + width + 4.0;
        }
    }
}
