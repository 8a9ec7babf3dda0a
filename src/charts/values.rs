//! A counter's, gauge's or set's stored history: its step values as a line over the window,
//! broken where steps have no stored minute.

use super::frame;
use super::scale;
use super::series::{self, latest_note, OneSeries, Shape};
use super::time::TimeWindow;
use crate::model::values::{ValueKind, ValueSeries};

/// The series' values over `window` (points outside it are left out). Values are drawn from 0
/// up (negative gauge values at 0; the description gives the real latest value).
pub fn value_chart(history: &ValueSeries, window: TimeWindow) -> String {
    let picked = window.select(&history.points, |p| p.at_ms);
    let step_secs = history.step_ms.max(1) as f64 / 1000.0;
    let runs = series::runs(&window, picked.iter().map(|(x, p)| (*x, p.value)), step_secs * 1.5);
    let latest = history.points.iter().rev().map(|p| p.value).find(|v| v.is_finite());
    let unit = match history.kind {
        ValueKind::Counter => "/min",
        ValueKind::Gauge => "",
        ValueKind::Set => " unique",
    };
    let label = format!(
        "{} {} ({}) {}{}",
        history.kind.title(),
        history.name,
        history.kind.meaning(),
        window.describe(),
        latest_note(&[latest.map(|v| format!("{}{unit}", scale::trim(v, 2)))])
    );
    let chart = OneSeries {
        label: &label,
        legend: history.kind.meaning(),
        color: frame::ACTIONS,
        shape: Shape::Lines,
        min_top: 1.0,
        integers: false,
        max_top: f64::INFINITY,
        y_suffix: "",
    };
    series::one_series_chart(&window, &runs, &chart)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::values::ValuePoint;

    #[test]
    fn a_value_chart_describes_its_latest_value_and_breaks_at_gaps() {
        let m = 60_000;
        let now = 100 * m;
        let point = |at_ms, value| ValuePoint { at_ms, value, min: value, max: value };
        let history = ValueSeries {
            kind: ValueKind::Gauge,
            name: "queue.depth".into(),
            from_ms: now - 60 * m,
            to_ms: now,
            step_ms: m,
            points: vec![
                point(now - 50 * m, 3.0),
                point(now - 49 * m, 4.0),
                point(now - 10 * m, 7.5),
            ],
        };
        let svg = value_chart(&history, TimeWindow::last(60 * m, now));
        assert!(svg.contains("Gauge queue.depth (last value)"), "{svg}");
        assert!(svg.contains("latest 7.5"), "{svg}");
        // Two runs: a line for the first two minutes and a dot for the last.
        let line = r##"<polyline fill="none" stroke="#5ED38B""##;
        assert_eq!(svg.matches(line).count(), 1, "{svg}");
        assert_eq!(svg.matches(r##"<circle"##).count(), 1, "{svg}");
        let empty = ValueSeries { points: vec![], ..history };
        assert!(value_chart(&empty, TimeWindow::last(60 * m, now)).contains(frame::NO_DATA_TEXT));
    }
}
