//! A small SVG writer and the scales the charts share.
//!
//! - [`WIDTH`], [`LEFT`], [`RIGHT`]: the layout every chart shares, so
//!   that one instant has one x on the whole page.
//! - [`Svg`]: appends elements to a string; every text and title goes
//!   through [`esc`], class names are the report's own constants.
//! - [`TimeScale`]: history time (ns) to x; all charts of a report use the
//!   same range ([`TimeScale::chart`]), so a fault lines up across the
//!   timeline and the latency and throughput plots.
//! - [`time_ticks`]: round tick positions with labels.

use std::fmt::Write as _;

use super::html::esc;

/// Width of every chart, in SVG units (about pixels on a laptop screen).
pub const WIDTH: f64 = 1200.0;
/// Room for row labels left of every chart's plot.
pub const LEFT: f64 = 110.0;
/// Room right of every chart's plot, for the last tick's label.
pub const RIGHT: f64 = 14.0;

/// Writes one `<svg>` element.
pub struct Svg {
    out: String,
}

/// A number with at most one decimal, without a trailing `.0`: keeps files small.
pub fn num(x: f64) -> String {
    let r = (x * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

impl Svg {
    /// An SVG `width` × `height` user units, scaled to the page width.
    /// `label` is what a screen reader says.
    pub fn new(width: f64, height: f64, class: &str, label: &str) -> Svg {
        let mut out = String::with_capacity(4096);
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"{class}\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
            num(width),
            num(height),
            num(width),
            num(height),
            esc(label)
        );
        Svg { out }
    }

    /// A rectangle; `title` becomes its tooltip. Widths and heights below
    /// one unit are drawn as one unit so every operation stays visible.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, class: &str, title: Option<&str>) {
        let _ = write!(
            self.out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" class=\"{class}\"",
            num(x),
            num(y),
            num(w.max(1.0)),
            num(h.max(1.0))
        );
        self.close(title);
    }

    /// A rectangle with an explicit fill (from the report's own palette).
    pub fn rect_fill(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, title: Option<&str>) {
        let _ = write!(
            self.out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"",
            num(x),
            num(y),
            num(w.max(1.0)),
            num(h.max(1.0))
        );
        self.close(title);
    }

    /// A line from (`x1`, `y1`) to (`x2`, `y2`).
    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, class: &str) {
        let _ = write!(
            self.out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" class=\"{class}\"/>",
            num(x1),
            num(y1),
            num(x2),
            num(y2)
        );
    }

    /// Text; `anchor` is start, middle or end.
    pub fn text(&mut self, x: f64, y: f64, anchor: &str, class: &str, text: &str) {
        let _ = write!(
            self.out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\" class=\"{class}\">{}</text>",
            num(x),
            num(y),
            esc(text)
        );
    }

    /// Text with a tooltip.
    pub fn text_titled(
        &mut self,
        x: f64,
        y: f64,
        anchor: &str,
        class: &str,
        text: &str,
        title: &str,
    ) {
        let _ = write!(
            self.out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\" class=\"{class}\"><title>{}</title>{}</text>",
            num(x),
            num(y),
            esc(title),
            esc(text)
        );
    }

    /// A circle; `title` becomes its tooltip.
    pub fn circle(&mut self, x: f64, y: f64, r: f64, class: &str, title: Option<&str>) {
        let _ = write!(
            self.out,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" class=\"{class}\"",
            num(x),
            num(y),
            num(r)
        );
        self.close(title);
    }

    /// A path; `d` is built by the caller from numbers only.
    pub fn path(&mut self, d: &str, class: &str, title: Option<&str>) {
        let _ = write!(self.out, "<path d=\"{d}\" class=\"{class}\"");
        self.close(title);
    }

    /// A polyline through `points`.
    pub fn polyline(&mut self, points: &[(f64, f64)], class: &str) {
        if points.is_empty() {
            return;
        }
        let pts: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{},{}", num(*x), num(*y)))
            .collect();
        let _ = write!(
            self.out,
            "<polyline points=\"{}\" class=\"{class}\"/>",
            pts.join(" ")
        );
    }

    /// Opens a group (`</g>` with [`Svg::end_group`]).
    pub fn group(&mut self, class: &str) {
        let _ = write!(self.out, "<g class=\"{class}\">");
    }

    /// Closes the group [`Svg::group`] opened.
    pub fn end_group(&mut self) {
        self.out.push_str("</g>");
    }

    fn close(&mut self, title: Option<&str>) {
        match title {
            Some(t) => {
                let _ = write!(self.out, "><title>{}</title></{}>", esc(t), self.last_tag());
            }
            None => self.out.push_str("/>"),
        }
    }

    /// The name of the element being written (for its closing tag).
    fn last_tag(&self) -> &'static str {
        let open = self.out.rfind('<').map_or("", |i| &self.out[i + 1..]);
        ["rect", "circle", "path"]
            .into_iter()
            .find(|t| open.starts_with(t))
            .unwrap_or("g")
    }

    /// The finished `<svg>` element.
    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

/// Maps history time (ns) in `[t0, t1]` to x in `[x0, x1]`.
#[derive(Clone, Copy, Debug)]
pub struct TimeScale {
    /// The first time shown, in ns.
    pub t0: u64,
    /// The last time shown, in ns.
    pub t1: u64,
    /// The x of `t0`.
    pub x0: f64,
    /// The x of `t1`.
    pub x1: f64,
}

impl TimeScale {
    /// A scale from `[t0, t1]` to `[x0, x1]`; an empty range is widened to 1
    /// ns.
    pub fn new(t0: u64, t1: u64, x0: f64, x1: f64) -> TimeScale {
        TimeScale {
            t0,
            t1: t1.max(t0 + 1),
            x0,
            x1,
        }
    }

    /// The time axis every chart of the report shares: the whole history,
    /// `[0, end]`, across the plot between [`LEFT`] and [`RIGHT`].
    pub fn chart(end: u64) -> TimeScale {
        TimeScale::new(0, end, LEFT, WIDTH - RIGHT)
    }

    /// x of `t`, clamped to the plot.
    pub fn x(&self, t: u64) -> f64 {
        let t = t.clamp(self.t0, self.t1);
        self.x0 + (t - self.t0) as f64 / (self.t1 - self.t0) as f64 * (self.x1 - self.x0)
    }

    /// The time shown, in ns.
    pub fn span(&self) -> u64 {
        self.t1 - self.t0
    }

    /// Nanoseconds one unit of x stands for.
    pub fn ns_per_px(&self) -> f64 {
        self.span() as f64 / (self.x1 - self.x0)
    }
}

/// About `n` round tick times in `[t0, t1]`, with labels.
pub fn time_ticks(t0: u64, t1: u64, n: usize) -> Vec<(u64, String)> {
    let span = t1.saturating_sub(t0).max(1);
    let step = nice_step(span as f64 / n.max(1) as f64) as u64;
    let step = step.max(1);
    let first = t0.div_ceil(step) * step;
    // The unit suits the largest time shown (`9.5 s`, not `9500 ms`), the
    // decimals suit the step.
    let (unit, name) = if t1 >= 1_000_000_000 {
        (1e9, "s")
    } else if t1 >= 1_000_000 {
        (1e6, "ms")
    } else {
        (1e3, "µs")
    };
    let rel = step as f64 / unit;
    let decimals = if rel >= 1.0 {
        0
    } else {
        ((-rel.log10()).ceil() as usize).min(6)
    };
    (0..)
        .map(|i| first + i * step)
        .take_while(|&t| t <= t1)
        .map(|t| (t, format!("{:.*} {name}", decimals, t as f64 / unit)))
        .collect()
}

/// 1, 2 or 5 times a power of ten, at least `x`.
pub fn nice_step(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= x {
            return m * p;
        }
    }
    10.0 * p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_close_their_own_element_and_text_is_escaped() {
        let mut s = Svg::new(100.0, 50.0, "c", "a <chart>");
        s.rect(1.0, 2.0, 0.2, 3.0, "ok", Some("op <1>"));
        s.circle(5.0, 5.0, 2.0, "fail", Some("x"));
        s.path("M 1 1 L 2 2", "info", None);
        s.text(1.0, 1.0, "start", "t", "k&v");
        let out = s.finish();
        assert!(out.contains("width=\"1\""), "{out}");
        assert!(out.contains("<title>op &lt;1&gt;</title></rect>"), "{out}");
        assert!(out.contains("<title>x</title></circle>"), "{out}");
        assert!(out.contains(">k&amp;v</text>"), "{out}");
        assert!(out.contains("aria-label=\"a &lt;chart&gt;\""), "{out}");
        assert!(out.ends_with("</svg>"));
    }

    #[test]
    fn scales_and_ticks() {
        let s = TimeScale::new(0, 10_000_000_000, 100.0, 1100.0);
        assert_eq!(s.x(5_000_000_000), 600.0);
        assert_eq!(s.x(20_000_000_000), 1100.0);
        let t = time_ticks(0, 10_000_000_000, 10);
        assert_eq!(t.len(), 11);
        assert_eq!(t[1].1, "1 s");
        let t = time_ticks(0, 9_000_000, 6);
        assert_eq!(t[1].1, "2 ms");
        let t = time_ticks(0, 60_000_000_000, 12);
        assert_eq!(t[1].1, "5 s");
        let t = time_ticks(9_400_000_000, 11_600_000_000, 10);
        assert_eq!(t[0].1, "9.5 s");
        assert_eq!(t[1].1, "10.0 s");
        let t = time_ticks(15_150_000_000, 15_152_000_000, 4);
        assert_eq!(t[0].1, "15.1500 s");
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(num(2.04), "2");
        assert_eq!(num(2.25), "2.3");
    }
}
