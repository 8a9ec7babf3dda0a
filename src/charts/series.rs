//! Turning timestamped samples into plottable pieces: the time window, x positions in seconds
//! before now, line segments broken at gaps and at missing values, the series drawers, and
//! the wording of accessible descriptions.

use plotters::prelude::*;

use super::frame::{Chart, DrawResult};
use super::scale::{self, clean};

/// Longest window a chart accepts (a week); longer requests are cut to it.
const MAX_WINDOW_MS: u64 = 7 * 24 * 3600 * 1000;
/// Shortest window a chart accepts.
const MIN_WINDOW_MS: u64 = 1000;
/// Time columns per window when thinning long series: one per two pixels of plot width.
const COLUMNS: f64 = 270.0;
/// Consecutive points further apart than this many typical intervals are not joined.
const GAP_FACTOR: f64 = 2.5;
/// Radius of the dot drawn for a point with no neighbour to join.
pub(crate) const DOT_RADIUS_PX: u32 = 3;
/// Stroke width of series lines.
pub(crate) const LINE_PX: u32 = 2;

/// The x axis of a live chart: `window_ms` ending at `now_ms`, in seconds relative to now.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeWindow {
    start_ms: u64,
    now_ms: u64,
    /// Window length in seconds (the x axis runs from `-secs` to 0).
    pub secs: f64,
}

impl TimeWindow {
    /// `window_ms` is clamped to 1 s ..= 7 days.
    pub(crate) fn new(window_ms: u64, now_ms: u64) -> Self {
        let window_ms = window_ms.clamp(MIN_WINDOW_MS, MAX_WINDOW_MS);
        TimeWindow {
            start_ms: now_ms.saturating_sub(window_ms),
            now_ms,
            secs: window_ms as f64 / 1000.0,
        }
    }

    /// Seconds before now (<= 0) of `at_ms`, or `None` outside the window (or in the future).
    pub(crate) fn x_of(&self, at_ms: u64) -> Option<f64> {
        (self.start_ms..=self.now_ms)
            .contains(&at_ms)
            .then(|| -((self.now_ms - at_ms) as f64) / 1000.0)
    }

    /// Width in seconds of one thinning column (see [`thin`]).
    pub(crate) fn column_secs(&self) -> f64 {
        self.secs / COLUMNS
    }

    /// The points inside the window as `(x_secs, point)`, oldest first.
    pub(crate) fn select<T: Copy>(&self, points: &[T], at_ms: impl Fn(&T) -> u64) -> Vec<(f64, T)> {
        let mut chosen: Vec<(f64, T)> =
            points.iter().filter_map(|p| self.x_of(at_ms(p)).map(|x| (x, *p))).collect();
        chosen.sort_by(|a, b| a.0.total_cmp(&b.0));
        chosen
    }
}

/// The usual spacing of `xs` (ascending): the median positive difference, if any.
pub(crate) fn typical_step(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let xs: Vec<f64> = xs.collect();
    let mut steps: Vec<f64> =
        xs.windows(2).map(|w| w[1] - w[0]).filter(|d| d.is_finite() && *d > 0.0).collect();
    steps.sort_by(f64::total_cmp);
    steps.get(steps.len() / 2).copied()
}

/// Splits `(x, value)` pairs (x ascending) into runs to draw as one line each: a non-finite
/// value ends a run, and so does a step in x larger than `max_step` (a gap in the data).
/// Values are cleaned with [`scale::clean`].
pub(crate) fn segments(
    points: impl Iterator<Item = (f64, f64)>,
    max_step: f64,
) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for (x, value) in points {
        let Some(value) = scale::clean(value) else {
            if !current.is_empty() {
                runs.push(std::mem::take(&mut current));
            }
            continue;
        };
        if current.last().is_some_and(|(last_x, _)| x - last_x > max_step) {
            runs.push(std::mem::take(&mut current));
        }
        current.push((x, value));
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// Thins each run to at most two vertices (its lowest and highest, in time order) per column
/// `column` wide in x, so a long history costs a bounded number of vertices; runs with points
/// further apart than `column` are unchanged.
pub(crate) fn thin(runs: Vec<Vec<(f64, f64)>>, column: f64) -> Vec<Vec<(f64, f64)>> {
    if !(column.is_finite() && column > 0.0) {
        return runs;
    }
    runs.into_iter()
        .map(|run| {
            let mut out: Vec<(f64, f64)> = Vec::with_capacity(run.len());
            for group in run.chunk_by(|a, b| (a.0 / column).ceil() == (b.0 / column).ceil()) {
                match group {
                    [] => {}
                    [one] => out.push(*one),
                    [..] => {
                        let low = group.iter().min_by(|a, b| a.1.total_cmp(&b.1));
                        let high = group.iter().max_by(|a, b| a.1.total_cmp(&b.1));
                        if let (Some(low), Some(high)) = (low, high) {
                            let (first, second) =
                                if low.0 <= high.0 { (low, high) } else { (high, low) };
                            out.push(*first);
                            if second != first {
                                out.push(*second);
                            }
                        }
                    }
                }
            }
            out
        })
        .collect()
}

/// The lines to draw for `(x, value)` pairs (x ascending) in `window`: [`segments`] broken at
/// gaps wider than `max_step`, then [`thin`]ned to the window's columns.
pub(crate) fn runs(
    window: &TimeWindow,
    points: impl Iterator<Item = (f64, f64)>,
    max_step: f64,
) -> Vec<Vec<(f64, f64)>> {
    thin(segments(points, max_step), window.column_secs())
}

/// The gap threshold for points usually `step` apart (no gaps when the step is unknown).
pub(crate) fn max_step(step: Option<f64>) -> f64 {
    step.map_or(f64::INFINITY, |s| s * GAP_FACTOR)
}

/// Largest finite value of a set of runs (0 when empty).
pub(crate) fn max_of<'r>(runs: impl IntoIterator<Item = &'r Vec<(f64, f64)>>) -> f64 {
    runs.into_iter().flatten().map(|(_, v)| *v).fold(0.0, f64::max)
}

/// Draws each run as a polyline, or as a dot when it has a single point.
pub(crate) fn draw_lines(
    chart: &mut Chart<'_, '_>,
    runs: &[Vec<(f64, f64)>],
    color: RGBColor,
) -> DrawResult {
    for run in runs {
        match run.as_slice() {
            [one] => {
                chart.draw_series(std::iter::once(Circle::new(
                    *one,
                    DOT_RADIUS_PX,
                    color.filled(),
                )))?;
            }
            _ => {
                chart.draw_series(LineSeries::new(
                    run.iter().copied(),
                    color.stroke_width(LINE_PX),
                ))?;
            }
        }
    }
    Ok(())
}

/// The latest finite value of a series, cleaned, for accessible descriptions.
pub(crate) fn latest(runs: &[Vec<(f64, f64)>]) -> Option<f64> {
    runs.last().and_then(|run| run.last()).map(|(_, v)| *v).and_then(clean)
}

/// `"; latest …"` from the known parts, or `"; no data yet"`, for descriptions.
pub(crate) fn latest_note(parts: &[Option<String>]) -> String {
    let known: Vec<&str> = parts.iter().flatten().map(String::as_str).collect();
    if known.is_empty() {
        "; no data yet".to_owned()
    } else {
        format!("; latest {}", known.join(", "))
    }
}

/// "60 s", "5 min", "2 h" for descriptions.
pub(crate) fn time_span(secs: f64) -> String {
    if secs >= 3600.0 && secs % 3600.0 == 0.0 {
        format!("{} h", secs / 3600.0)
    } else if secs >= 120.0 && secs % 60.0 == 0.0 {
        format!("{} min", secs / 60.0)
    } else {
        format!("{} s", scale::trim(secs, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_only_points_between_start_and_now() {
        let w = TimeWindow::new(60_000, 100_000);
        assert_eq!(w.x_of(100_000), Some(0.0));
        assert_eq!(w.x_of(40_000), Some(-60.0));
        assert_eq!(w.x_of(39_999), None);
        assert_eq!(w.x_of(100_001), None);
        let early = TimeWindow::new(60_000, 5_000);
        assert_eq!((early.x_of(0), early.secs), (Some(-5.0), 60.0));
        let picked = w.select(&[(99_000u64, 1), (20_000, 2), (98_000, 3)], |p| p.0);
        assert_eq!(picked, vec![(-2.0, (98_000, 3)), (-1.0, (99_000, 1))]);
    }

    #[test]
    fn segments_break_at_gaps_and_missing_values() {
        let pts = [(0.0, 1.0), (1.0, 2.0), (2.0, f64::NAN), (3.0, 4.0), (4.0, 5.0), (9.0, 6.0)];
        let runs = segments(pts.into_iter(), max_step(typical_step(pts.iter().map(|p| p.0))));
        assert_eq!(
            runs,
            vec![vec![(0.0, 1.0), (1.0, 2.0)], vec![(3.0, 4.0), (4.0, 5.0)], vec![(9.0, 6.0)]]
        );
        assert_eq!(segments([(0.0, f64::INFINITY)].into_iter(), 1.0), Vec::<Vec<_>>::new());
        assert_eq!(typical_step([5.0].into_iter()), None);
        let dense =
            vec![(-3.0, 1.0), (-2.9, 5.0), (-2.8, 0.0), (-2.7, 2.0), (-1.5, 3.0), (0.0, 4.0)];
        assert_eq!(
            thin(vec![dense.clone()], 1.0),
            vec![vec![(-3.0, 1.0), (-2.9, 5.0), (-2.8, 0.0), (-1.5, 3.0), (0.0, 4.0)]]
        );
        assert_eq!(thin(vec![dense.clone()], 0.05), vec![dense]);
        assert_eq!(max_of(&runs), 6.0);
        assert_eq!(latest(&runs), Some(6.0));
    }
}
