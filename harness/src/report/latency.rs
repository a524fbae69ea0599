//! Latency and throughput over time, on the timeline's time axis.
//!
//! - Latency: one mark per completed operation at its invocation time,
//!   coloured by outcome and shaped by function (read circle, write square,
//!   cas triangle, append diamond), on a log scale; lines for the p50, p95
//!   and p99 of the ok operations in each time bucket. Marks that would
//!   land on the same 2-pixel cell with the same colour and shape are drawn
//!   once (the page says how many).
//! - Throughput: completions per second in each bucket, stacked by outcome.
//!
//! Faults are shaded on both, as on the timeline.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::View;
use super::faults::kind_class;
use super::html::{fmt_duration, op_class, thousands};
use super::svg::{Svg, TimeScale, WIDTH, nice_step, num, time_ticks};
use crate::history::{F, Outcome};

const LAT_H: f64 = 240.0;
const THR_H: f64 = 150.0;
const TOP: f64 = 18.0;
/// About this many time buckets for percentiles and throughput.
const BUCKETS: u64 = 60;

/// Bucket width in ns: a round duration (1, 2 or 5 times a power of ten)
/// giving about [`BUCKETS`] buckets, at most 1.5 times as many.
fn bucket_ns(end: u64) -> u64 {
    let limit = end as f64 / BUCKETS as f64 * 1.5;
    if limit < 1.0 {
        return 1;
    }
    let p = 10f64.powf(limit.log10().floor());
    let m = [5.0, 2.0, 1.0]
        .into_iter()
        .find(|m| m * p <= limit)
        .unwrap_or(1.0);
    ((m * p) as u64).max(1)
}

/// The `q` quantile of sorted values (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// A log scale from `lo` to `hi` ns onto `[y1, y0]` (up is slower).
struct LogScale {
    lo: f64,
    hi: f64,
    top: f64,
    bottom: f64,
}

impl LogScale {
    fn y(&self, ns: u64) -> f64 {
        let v = (ns.max(1) as f64).log10().clamp(self.lo, self.hi);
        self.bottom - (v - self.lo) / (self.hi - self.lo) * (self.bottom - self.top)
    }
}

fn shade_faults(svg: &mut Svg, view: &View<'_>, sc: &TimeScale, top: f64, bottom: f64) {
    for f in &view.faults {
        let (x0, x1) = (sc.x(f.start), sc.x(f.end));
        let title = f.label();
        svg.rect(
            x0,
            top,
            x1 - x0,
            bottom - top,
            &format!("shade {}", kind_class(&f.kind)),
            Some(&title),
        );
    }
}

fn time_axis(svg: &mut Svg, view: &View<'_>, sc: &TimeScale, top: f64, bottom: f64) {
    for (t, label) in time_ticks(0, view.end, 12) {
        let x = sc.x(t);
        svg.line(x, top, x, bottom, "grid");
        svg.text(x, bottom + 14.0, "middle", "axis", &label);
    }
    svg.line(sc.x0, bottom, sc.x1, bottom, "axisline");
}

/// The latency chart; returns the SVG and how many marks it drew.
pub fn latency_chart(view: &View<'_>) -> (String, usize) {
    let sc = TimeScale::chart(view.end);
    let bottom = TOP + LAT_H;
    let mut svg = Svg::new(WIDTH, bottom + 22.0, "latency", "Latency over time");
    let lats: Vec<u64> = view.ops.iter().filter_map(|o| o.latency()).collect();
    let (lo, hi) = match (lats.iter().min(), lats.iter().max()) {
        (Some(&a), Some(&b)) => (
            (a.max(1) as f64).log10().floor(),
            (b.max(1) as f64).log10().ceil(),
        ),
        _ => (5.0, 9.0),
    };
    let ys = LogScale {
        lo,
        hi: if hi <= lo { lo + 1.0 } else { hi },
        top: TOP,
        bottom,
    };
    shade_faults(&mut svg, view, &sc, TOP, bottom);
    time_axis(&mut svg, view, &sc, TOP, bottom);
    let mut decade = ys.lo;
    while decade <= ys.hi {
        let ns = 10f64.powf(decade) as u64;
        let y = ys.y(ns);
        svg.line(sc.x0, y, sc.x1, y, "grid");
        svg.text(sc.x0 - 4.0, y + 4.0, "end", "axis", &fmt_duration(ns));
        decade += 1.0;
    }
    svg.text(4.0, TOP - 6.0, "start", "axis", "latency (log)");

    let mut seen = HashSet::new();
    let mut marks = 0;
    svg.group("marks");
    for op in &view.ops {
        let Some(l) = op.latency() else { continue };
        let (x, y) = (sc.x(op.invoke.time), ys.y(l));
        let class = op_class(op);
        if !seen.insert(((x / 2.0) as i64, (y / 2.0) as i64, class, op.f())) {
            continue;
        }
        marks += 1;
        let (xs, yy) = (num(x), num(y));
        match op.f() {
            F::Read => svg.circle(x, y, 2.2, class, None),
            F::Write => svg.rect(x - 2.0, y - 2.0, 4.0, 4.0, class, None),
            F::Cas => svg.path(
                &format!("M {xs} {} l 2.6 4.5 h -5.2 z", num(y - 3.0)),
                class,
                None,
            ),
            F::Append => svg.path(
                &format!("M {xs} {} l 3 3 l -3 3 l -3 -3 z", num(y - 3.0)),
                class,
                None,
            ),
        }
        let _ = yy;
    }
    svg.end_group();

    // Percentile lines of ok operations per bucket.
    let b = bucket_ns(view.end);
    let n = (view.end / b + 1) as usize;
    let mut buckets: Vec<Vec<u64>> = vec![Vec::new(); n];
    for op in &view.ops {
        if op.outcome() == Outcome::Ok
            && let Some(l) = op.latency()
        {
            buckets[(op.invoke.time / b) as usize].push(l);
        }
    }
    for v in &mut buckets {
        v.sort_unstable();
    }
    for (q, class) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
        let mut run: Vec<(f64, f64)> = Vec::new();
        for (i, v) in buckets.iter().enumerate() {
            if v.is_empty() {
                svg.polyline(&run, &format!("pline {class}"));
                run.clear();
                continue;
            }
            let t = i as u64 * b + b / 2;
            run.push((sc.x(t.min(view.end)), ys.y(quantile(v, q))));
        }
        svg.polyline(&run, &format!("pline {class}"));
    }
    (svg.finish(), marks)
}

/// The throughput chart: completions per second per bucket, by outcome.
pub fn throughput_chart(view: &View<'_>) -> String {
    let sc = TimeScale::chart(view.end);
    let bottom = TOP + THR_H;
    let mut svg = Svg::new(WIDTH, bottom + 22.0, "throughput", "Throughput over time");
    let b = bucket_ns(view.end);
    let n = (view.end / b + 1) as usize;
    let mut counts = vec![[0u64; 3]; n];
    for op in &view.ops {
        let Some(c) = op.completion else { continue };
        let k = match op.outcome() {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            _ => 2,
        };
        counts[(c.time / b) as usize][k] += 1;
    }
    let secs = b as f64 / 1e9;
    let max_rate = counts
        .iter()
        .map(|c| c.iter().sum::<u64>() as f64 / secs)
        .fold(0.0, f64::max);
    let top_rate = nice_step(max_rate.max(1.0) / 4.0) * 4.0;
    let y = |rate: f64| bottom - rate / top_rate * THR_H;
    shade_faults(&mut svg, view, &sc, TOP, bottom);
    time_axis(&mut svg, view, &sc, TOP, bottom);
    for i in 0..=4 {
        let r = top_rate * i as f64 / 4.0;
        svg.line(sc.x0, y(r), sc.x1, y(r), "grid");
        svg.text(
            sc.x0 - 4.0,
            y(r) + 4.0,
            "end",
            "axis",
            &format!("{}/s", num(r)),
        );
    }
    svg.text(4.0, TOP - 6.0, "start", "axis", "completions per second");
    for (i, c) in counts.iter().enumerate() {
        let t0 = i as u64 * b;
        let (x0, x1) = (sc.x(t0), sc.x((t0 + b).min(view.end)));
        let w = (x1 - x0 - 1.0).max(1.0);
        let mut base = 0.0;
        let title = format!(
            "{} – {}: ok {}, fail {}, info {} ({} per second)",
            super::html::fmt_time(t0, view.end),
            super::html::fmt_time(t0 + b, view.end),
            c[0],
            c[1],
            c[2],
            num(c.iter().sum::<u64>() as f64 / secs)
        );
        for (k, class) in ["ok", "fail", "info"].into_iter().enumerate() {
            if c[k] == 0 {
                continue;
            }
            let r = c[k] as f64 / secs;
            svg.rect(
                x0,
                y(base + r),
                w,
                y(base) - y(base + r),
                class,
                Some(&title),
            );
            base += r;
        }
    }
    svg.finish()
}

/// Section 3: the latency chart, the throughput chart and a note on what was
/// merged.
pub fn section(view: &View<'_>) -> String {
    let mut out = String::new();
    let (lat, marks) = latency_chart(view);
    out.push_str(
        "<div class=\"legend\"><span class=\"key ok\"></span>ok <span class=\"key fail\"></span>fail <span class=\"key mismatch\"></span>cas mismatch \
         <span class=\"key info\"></span>info · ● read ■ write ▲ cas ◆ append · \
         <span class=\"line p50\"></span>p50 <span class=\"line p95\"></span>p95 \
         <span class=\"line p99\"></span>p99 (ok operations, per time bucket)</div>",
    );
    out.push_str("<div class=\"chart\">");
    out.push_str(&lat);
    out.push_str("</div>");
    let completed = view.ops.iter().filter(|o| o.completion.is_some()).count();
    let mut ok: Vec<u64> = view
        .ops
        .iter()
        .filter(|o| o.outcome() == Outcome::Ok)
        .filter_map(|o| o.latency())
        .collect();
    ok.sort_unstable();
    let _ = write!(
        out,
        "<p class=\"note\">{} completed operations drawn as {} marks (marks on the same 2-pixel \
         cell with the same outcome and function are drawn once). Percentile lines over buckets of {}",
        thousands(completed),
        thousands(marks),
        fmt_duration(bucket_ns(view.end))
    );
    if !ok.is_empty() {
        let _ = write!(
            out,
            "; over the whole run, ok operations: p50 {}, p95 {}, p99 {}, max {}",
            fmt_duration(quantile(&ok, 0.5)),
            fmt_duration(quantile(&ok, 0.95)),
            fmt_duration(quantile(&ok, 0.99)),
            fmt_duration(*ok.last().expect("not empty"))
        );
    }
    out.push_str(".</p>");
    out.push_str("<h3>Throughput</h3><div class=\"chart\">");
    out.push_str(&throughput_chart(view));
    out.push_str("</div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_buckets() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&[7], 0.95), 7);
        assert_eq!(bucket_ns(60_000_000_000), 1_000_000_000);
        assert_eq!(bucket_ns(61_000_000_000), 1_000_000_000);
        assert_eq!(bucket_ns(10_000_000_000), 200_000_000);
        assert_eq!(bucket_ns(9_000_000), 200_000);
    }
}
