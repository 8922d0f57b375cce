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
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"dma-chart dma-chart--radar\" viewBox=\"0 0 600 460\" role=\"img\" aria-labelledby=\"radar-title\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"radar-title\">{}</title>",
        escape(title)
    );
    // Rings at each whole step of the scale.
    let steps = (span.round() as usize).clamp(1, 10);
    for s in 1..=steps {
        let frac = s as f64 / steps as f64;
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
        let _ = write!(svg, "<text class=\"dma-chart__label dma-chart__label--secondary\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"start\">{}</text>", lx + 4.0, ly + 4.0, escape(&trim_number(min + span * frac)));
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
    let id = escape(id);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"dma-chart dma-chart--wide dma-chart--box\" viewBox=\"0 0 720 {height:.0}\" role=\"img\" aria-labelledby=\"{id}-title\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-title\">{}</title>",
        escape(title)
    );
    let steps = (span.round() as usize).clamp(1, 10);
    for s in 0..=steps {
        let v = min + span * s as f64 / steps as f64;
        let gx = x(v);
        let _ = write!(
            svg,
            "<line class=\"dma-chart__grid\" x1=\"{gx:.1}\" y1=\"{:.1}\" x2=\"{gx:.1}\" y2=\"{:.1}\"/><text class=\"dma-chart__label dma-chart__label--secondary\" x=\"{gx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            top - 6.0,
            height - 8.0,
            top - 12.0,
            escape(&trim_number(v))
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
