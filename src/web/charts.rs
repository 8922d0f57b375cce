//! Server-rendered SVG charts. They need no JavaScript, print as they look, and use only
//! presentation attributes and the stylesheet's `dma-chart__*` classes (the CSP forbids inline
//! styles). Every chart is paired on its page with a table of the same figures.

use std::fmt::Write;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The opening of a chart: an `<svg>` labelled by its `<title>` (id `{id}-title`).
fn open_svg(class: &str, view_box: &str, id: &str, title: &str) -> String {
    let id = escape(id);
    format!(
        "<svg class=\"dma-chart {class}\" viewBox=\"{view_box}\" role=\"img\" aria-labelledby=\"{id}-title\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-title\">{}</title>",
        escape(title)
    )
}

/// The gridlines of a scale: each whole step from `min` to `max` (at most 10 of them), as
/// values, `min` first.
fn scale_steps(min: f64, max: f64) -> Vec<f64> {
    let span = if max > min { max - min } else { 1.0 };
    let steps = (span.round() as usize).clamp(1, 10);
    (0..=steps)
        .map(|s| min + span * s as f64 / steps as f64)
        .collect()
}

/// A gridline from `from` to `to` with its scale value written at `at`.
fn gridline(svg: &mut String, from: (f64, f64), to: (f64, f64), at: (f64, f64, &str), v: f64) {
    let _ = write!(
        svg,
        "<line class=\"dma-chart__grid\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><text class=\"dma-chart__label dma-chart__label--secondary\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{}\">{}</text>",
        from.0,
        from.1,
        to.0,
        to.1,
        at.0,
        at.1,
        at.2,
        escape(&trim_number(v))
    );
}

/// A radar chart of domain scores on the questionnaire's scale. `None` scores (nothing
/// counted yet) are drawn at the centre and labelled "no score".
pub fn radar(title: &str, labels: &[String], values: &[Option<f64>], min: f64, max: f64) -> String {
    let n = labels.len().max(3);
    let (cx, cy, r) = (300.0_f64, 230.0_f64, 150.0_f64);
    let span = if max > min { max - min } else { 1.0 };
    let point = |i: usize, frac: f64| {
        let angle = -std::f64::consts::FRAC_PI_2 + (i as f64) * std::f64::consts::TAU / n as f64;
        (cx + r * frac * angle.cos(), cy + r * frac * angle.sin())
    };
    // Wider than the rings on both sides, so the longest domain names on the left and right
    // are inside the drawing (a narrow screen clips anything outside it).
    let mut svg = open_svg("dma-chart--radar", "-80 0 760 460", "radar", title);
    // Rings at each whole step of the scale.
    for v in scale_steps(min, max).into_iter().skip(1) {
        let frac = (v - min) / span;
        let pts: Vec<String> = (0..n)
            .map(|i| {
                let (x, y) = point(i, frac);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        let _ = write!(
            svg,
            "<polygon class=\"dma-chart__grid\" points=\"{}\" fill=\"none\"/>",
            pts.join(" ")
        );
        let (lx, ly) = point(0, frac);
        let _ = write!(svg, "<text class=\"dma-chart__label dma-chart__label--secondary\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"start\">{}</text>", lx + 4.0, ly + 4.0, escape(&trim_number(v)));
    }
    for (i, label) in labels.iter().enumerate() {
        let (x, y) = point(i, 1.0);
        let _ = write!(
            svg,
            "<line class=\"dma-chart__axis\" x1=\"{cx}\" y1=\"{cy}\" x2=\"{x:.1}\" y2=\"{y:.1}\"/>"
        );
        let (lx, ly) = point(i, 1.18);
        let anchor = if (lx - cx).abs() < 10.0 {
            "middle"
        } else if lx > cx {
            "start"
        } else {
            "end"
        };
        let _ = write!(svg, "<text class=\"dma-chart__label\" x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"{anchor}\">{}</text>", escape(label));
    }
    let pts: Vec<(f64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| point(i, v.map_or(0.0, |v| ((v - min) / span).clamp(0.0, 1.0))))
        .collect();
    let poly: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = write!(
        svg,
        "<polygon class=\"dma-chart__series\" points=\"{}\"/>",
        poly.join(" ")
    );
    for ((x, y), (label, v)) in pts.iter().zip(labels.iter().zip(values)) {
        let _ = write!(
            svg,
            "<circle class=\"dma-chart__marker\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\"><title>{}: {}</title></circle>",
            escape(label),
            v.map_or("no score".to_string(), |v| format!("{v:.1}"))
        );
    }
    svg.push_str("</svg>");
    svg
}

fn trim_number(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.1}")
    }
}

/// One row of a box plot: a group's summary and, optionally, one value to mark on it (an
/// organisation's own score).
#[derive(Debug, Clone)]
pub struct BoxRow {
    pub label: String,
    pub stats: Option<crate::domain::stats::GroupStats>,
    pub marker: Option<f64>,
}

/// A horizontal box plot, one row per group, on the questionnaire's scale: whiskers from the
/// lowest to the highest score, a box from the lower to the upper quartile, a thick line at
/// the median, the member count at the right, and the optional marker as a round dot.
/// `id` must be unique on the page (it labels the SVG); `marker_label` names the marker in
/// its tooltip. Rows without figures say "no scores".
pub fn box_plot(
    id: &str,
    title: &str,
    rows: &[BoxRow],
    min: f64,
    max: f64,
    marker_label: &str,
) -> String {
    let (label_right, x0, x1, row_h, top) = (250.0_f64, 262.0_f64, 660.0_f64, 40.0_f64, 36.0_f64);
    let height = top + row_h * rows.len().max(1) as f64 + 12.0;
    let span = if max > min { max - min } else { 1.0 };
    let x = |v: f64| x0 + (x1 - x0) * ((v - min) / span).clamp(0.0, 1.0);
    let fmt = |v: f64| crate::domain::scoring::round_display(v, 2);
    let mut svg = open_svg(
        "dma-chart--wide dma-chart--box",
        &format!("0 0 720 {height:.0}"),
        id,
        title,
    );
    for v in scale_steps(min, max) {
        let gx = x(v);
        gridline(
            &mut svg,
            (gx, top - 6.0),
            (gx, height - 8.0),
            (gx, top - 12.0, "middle"),
            v,
        );
    }
    for (i, row) in rows.iter().enumerate() {
        let cy = top + row_h * i as f64 + row_h / 2.0;
        let _ = write!(
            svg,
            "<text class=\"dma-chart__label\" x=\"{label_right:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            cy + 5.0,
            escape(&row.label)
        );
        match &row.stats {
            Some(s) => {
                let (lo, q1, med, q3, hi) = (x(s.min), x(s.q1), x(s.median), x(s.q3), x(s.max));
                let _ = write!(
                    svg,
                    "<g><title>{}: {} organisations; median {}; quartiles {} to {}; lowest {}, highest {}; mean {}</title>",
                    escape(&row.label),
                    s.count,
                    fmt(s.median),
                    fmt(s.q1),
                    fmt(s.q3),
                    fmt(s.min),
                    fmt(s.max),
                    fmt(s.mean)
                );
                let _ = write!(
                    svg,
                    "<line class=\"dma-chart__whisker\" x1=\"{lo:.1}\" y1=\"{cy:.1}\" x2=\"{q1:.1}\" y2=\"{cy:.1}\"/><line class=\"dma-chart__whisker\" x1=\"{q3:.1}\" y1=\"{cy:.1}\" x2=\"{hi:.1}\" y2=\"{cy:.1}\"/>"
                );
                for cap in [lo, hi] {
                    let _ = write!(
                        svg,
                        "<line class=\"dma-chart__whisker\" x1=\"{cap:.1}\" y1=\"{:.1}\" x2=\"{cap:.1}\" y2=\"{:.1}\"/>",
                        cy - 7.0,
                        cy + 7.0
                    );
                }
                let _ = write!(
                    svg,
                    "<rect class=\"dma-chart__box\" x=\"{q1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"20\"/><line class=\"dma-chart__median\" x1=\"{med:.1}\" y1=\"{:.1}\" x2=\"{med:.1}\" y2=\"{:.1}\"/></g>",
                    cy - 10.0,
                    (q3 - q1).max(1.0),
                    cy - 12.0,
                    cy + 12.0
                );
                let _ = write!(
                    svg,
                    "<text class=\"dma-chart__label dma-chart__label--secondary\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"start\">n={}</text>",
                    x1 + 12.0,
                    cy + 5.0,
                    s.count
                );
            }
            None => {
                let _ = write!(
                    svg,
                    "<text class=\"dma-chart__label dma-chart__label--secondary\" x=\"{x0:.1}\" y=\"{:.1}\" text-anchor=\"start\">no scores</text>",
                    cy + 5.0
                );
            }
        }
        if let Some(v) = row.marker {
            let _ = write!(
                svg,
                "<circle class=\"dma-chart__series dma-chart__marker\" cx=\"{:.1}\" cy=\"{cy:.1}\" r=\"6\"><title>{}: {}</title></circle>",
                x(v),
                escape(marker_label),
                fmt(v)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// How a trend line joins a point to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// Both versions score the domain the same way: a solid line.
    Comparable,
    /// Scored differently (format section 5): a dashed line, the "not comparable" mark.
    NotComparable,
    /// Not comparable and comparable figures only were asked for: no line.
    Hidden,
}

/// One point of a trend: a cycle and the group's figures in it.
#[derive(Debug, Clone)]
pub struct TrendPoint {
    pub label: String,
    pub stats: Option<crate::domain::stats::GroupStats>,
}

/// A small line chart of one figure across cycles, on the questionnaire's scale: a dot at
/// each cycle's mean with a vertical bar over the middle half (lower to upper quartile), and
/// `joins[i]` drawn from point `i` to point `i + 1`. Small enough to sit several to a row
/// and to reflow at 320 px. `id` must be unique on the page.
pub fn trend_line(
    id: &str,
    title: &str,
    points: &[TrendPoint],
    joins: &[Join],
    min: f64,
    max: f64,
) -> String {
    let (x0, x1, top, bottom) = (36.0_f64, 268.0_f64, 14.0_f64, 142.0_f64);
    let span = if max > min { max - min } else { 1.0 };
    let y = |v: f64| bottom - (bottom - top) * ((v - min) / span).clamp(0.0, 1.0);
    let n = points.len();
    let x = |i: usize| {
        if n <= 1 {
            (x0 + x1) / 2.0
        } else {
            x0 + 14.0 + (x1 - x0 - 28.0) * i as f64 / (n - 1) as f64
        }
    };
    let fmt = |v: f64| crate::domain::scoring::round_display(v, 2);
    let mut svg = open_svg("dma-chart--trend", "0 0 280 176", id, title);
    for v in scale_steps(min, max) {
        let gy = y(v);
        gridline(&mut svg, (x0, gy), (x1, gy), (x0 - 6.0, gy + 4.0, "end"), v);
    }
    for (i, pair) in points.windows(2).enumerate() {
        let (Some(a), Some(b)) = (&pair[0].stats, &pair[1].stats) else {
            continue;
        };
        let class = match joins.get(i).copied().unwrap_or(Join::Hidden) {
            Join::Comparable => "dma-chart__series",
            Join::NotComparable => "dma-chart__peer",
            Join::Hidden => continue,
        };
        let _ = write!(
            svg,
            "<line class=\"{class}\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
            x(i),
            y(a.mean),
            x(i + 1),
            y(b.mean)
        );
    }
    for (i, p) in points.iter().enumerate() {
        let px = x(i);
        let _ = write!(
            svg,
            "<text class=\"dma-chart__label dma-chart__label--secondary\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 24.0,
            escape(&p.label)
        );
        let Some(s) = &p.stats else {
            let _ = write!(
                svg,
                "<text class=\"dma-chart__label dma-chart__label--secondary\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">none</text>",
                y(min) - 6.0
            );
            continue;
        };
        let _ = write!(
            svg,
            "<g><title>{}: mean {} ({} organisations); middle half {} to {}</title><line class=\"dma-chart__whisker\" x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\"/><circle class=\"dma-chart__series dma-chart__marker\" cx=\"{px:.1}\" cy=\"{:.1}\" r=\"5\"/></g>",
            escape(&p.label),
            fmt(s.mean),
            s.count,
            fmt(s.q1),
            fmt(s.q3),
            y(s.q1),
            y(s.q3),
            y(s.mean)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radar_escapes_labels_and_places_values_on_the_scale() {
        let svg = radar(
            "Scores <b>",
            &["A & B".into(), "C".into(), "D".into()],
            &[Some(5.0), Some(1.0), None],
            1.0,
            5.0,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("A &amp; B") && svg.contains("Scores &lt;b&gt;"));
        assert!(!svg.contains("style="), "inline styles break the CSP");
        // The first value is the maximum: its marker sits on the outer ring straight up.
        assert!(svg.contains("cx=\"300.0\" cy=\"80.0\""), "{svg}");
        assert!(svg.contains("D: no score"));
    }
}

#[cfg(test)]
mod box_plot_tests {
    use super::*;
    use crate::domain::stats::summarise;

    #[test]
    fn box_plot_draws_quartiles_on_the_scale_and_escapes() {
        let rows = [
            BoxRow {
                label: "Cyber <security>".into(),
                stats: summarise(&[1.0, 2.0, 3.0, 4.0, 5.0]),
                marker: Some(5.0),
            },
            BoxRow {
                label: "Empty".into(),
                stats: None,
                marker: None,
            },
        ];
        let svg = box_plot("peers", "Peers & us", &rows, 1.0, 5.0, "This organisation");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("Cyber &lt;security&gt;") && svg.contains("Peers &amp; us"));
        assert!(!svg.contains("style="), "inline styles break the CSP");
        // Quartiles 2 and 4 on 1..5 over x 262..660: 361.5 and 560.5; median 3 at 461.0.
        assert!(
            svg.contains("<rect class=\"dma-chart__box\" x=\"361.5\""),
            "{svg}"
        );
        assert!(svg.contains("x1=\"461.0\""), "{svg}");
        // The marker sits at the top of the scale.
        assert!(svg.contains("cx=\"660.0\""), "{svg}");
        assert!(svg.contains("n=5") && svg.contains("no scores"));
    }
}

#[cfg(test)]
mod trend_line_tests {
    use super::*;
    use crate::domain::stats::summarise;

    fn point(label: &str, values: &[f64]) -> TrendPoint {
        TrendPoint {
            label: label.into(),
            stats: summarise(values),
        }
    }

    #[test]
    fn trend_lines_mark_changes_that_are_not_comparable() {
        let points = [
            point("2023/24", &[1.0, 2.0, 3.0]),
            point("2024/25", &[5.0]),
            point("2025/26", &[3.0]),
            point("2026/27 <b>", &[]),
        ];
        let joins = [Join::Comparable, Join::NotComparable, Join::Comparable];
        let svg = trend_line("t", "Cyber & more", &points, &joins, 1.0, 5.0);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("style="), "inline styles break the CSP");
        assert!(svg.contains("Cyber &amp; more") && svg.contains("2026/27 &lt;b&gt;"));
        // Means 2, 5, 3 on 1..5 over y 142..14: 110.0, 14.0 and 78.0; the first point at
        // x 50, the others 68 apart.
        assert!(svg.contains("cx=\"50.0\" cy=\"110.0\""), "{svg}");
        assert!(svg.contains("cx=\"118.0\" cy=\"14.0\"") && svg.contains("cy=\"78.0\""));
        assert_eq!(svg.matches("<line class=\"dma-chart__series\"").count(), 1);
        assert_eq!(svg.matches("<line class=\"dma-chart__peer\"").count(), 1);
        assert!(
            svg.contains(">none</text>"),
            "a cycle without figures says so"
        );
        let hidden = trend_line(
            "t",
            "x",
            &points,
            &[Join::Comparable, Join::Hidden],
            1.0,
            5.0,
        );
        assert_eq!(hidden.matches("<line class=\"dma-chart__peer\"").count(), 0);
        assert_eq!(
            hidden.matches("<line class=\"dma-chart__series\"").count(),
            1
        );
    }
}
