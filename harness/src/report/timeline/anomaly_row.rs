//! The anomalies row: a mark above each failing operation, with a line
//! down to its bar, which is outlined. Labels of marks close together are
//! merged: `key k1 (+2)`.

use std::collections::HashMap;

use super::super::View;
use super::super::anomaly::Mark;
use super::super::svg::{Svg, TimeScale, WIDTH, num};
use super::LANE_H;
use super::lanes::Lanes;

/// Draws the row at `y`, and the outlines in the lanes that start at
/// `lanes_y`. Draws nothing when there is no anomaly.
pub fn draw(svg: &mut Svg, view: &View<'_>, sc: &TimeScale, y: f64, lanes: &Lanes, lanes_y: f64) {
    if view.anomalies.is_empty() {
        return;
    }
    let (ops, lane_of, anomaly_y) = (&view.ops, &lanes.of_op, y);
    svg.text(4.0, anomaly_y + 13.0, "start", "rowlabel bad", "anomalies");
    let by_index: HashMap<u64, usize> = ops
        .iter()
        .enumerate()
        .map(|(i, o)| (o.index(), i))
        .collect();
    // Labels of anomalies close together are merged: `key k1 (+2)`.
    let mut labels: Vec<(f64, String, String, usize)> = Vec::new();
    let mut marks: Vec<(usize, &Mark)> = view
        .anomalies
        .iter()
        .filter_map(|a| by_index.get(&a.op).map(|&i| (i, a)))
        .collect();
    marks.sort_by_key(|&(i, _)| ops[i].invoke.time);
    for &(i, a) in &marks {
        let op = &ops[i];
        let x = sc.x(op.invoke.time);
        let d = format!("M {} {} l 5 -9 h -10 z", num(x), num(anomaly_y + 15.0));
        let title = format!("{}: {}", a.label, a.sentence);
        svg.path(&d, "anomaly", Some(&title));
        match labels.last_mut() {
            Some(last) if x < last.0 + 7.0 + 6.8 * (last.1.chars().count() + 6) as f64 => {
                last.2.push('\n');
                last.2.push_str(&title);
                last.3 += 1;
            }
            _ => labels.push((x, a.label.clone(), title.clone(), 0)),
        }
        let lane_top = lanes_y + LANE_H * lane_of[i] as f64;
        let x1 = sc.x(op.completion.map_or(view.end, |c| c.time));
        svg.line(x, anomaly_y + 15.0, x, lane_top, "anomaly-line");
        svg.rect(
            x - 2.0,
            lane_top - 1.5,
            x1 - x + 4.0,
            LANE_H + 1.0,
            "stuck",
            Some(&title),
        );
    }
    for (x, label, title, more) in labels {
        let text = if more > 0 {
            format!("{label} (+{more})")
        } else {
            label
        };
        let width = 6.8 * text.chars().count() as f64;
        let (lx, anchor) = if x + 7.0 + width > WIDTH {
            (x - 7.0, "end")
        } else {
            (x + 7.0, "start")
        };
        svg.text_titled(lx, anomaly_y + 13.0, anchor, "anomaly-label", &text, &title);
    }
}
