//! The timeline: time left to right over the whole history.
//!
//! From top to bottom: the anomalies (where the failing operations are),
//! one row per kind of fault with its intervals and targets, nemesis
//! events such as `recover`, one row per node (its role and term from its
//! event log, down while killed, paused), and one lane per client worker
//! with a bar per operation from invocation to completion, coloured by
//! outcome. Faults are shaded across every row.
//!
//! At 200 ops/s for a minute (12,000 operations) bars overlap at the page's
//! resolution, so the lanes merge bars and fold lanes (see [`lanes`]); the
//! page says how many bars stand for how many operations.
//!
//! [`timeline`] lays the rows out and draws the grid and the shading; each
//! kind of row is drawn by its own module: [`anomaly_row`], [`fault_rows`]
//! (and the events row), [`node_rows`], [`lanes`].

pub mod anomaly_row;
pub mod fault_rows;
pub mod lanes;
pub mod node_rows;

use std::fmt::Write as _;

use super::View;
use super::faults::kind_class;
use super::html::{esc, fmt_duration, fmt_time, thousands};
use super::svg::{Svg, TimeScale, WIDTH, time_ticks};
use lanes::MAX_LANES;

/// Height of a client lane.
const LANE_H: f64 = 11.0;
/// Height of every other row.
const ROW_H: f64 = 18.0;

/// What [`timeline`] drew, for the page's note and for tests.
pub struct Drawn {
    /// The `<svg>` element.
    pub svg: String,
    /// Bars drawn in the lanes (merged bars count once).
    pub bars: usize,
    /// Client lanes.
    pub lanes: usize,
    /// Whether more than [`MAX_LANES`] lanes were needed.
    pub folded: bool,
}

/// Where each block of rows starts, top to bottom; a block with nothing to
/// show takes no room.
struct Layout {
    anomalies: f64,
    faults: f64,
    markers: f64,
    nodes: f64,
    lanes: f64,
    bottom: f64,
}

impl Layout {
    fn new(view: &View<'_>, fault_rows: usize, node_rows: usize, lanes: usize) -> Layout {
        let mut y = 22.0;
        let anomalies = y;
        if !view.anomalies.is_empty() {
            y += ROW_H;
        }
        let faults = y;
        y += ROW_H * fault_rows as f64;
        let markers = y;
        if !view.markers.is_empty() {
            y += ROW_H;
        }
        y += 4.0;
        let nodes = y;
        y += ROW_H * node_rows as f64;
        if node_rows > 0 {
            y += 6.0;
        }
        let lanes_y = y;
        y += LANE_H * lanes as f64;
        Layout {
            anomalies,
            faults,
            markers,
            nodes,
            lanes: lanes_y,
            bottom: y,
        }
    }
}

/// The whole chart.
pub fn timeline(view: &View<'_>) -> Drawn {
    let sc = TimeScale::chart(view.end);
    let lanes = lanes::lanes(&view.ops, view.end);
    let kinds = fault_rows::kinds(view);
    let nodes = node_rows::drawn(view);
    let at = Layout::new(view, kinds.len(), nodes.len(), lanes.procs.len());
    let mut svg = Svg::new(
        WIDTH,
        at.bottom + 22.0,
        "timeline",
        "Timeline of operations, faults and node roles",
    );

    // Grid and axis.
    let ticks = time_ticks(0, view.end, 12);
    for (t, label) in &ticks {
        let x = sc.x(*t);
        svg.line(x, 16.0, x, at.bottom, "grid");
        svg.text(x, 12.0, "middle", "axis", label);
        svg.text(x, at.bottom + 15.0, "middle", "axis", label);
    }

    // Fault shading behind everything, from the first fault row down.
    for f in &view.faults {
        let (x0, x1) = (sc.x(f.start), sc.x(f.end));
        let class = format!("shade {}", kind_class(&f.kind));
        svg.rect(x0, at.faults, x1 - x0, at.bottom - at.faults, &class, None);
    }

    anomaly_row::draw(&mut svg, view, &sc, at.anomalies, &lanes, at.lanes);
    fault_rows::draw(&mut svg, view, &sc, &kinds, at.faults);
    fault_rows::draw_markers(&mut svg, view, &sc, at.markers, at.bottom);
    node_rows::draw(&mut svg, &sc, &nodes, at.nodes);
    let bars = lanes::draw(&mut svg, view, &sc, &lanes, at.lanes);
    Drawn {
        svg: svg.finish(),
        bars,
        lanes: lanes.procs.len(),
        folded: lanes.folded,
    }
}

/// The timeline section: legend, chart and a note on what was merged.
pub fn section(view: &View<'_>) -> String {
    let drawn = timeline(view);
    let mut out = String::new();
    out.push_str(
        "<div class=\"legend\"><span class=\"key ok\"></span>ok <span class=\"key fail\"></span>fail <span class=\"key mismatch\"></span>cas mismatch \
         <span class=\"key info\"></span>info (unknown outcome) <span class=\"key pending\"></span>no completion \
         <span class=\"key fk-partition\"></span>partition <span class=\"key fk-packet\"></span>packet \
         <span class=\"key fk-kill\"></span>kill \
         <span class=\"key fk-pause\"></span>pause <span class=\"key fk-power\"></span>power cut \
         <span class=\"key fk-slow-disk\"></span>slow disk \
         <span class=\"key fk-member\"></span>membership change <span class=\"key fk-wipe\"></span>wiped disk \
         <span class=\"key fk-other\"></span>other fault \
         <span class=\"key down\"></span>node down <span class=\"key powered-off\"></span>node powered off \
         <span class=\"key paused\"></span>node paused \
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
            let mut targets = f.targets.clone();
            if !f.lost.is_empty() {
                let lost: Vec<String> = f
                    .lost
                    .iter()
                    .map(|l| format!("{} {}", l.node, l.words()))
                    .collect();
                targets.push_str(&format!("; lost: {}", lost.join(", ")));
            }
            let _ = write!(
                out,
                "<tr><td><span class=\"key {}\"></span>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                kind_class(&f.kind),
                esc(&f.kind),
                esc(&targets),
                fmt_time(f.start, span),
                fmt_time(f.end, span),
                fmt_duration(f.end - f.start),
                esc(&f.ended_by)
            );
        }
        out.push_str("</tbody></table></details>");
    }
    out
}
