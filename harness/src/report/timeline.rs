//! The timeline: time left to right over the whole history.
//!
//! From top to bottom: the anomalies (where the failing operations are),
//! one row per kind of fault with its intervals and targets, nemesis
//! events such as `recover`, one row per node (its role and term from its
//! event log, down while killed, paused), and one lane per client worker
//! with a bar per operation from invocation to completion, coloured by
//! outcome. Faults are shaded across every row.
//!
//! Lanes are assigned greedily: a process takes the lane that became free
//! last before its first invocation, so a worker that continued under a new
//! process number (after an `info`) stays in its lane. At 200 ops/s for a
//! minute (12,000 operations) bars overlap at the page's resolution, so
//! consecutive bars of one lane with the same outcome that are less than a
//! pixel apart are merged into one (its tooltip counts them), and lanes
//! beyond [`MAX_LANES`] are folded onto the first ones. The page says how
//! many bars stand for how many operations.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::View;
use super::faults::kind_class;
use super::html::{esc, fmt_time, op_class, op_title, thousands, truncate};
use super::nodes::node_colour;
use super::svg::{LEFT, Svg, TimeScale, WIDTH, time_ticks};
use crate::history::{Operation, ProcessId};

/// More lanes than this are folded onto the first ones.
pub const MAX_LANES: usize = 40;

const LANE_H: f64 = 11.0;
const ROW_H: f64 = 18.0;

/// Client lanes (see the module doc).
pub struct Lanes {
    /// The lane of each operation, in the order of `ops`.
    pub of_op: Vec<usize>,
    /// The processes of each lane.
    pub procs: Vec<Vec<ProcessId>>,
    /// Whether more than [`MAX_LANES`] were needed.
    pub folded: bool,
}

pub fn lanes(ops: &[Operation<'_>], end: u64) -> Lanes {
    // Each process's span: first invocation to last completion.
    let mut spans: HashMap<ProcessId, (u64, u64)> = HashMap::new();
    for op in ops {
        let p = op.client().process;
        let stop = op.completion.map_or(end, |c| c.time);
        let e = spans.entry(p).or_insert((op.invoke.time, stop));
        e.1 = e.1.max(stop);
    }
    let mut order: Vec<(ProcessId, (u64, u64))> = spans.into_iter().collect();
    order.sort_by_key(|&(p, (start, _))| (start, p));
    let mut free_at: Vec<u64> = Vec::new();
    let mut lane_of: HashMap<ProcessId, usize> = HashMap::new();
    for (p, (start, stop)) in order {
        // The lane freed last before `start` (its previous process was
        // most likely this worker's).
        let best = free_at
            .iter()
            .enumerate()
            .filter(|&(_, &f)| f <= start)
            .max_by_key(|&(i, &f)| (f, std::cmp::Reverse(i)))
            .map(|(i, _)| i);
        let lane = match best {
            Some(i) => i,
            None => {
                free_at.push(0);
                free_at.len() - 1
            }
        };
        free_at[lane] = stop.max(start + 1);
        lane_of.insert(p, lane);
    }
    let count = free_at.len().min(MAX_LANES);
    let mut procs: Vec<Vec<ProcessId>> = vec![Vec::new(); count];
    let mut by_lane: BTreeMap<usize, Vec<ProcessId>> = BTreeMap::new();
    for (&p, &l) in &lane_of {
        by_lane.entry(l % MAX_LANES).or_default().push(p);
    }
    for (l, mut ps) in by_lane {
        ps.sort();
        procs[l] = ps;
    }
    let of_op = ops
        .iter()
        .map(|o| lane_of[&o.client().process] % MAX_LANES)
        .collect();
    Lanes {
        of_op,
        procs,
        folded: free_at.len() > MAX_LANES,
    }
}

/// A drawn bar: one operation or several merged ones.
struct Bar<'a> {
    x0: f64,
    x1: f64,
    class: &'static str,
    first: Operation<'a>,
    last: Operation<'a>,
    count: usize,
}

/// What [`timeline`] drew, for the page's note and for tests.
pub struct Drawn {
    pub svg: String,
    pub bars: usize,
    pub lanes: usize,
    pub folded: bool,
}

pub fn timeline(view: &View<'_>) -> Drawn {
    let sc = TimeScale::chart(view.end);
    let span = sc.span();
    let ops = &view.ops;
    let Lanes {
        of_op: lane_of,
        procs,
        folded,
    } = lanes(ops, view.end);
    let lane_count = procs.len();

    // Rows, top to bottom.
    let mut kinds: Vec<&str> = Vec::new();
    for k in ["partition", "kill", "pause"] {
        if view.faults.iter().any(|f| f.kind == k) {
            kinds.push(k);
        }
    }
    let mut others: Vec<&str> = view
        .faults
        .iter()
        .map(|f| f.kind.as_str())
        .filter(|k| !["partition", "kill", "pause"].contains(k))
        .collect();
    others.sort();
    others.dedup();
    kinds.extend(others);

    let mut y = 22.0;
    let anomaly_y = y;
    if !view.anomalies.is_empty() {
        y += ROW_H;
    }
    let faults_y = y;
    y += ROW_H * kinds.len() as f64;
    let markers_y = y;
    if !view.markers.is_empty() {
        y += ROW_H;
    }
    let shade_top = faults_y;
    y += 4.0;
    let nodes_y = y;
    let drawn_nodes: Vec<(usize, &super::nodes::NodeInfo)> = view
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| !(n.roles.is_empty() && n.down.is_empty() && n.paused.is_empty()))
        .collect();
    y += ROW_H * drawn_nodes.len() as f64;
    if !drawn_nodes.is_empty() {
        y += 6.0;
    }
    let lanes_y = y;
    y += LANE_H * lane_count as f64;
    let bottom = y;
    let height = bottom + 22.0;

    let mut svg = Svg::new(
        WIDTH,
        height,
        "timeline",
        "Timeline of operations, faults and node roles",
    );

    // Grid and axis.
    let ticks = time_ticks(0, view.end, 12);
    for (t, label) in &ticks {
        let x = sc.x(*t);
        svg.line(x, 16.0, x, bottom, "grid");
        svg.text(x, 12.0, "middle", "axis", label);
        svg.text(x, bottom + 15.0, "middle", "axis", label);
    }

    // Fault shading behind everything.
    for f in &view.faults {
        let (x0, x1) = (sc.x(f.start), sc.x(f.end));
        let class = format!("shade {}", kind_class(&f.kind));
        svg.rect(x0, shade_top, x1 - x0, bottom - shade_top, &class, None);
    }

    // Anomalies.
    if !view.anomalies.is_empty() {
        svg.text(4.0, anomaly_y + 13.0, "start", "rowlabel bad", "anomalies");
        let by_index: HashMap<u64, usize> = ops
            .iter()
            .enumerate()
            .map(|(i, o)| (o.index(), i))
            .collect();
        // Labels of anomalies close together are merged: `key k1 (+2)`.
        let mut labels: Vec<(f64, String, String, usize)> = Vec::new();
        let mut marks: Vec<(usize, &super::anomaly::Mark)> = view
            .anomalies
            .iter()
            .filter_map(|a| by_index.get(&a.op).map(|&i| (i, a)))
            .collect();
        marks.sort_by_key(|&(i, _)| ops[i].invoke.time);
        for &(i, a) in &marks {
            let op = &ops[i];
            let x = sc.x(op.invoke.time);
            let d = format!(
                "M {} {} l 5 -9 h -10 z",
                super::svg::num(x),
                super::svg::num(anomaly_y + 15.0)
            );
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

    // Fault rows.
    for (row, kind) in kinds.iter().enumerate() {
        let ry = faults_y + ROW_H * row as f64;
        svg.text(4.0, ry + 13.0, "start", "rowlabel", &truncate(kind, 16));
        for f in view.faults.iter().filter(|f| f.kind == *kind) {
            let (x0, x1) = (sc.x(f.start), sc.x(f.end));
            let title = format!(
                "{} · {} → {} ({}), ended by {}",
                f.label(),
                fmt_time(f.start, span),
                fmt_time(f.end, span),
                super::html::fmt_duration(f.end - f.start),
                f.ended_by
            );
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

    // Nemesis events without duration (recover, node-exited, ...).
    if !view.markers.is_empty() {
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

    // Nodes.
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
        for (class, spans) in [("down", &n.down), ("paused", &n.paused)] {
            for &(a, b) in spans {
                let (x0, x1) = (sc.x(a), sc.x(b));
                let title = format!(
                    "{} {class} · {} → {}",
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
                labels.push((x0, x1, "statelabel", class.to_string(), String::new()));
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

    // Client lanes.
    for (l, ps) in procs.iter().enumerate() {
        let ry = lanes_y + LANE_H * l as f64;
        let shown: Vec<String> = ps.iter().map(|p| format!("p{p}")).collect();
        let all: Vec<String> = ps.iter().map(|p| p.to_string()).collect();
        svg.text_titled(
            4.0,
            ry + 9.0,
            "start",
            "lanelabel",
            &truncate(&shown.join(" "), 17),
            &format!(
                "lane {}: processes {}",
                l + 1,
                truncate(&all.join(", "), 400)
            ),
        );
    }
    let mut open: Vec<Option<Bar<'_>>> = (0..lane_count).map(|_| None).collect();
    let mut bars = 0;
    let mut draw = |svg: &mut Svg, l: usize, b: Bar<'_>| {
        bars += 1;
        let ry = lanes_y + LANE_H * l as f64 + 1.5;
        let title = if b.count == 1 {
            op_title(&b.first, span)
        } else {
            format!(
                "{} {} operations merged, {} → {} (ops {} … {})",
                b.count,
                b.class,
                fmt_time(b.first.invoke.time, span),
                fmt_time(b.last.completion.map_or(view.end, |c| c.time), span),
                b.first.index(),
                b.last.index()
            )
        };
        svg.rect(b.x0, ry, b.x1 - b.x0, LANE_H - 3.0, b.class, Some(&title));
    };
    for (i, op) in ops.iter().enumerate() {
        let l = lane_of[i];
        let class = op_class(op);
        let x0 = sc.x(op.invoke.time);
        let x1 = sc
            .x(op.completion.map_or(view.end, |c| c.time))
            .max(x0 + 1.0);
        match &mut open[l] {
            Some(b) if b.class == class && x0 <= b.x1 + 1.0 => {
                b.x1 = b.x1.max(x1);
                b.last = *op;
                b.count += 1;
            }
            slot => {
                if let Some(b) = slot.take() {
                    draw(&mut svg, l, b);
                }
                *slot = Some(Bar {
                    x0,
                    x1,
                    class,
                    first: *op,
                    last: *op,
                    count: 1,
                });
            }
        }
    }
    for (l, slot) in open.into_iter().enumerate() {
        if let Some(b) = slot {
            draw(&mut svg, l, b);
        }
    }
    if lane_count == 0 {
        svg.text(
            LEFT,
            lanes_y + 12.0,
            "start",
            "axis",
            "no client operations",
        );
    }
    Drawn {
        svg: svg.finish(),
        bars,
        lanes: lane_count,
        folded,
    }
}

/// The timeline section: legend, chart and a note on what was merged.
pub fn section(view: &View<'_>) -> String {
    let drawn = timeline(view);
    let mut out = String::new();
    out.push_str(
        "<div class=\"legend\"><span class=\"key ok\"></span>ok <span class=\"key fail\"></span>fail <span class=\"key mismatch\"></span>cas mismatch \
         <span class=\"key info\"></span>info (unknown outcome) <span class=\"key pending\"></span>no completion \
         <span class=\"key fk-partition\"></span>partition <span class=\"key fk-kill\"></span>kill \
         <span class=\"key fk-pause\"></span>pause <span class=\"key fk-other\"></span>other fault \
         <span class=\"key down\"></span>node down <span class=\"key paused\"></span>node paused \
         <span class=\"key r-candidate\"></span>candidate <span class=\"key r-follower\"></span>follower \
         <span class=\"key leader\"></span>leader (node colour, term)</div>",
    );
    out.push_str("<div class=\"chart\">");
    out.push_str(&drawn.svg);
    out.push_str("</div>");
    let n = view.ops.len();
    let _ = write!(
        out,
        "<p class=\"note\">{} client operations in {} lanes (a lane is a client worker: after an \
         unknown outcome it continues as a new process in the same lane), drawn as {} bars: \
         bars of one lane with the same outcome less than a pixel apart are merged; hover a bar \
         for the operation or the count.",
        thousands(n),
        drawn.lanes,
        thousands(drawn.bars)
    );
    if drawn.folded {
        let _ = write!(
            out,
            " More than {MAX_LANES} lanes were needed: lanes are folded, so a lane may show several workers."
        );
    }
    match (&view.clock, view.nodes.iter().any(|n| !n.roles.is_empty())) {
        (Some(c), true) if c.exact => out.push_str(
            " Node roles come from each node's events.jsonl, placed on the history's clock by run.json's history_start.",
        ),
        (Some(_), true) => out.push_str(
            " Node roles come from each node's events.jsonl; without history_start in run.json \
             their times are aligned approximately, taking the first election as time 0.",
        ),
        _ => {}
    }
    out.push_str("</p>");
    if !view.faults.is_empty() {
        let span = view.end;
        let _ = write!(
            out,
            "<details><summary>{} fault{} (table)</summary><table><thead><tr><th>kind</th><th>targets</th>\
             <th>from</th><th>to</th><th>duration</th><th>ended by</th></tr></thead><tbody>",
            view.faults.len(),
            if view.faults.len() == 1 { "" } else { "s" }
        );
        for f in &view.faults {
            let _ = write!(
                out,
                "<tr><td><span class=\"key {}\"></span>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                kind_class(&f.kind),
                esc(&f.kind),
                esc(&f.targets),
                fmt_time(f.start, span),
                fmt_time(f.end, span),
                super::html::fmt_duration(f.end - f.start),
                esc(&f.ended_by)
            );
        }
        out.push_str("</tbody></table></details>");
    }
    out
}
