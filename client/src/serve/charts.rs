//! Charts as SVG, drawn here (no charting library to fetch, no script: the
//! pages work offline and under a CSP without inline script). Pure
//! functions from numbers to markup; every label is XML-escaped.
//!
//! - `stacked_bars`: one bar per x, stacked by series (cost per day by template);
//! - `lines`: one line per series over shared x (calls, error rate, latency);
//! - `intervals`: one point per row with its confidence interval (experiments).

use std::fmt::Write;

const W: f64 = 760.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 44.0;

/// Colours of series, in order (repeating past the eighth).
const PALETTE: [&str; 8] = ["#2f5bd3", "#e07b00", "#067647", "#b42318", "#6941c6", "#0e9384", "#c11574", "#667085"];

pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// A series: its name and one value per x (None: no data there).
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A round upper bound for an axis: 1, 2 or 5 times a power of ten.
fn nice_max(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= max {
            return m * p;
        }
    }
    10.0 * p
}

/// An axis value as a short label, with as many decimals as the distance
/// between ticks (`step`) needs to tell neighbours apart.
fn tick(v: f64, step: f64) -> String {
    // The fewest decimals that write the step exactly (0.125 needs 3).
    let decimals = if step <= 0.0 || !step.is_finite() {
        0
    } else {
        (0..8usize)
            .find(|&d| {
                let scaled = step * 10f64.powi(d as i32);
                scaled.round() >= 1.0 && (scaled - scaled.round()).abs() < 1e-6 * scaled
            })
            .unwrap_or(8)
    };
    let text = format!("{v:.decimals$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
    if text == "-0" { "0".into() } else { text }
}

/// A data value for a tooltip: four significant digits.
fn value(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return tick(v, 1.0);
    }
    let magnitude = v.abs().log10().floor();
    tick(v, 10f64.powf(magnitude - 3.0))
}

fn frame(out: &mut String, title: &str, xs: &[String], ymax: f64, unit: &str) {
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" class="chart" role="img" aria-label="{}"><title>{}</title>"##,
        escape(title),
        escape(title)
    );
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=4 {
        let v = ymax * i as f64 / 4.0;
        let y = TOP + plot_h - plot_h * i as f64 / 4.0;
        let label = tick(v, ymax / 4.0);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e4e7ec"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#667085">{}{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            escape(&label),
            escape(unit)
        );
    }
    // At most 8 x labels, evenly spread.
    let n = xs.len().max(1);
    let step = n.div_ceil(8).max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    for (i, x) in xs.iter().enumerate().filter(|(i, _)| i % step == 0) {
        let cx = LEFT + slot * (i as f64 + 0.5);
        let _ = write!(out, r##"<text x="{cx:.1}" y="{}" font-size="11" text-anchor="middle" fill="#667085">{}</text>"##, H - BOTTOM + 16.0, escape(x));
    }
}

fn legend(out: &mut String, names: &[&str]) {
    let mut x = LEFT;
    for (i, n) in names.iter().enumerate() {
        let label: String = n.chars().take(28).collect();
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{}" font-size="11" fill="#1d2330">{}</text>"##,
            H - 14.0,
            colour(i),
            x + 14.0,
            H - 5.0,
            escape(&label)
        );
        x += 24.0 + 6.5 * label.chars().count() as f64;
        if x > W - 80.0 {
            break;
        }
    }
}

/// Bars stacked by series, one per x.
pub fn stacked_bars(title: &str, xs: &[String], series: &[Series], unit: &str) -> String {
    let totals: Vec<f64> = (0..xs.len()).map(|i| series.iter().map(|s| s.values.get(i).copied().flatten().unwrap_or(0.0)).sum()).collect();
    let ymax = nice_max(totals.iter().copied().fold(0.0, f64::max));
    let mut out = String::new();
    frame(&mut out, title, xs, ymax, unit);
    let plot_h = H - TOP - BOTTOM;
    let slot = (W - LEFT - RIGHT) / xs.len().max(1) as f64;
    for i in 0..xs.len() {
        let mut base = 0.0;
        for (k, s) in series.iter().enumerate() {
            let v = s.values.get(i).copied().flatten().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let y0 = TOP + plot_h - plot_h * base / ymax;
            let y1 = TOP + plot_h - plot_h * (base + v) / ymax;
            let _ = write!(
                out,
                r##"<rect x="{:.1}" y="{y1:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: {}</title></rect>"##,
                LEFT + slot * i as f64 + slot * 0.15,
                slot * 0.7,
                (y0 - y1).max(0.5),
                colour(k),
                escape(&s.name),
                escape(&xs[i]),
                escape(&value(v))
            );
            base += v;
        }
    }
    legend(&mut out, &series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>());
    out.push_str("</svg>");
    out
}

/// Lines over shared x; gaps where a series has no value.
pub fn lines(title: &str, xs: &[String], series: &[Series], unit: &str) -> String {
    let max = series.iter().flat_map(|s| s.values.iter().flatten()).copied().fold(0.0, f64::max);
    let ymax = nice_max(max);
    let mut out = String::new();
    frame(&mut out, title, xs, ymax, unit);
    let plot_h = H - TOP - BOTTOM;
    let slot = (W - LEFT - RIGHT) / xs.len().max(1) as f64;
    for (k, s) in series.iter().enumerate() {
        let mut path = String::new();
        let mut pen_down = false;
        for (i, v) in s.values.iter().enumerate() {
            match v {
                Some(v) => {
                    let x = LEFT + slot * (i as f64 + 0.5);
                    let y = TOP + plot_h - plot_h * v / ymax;
                    let _ = write!(path, "{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" });
                    let _ = write!(
                        out,
                        r##"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{}"><title>{} {}: {}</title></circle>"##,
                        colour(k),
                        escape(&s.name),
                        escape(&xs[i]),
                        escape(&value(*v))
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        if !path.is_empty() {
            let _ = write!(out, r##"<path d="{}" fill="none" stroke="{}" stroke-width="2"/>"##, path.trim_end(), colour(k));
        }
    }
    legend(&mut out, &series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>());
    out.push_str("</svg>");
    out
}

/// One row of an interval chart: a name, a value and its interval.
pub struct Interval {
    pub name: String,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// Points with horizontal confidence intervals, one row each.
pub fn intervals(title: &str, rows: &[Interval], unit: &str) -> String {
    let lo = rows.iter().map(|r| r.low.min(r.value)).fold(f64::INFINITY, f64::min);
    let hi = rows.iter().map(|r| r.high.max(r.value)).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if (hi - lo).is_finite() && hi > lo { (lo, hi) } else { (0.0, 1.0) };
    // Round ticks: a 1, 2 or 5 step, the axis widened to whole steps (at
    // most a dozen, whatever the numbers).
    let step = nice_max((hi - lo) / 4.0);
    let (lo, hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    let ticks = ((hi - lo) / step).round().clamp(1.0, 12.0) as usize;
    let row_h = 34.0;
    let h = TOP + row_h * rows.len().max(1) as f64 + 28.0;
    let (left, right) = (150.0, 40.0);
    let x_of = |v: f64| left + (W - left - right) * (v - lo) / (hi - lo);
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" class="chart" role="img" aria-label="{}"><title>{}</title>"##,
        escape(title),
        escape(title)
    );
    for i in 0..=ticks {
        let v = lo + step * i as f64;
        let x = x_of(v);
        let label = tick(v, step);
        let _ = write!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="#e4e7ec"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#667085">{}{}</text>"##,
            h - 24.0,
            h - 8.0,
            escape(&label),
            escape(unit)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = TOP + row_h * i as f64 + row_h / 2.0;
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end" fill="#1d2330">{}</text><line x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{}" stroke-width="3"/><circle cx="{:.1}" cy="{y:.1}" r="5" fill="{}"><title>{}: {} ({} to {})</title></circle>"##,
            left - 10.0,
            y + 4.0,
            escape(&r.name),
            x_of(r.low),
            x_of(r.high),
            colour(i),
            x_of(r.value),
            colour(i),
            escape(&r.name),
            escape(&value(r.value)),
            escape(&value(r.low)),
            escape(&value(r.high))
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, v: &[Option<f64>]) -> Series {
        Series { name: name.into(), values: v.to_vec() }
    }

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(0.37), 0.5);
        assert_eq!(nice_max(3.2), 5.0);
        assert_eq!(nice_max(1234.0), 2000.0);
        assert_eq!(nice_max(10.0), 10.0);
        assert_eq!(tick(0.125, 0.125), "0.125");
        assert_eq!(tick(2500.0, 500.0), "2500");
        // Ticks 0.00002 apart keep the digits that tell them apart.
        assert_eq!(tick(0.00094, 0.00002), "0.00094");
        assert_eq!(tick(0.5, 0.25), "0.5");
        assert_eq!(value(0.000912164726), "0.0009122");
        assert_eq!(value(841.53082), "841.5");
    }

    #[test]
    fn bars_stack_and_labels_are_escaped() {
        let xs = vec!["11-01".to_string(), "11-02".to_string()];
        let svg = stacked_bars("cost", &xs, &[s("<a>", &[Some(1.0), None]), s("b&c", &[Some(3.0), Some(2.0)])], " $");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("&lt;a&gt;") && svg.contains("b&amp;c") && !svg.contains("<a>"));
        // Three bars (one value is missing), on an axis up to 5.
        assert_eq!(svg.matches("<rect x=").count() - 2, 3, "two legend squares");
        assert!(svg.contains(">5 $</text>"));
    }

    #[test]
    fn lines_break_at_missing_values() {
        let xs: Vec<String> = (0..4).map(|i| i.to_string()).collect();
        let svg = lines("calls", &xs, &[s("x", &[Some(1.0), None, Some(2.0), Some(3.0)])], "");
        let d = svg.split("<path d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(d.matches('L').count(), 1, "{d}");
    }

    #[test]
    fn intervals_place_points_between_their_bounds() {
        let rows = [Interval { name: "control".into(), value: 0.5, low: 0.4, high: 0.6 }, Interval { name: "b".into(), value: 0.7, low: 0.65, high: 0.75 }];
        let svg = intervals("success rate", &rows, "");
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("control: 0.5 (0.4 to 0.6)"));
        // Extreme values draw a chart, not a loop.
        let huge = [Interval { name: "x".into(), value: 1e308, low: -1e308, high: 1e308 }];
        assert!(intervals("x", &huge, "").ends_with("</svg>"));
        // Ticks on round values: 0.4, 0.5, ... 0.8 (steps of 0.1).
        for t in [">0.4<", ">0.5<", ">0.8<"] {
            assert!(svg.contains(t), "{t}: {svg}");
        }
    }
}
