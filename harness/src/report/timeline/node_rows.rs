//! A row per node: its role and term over time (from its event log), and
//! when it was down (killed), powered off or paused.

use super::super::View;
use super::super::html::{fmt_time, truncate};
use super::super::nodes::{NodeInfo, node_colour};
use super::super::svg::{Svg, TimeScale};
use super::ROW_H;

/// The nodes with something to show, with their place in the report's
/// list (which picks their colour).
pub fn drawn<'v>(view: &'v View<'_>) -> Vec<(usize, &'v NodeInfo)> {
    view.nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            !(n.roles.is_empty()
                && n.down.is_empty()
                && n.paused.is_empty()
                && n.powered_off.is_empty())
        })
        .collect()
}

/// Draws a row per node of `drawn_nodes`, from `y` down.
pub fn draw(svg: &mut Svg, sc: &TimeScale, drawn_nodes: &[(usize, &NodeInfo)], y: f64) {
    let (span, nodes_y) = (sc.span(), y);
    for (row, &(i, n)) in drawn_nodes.iter().enumerate() {
        let ry = nodes_y + ROW_H * row as f64;
        svg.text(4.0, ry + 13.0, "start", "rowlabel", &truncate(&n.id, 16));
        // Labels go on top of every bar of the row, and only where they
        // overlap neither another label nor a later bar.
        // (start, end of the visible part, class, long text, short text)
        let mut labels: Vec<(f64, f64, &'static str, String, String)> = Vec::new();
        for r in &n.roles {
            let (x0, x1) = (sc.x(r.start), sc.x(r.end));
            let title = format!(
                "{} {} in term {} · {} → {}",
                n.id,
                r.role,
                r.term,
                fmt_time(r.start, span),
                fmt_time(r.end, span)
            );
            match r.role.as_str() {
                "leader" => {
                    svg.rect_fill(
                        x0,
                        ry + 2.0,
                        x1 - x0,
                        ROW_H - 4.0,
                        node_colour(i),
                        Some(&title),
                    );
                    labels.push((
                        x0,
                        x1,
                        "leaderlabel",
                        format!("leader t{}", r.term),
                        format!("t{}", r.term),
                    ));
                }
                "candidate" => svg.rect(
                    x0,
                    ry + 5.0,
                    x1 - x0,
                    ROW_H - 10.0,
                    "r-candidate",
                    Some(&title),
                ),
                _ => svg.rect(
                    x0,
                    ry + 7.0,
                    x1 - x0,
                    ROW_H - 14.0,
                    "r-follower",
                    Some(&title),
                ),
            }
        }
        for (class, words, spans) in [
            ("down", "down", &n.down),
            ("powered-off", "power off", &n.powered_off),
            ("paused", "paused", &n.paused),
        ] {
            for &(a, b) in spans {
                let (x0, x1) = (sc.x(a), sc.x(b));
                let title = format!(
                    "{} {words} · {} → {}",
                    n.id,
                    fmt_time(a, span),
                    fmt_time(b, span)
                );
                svg.rect(x0, ry + 3.0, x1 - x0, ROW_H - 6.0, class, Some(&title));
                // A bar drawn over a label's span leaves it only what is
                // left of the bar.
                for l in labels.iter_mut().filter(|l| l.0 < x1 && l.1 > x0) {
                    l.1 = if x0 > l.0 { x0 } else { l.0 };
                }
                labels.push((x0, x1, "statelabel", words.to_string(), String::new()));
            }
        }
        let mut next_free = 0.0;
        labels.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (x0, x1, class, long, short) in labels {
            let fits =
                |t: &String| !t.is_empty() && x1 - x0 >= 6.2 * t.chars().count() as f64 + 5.0;
            let Some(text) = [long, short].into_iter().find(fits) else {
                continue;
            };
            if x0 >= next_free {
                svg.text(x0 + 3.0, ry + 13.0, "start", class, &text);
                next_free = x0 + 3.0 + 6.2 * text.chars().count() as f64 + 2.0;
            }
        }
    }
}
