//! Alert bands: when alerts fired, laid over a time chart as shares of its width. The chart's
//! `<svg>` states its span and where it is drawn (see `frame::render_over`), so the bands are
//! placed from the markup itself and follow whatever span the chart shows.

use super::frame::WIDTH_PX;
use super::time::rfc3339_utc;
use crate::model::alerts::{AlertSpan, Severity};

/// Narrowest band drawn, as a percentage of the chart's width (a one-second alert on a 30-day
/// chart stays visible).
const MIN_WIDTH_PCT: f64 = 0.4;

/// One alert span placed over a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    /// Left edge and width, in percent of the chart's width.
    pub left_pct: f64,
    pub width_pct: f64,
    pub severity: Severity,
    pub rule: String,
    /// What it was, in words (the band's tooltip).
    pub title: String,
}

/// The span (`data-from-ms`, `data-to-ms`) and where its ends are drawn (`data-plot-x0`,
/// `data-plot-x1`) that a time chart's `<svg>` states (whole numbers, read as such: a float
/// parser would add its tables to the bundle's first part).
fn geometry(svg: &str) -> Option<(f64, f64, f64, f64)> {
    let attr = |name: &str| -> Option<f64> {
        let key = format!(" {name}=\"");
        let start = svg.find(&key)? + key.len();
        let end = start + svg[start..].find('"')?;
        svg[start..end].parse::<u64>().ok().map(|v| v as f64)
    };
    let (from, to) = (attr("data-from-ms")?, attr("data-to-ms")?);
    let (x0, x1) = (attr("data-plot-x0")?, attr("data-plot-x1")?);
    (to > from && x1 > x0).then_some((from, to, x0, x1))
}

/// The bands of `spans` over the time chart `svg`, clipped to its span; none for a chart that
/// states no span. A span without an end runs to the chart's end.
pub fn alert_bands(svg: &str, spans: &[AlertSpan]) -> Vec<Band> {
    let Some((from, to, x0, x1)) = geometry(svg) else { return Vec::new() };
    let width = f64::from(WIDTH_PX);
    let pct =
        |at: f64| (x0 + (at.clamp(from, to) - from) / (to - from) * (x1 - x0)) / width * 100.0;
    spans
        .iter()
        .filter(|s| (s.from_ms as f64) < to && s.to_ms.is_none_or(|end| end as f64 > from))
        .map(|s| {
            let left = pct(s.from_ms as f64);
            let right = pct(s.to_ms.map_or(to, |end| end as f64));
            let until = s.to_ms.map_or_else(
                || "still firing".to_string(),
                |end| format!("until {}", rfc3339_utc(end)),
            );
            Band {
                left_pct: left,
                width_pct: (right - left).max(MIN_WIDTH_PCT),
                severity: s.severity,
                rule: s.rule.clone(),
                title: format!(
                    "{} ({}) on {}: from {} {until}",
                    s.rule,
                    s.severity.as_str(),
                    s.series,
                    rfc3339_utc(s.from_ms)
                ),
            }
        })
        .collect()
}
