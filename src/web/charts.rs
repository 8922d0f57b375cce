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
