//! The client lanes: one per worker, a bar per operation from invocation
//! to completion, coloured by outcome.
//!
//! Lanes are assigned greedily: a process takes the lane that became free
//! last before its first invocation, so a worker that continued under a new
//! process number (after an `info`) stays in its lane. Consecutive bars of
//! one lane with the same outcome that are less than a pixel apart are
//! merged into one (its tooltip counts them), and lanes beyond
//! [`MAX_LANES`] are folded onto the first ones.

use std::collections::{BTreeMap, HashMap};

use super::super::View;
use super::super::html::{fmt_time, op_class, op_title, truncate};
use super::super::svg::{LEFT, Svg, TimeScale};
use super::LANE_H;
use crate::history::{Operation, ProcessId};

/// More lanes than this are folded onto the first ones.
pub const MAX_LANES: usize = 40;

/// Client lanes (see the module doc).
pub struct Lanes {
    /// The lane of each operation, in the order of `ops`.
    pub of_op: Vec<usize>,
    /// The processes of each lane.
    pub procs: Vec<Vec<ProcessId>>,
    /// Whether more than [`MAX_LANES`] were needed.
    pub folded: bool,
}

/// Assigns each operation of `ops` (in invocation order) a lane; operations
/// without completion last until `end`.
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

/// Draws the lanes from `y` down: a label per lane, then the bars. Returns
/// how many bars it drew.
pub fn draw(svg: &mut Svg, view: &View<'_>, sc: &TimeScale, lanes: &Lanes, y: f64) -> usize {
    let span = sc.span();
    let (lane_of, procs, lanes_y) = (&lanes.of_op, &lanes.procs, y);
    let lane_count = procs.len();
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
    let mut bar = |svg: &mut Svg, l: usize, b: Bar<'_>| {
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
    for (i, op) in view.ops.iter().enumerate() {
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
                    bar(svg, l, b);
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
            bar(svg, l, b);
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
    bars
}
