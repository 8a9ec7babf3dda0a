//! Turning timestamped samples into plottable pieces: the time window, x positions in seconds
//! before now, line segments broken at gaps and at missing values, the series drawers, and
//! the wording of accessible descriptions.

use super::frame::{Plot, Px, Rgb, Svg};
use super::scale::{self, clean};
use super::time::TimeWindow;

/// Consecutive points further apart than this many typical intervals are not joined.
const GAP_FACTOR: f64 = 2.5;
/// Radius of the dot drawn for a point with no neighbour to join.
const DOT_RADIUS_PX: u32 = 3;
/// Opacity of the area under an area series.
const AREA_OPACITY: &str = "0.25";
/// Stroke width of series lines.
const LINE_PX: u32 = 2;

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

/// Draws each run as a polyline, or as a dot when it has a single point; `at` places a point
/// ([`Plot::at`], or [`Plot::at_secondary`] for a right-hand scale).
pub(crate) fn draw_lines(
    svg: &mut Svg,
    runs: &[Vec<(f64, f64)>],
    color: Rgb,
    at: impl Fn((f64, f64)) -> Px,
) {
    for run in runs {
        match run.as_slice() {
            [one] => svg.circle(at(*one), DOT_RADIUS_PX, color),
            _ => svg.polyline(run.iter().map(|p| at(*p)), color, LINE_PX),
        }
    }
}

/// Draws each run as a line with the area under it filled, or as a dot when it has a single
/// point.
pub(crate) fn draw_areas(svg: &mut Svg, plot: &Plot, runs: &[Vec<(f64, f64)>], color: Rgb) {
    for run in runs {
        match run.as_slice() {
            [] => {}
            [one] => svg.circle(plot.at(*one), DOT_RADIUS_PX, color),
            [first, .., last] => {
                let line = run.iter().map(|p| plot.at(*p));
                let base = [plot.at((last.0, 0.0)), plot.at((first.0, 0.0))];
                svg.polygon(line.clone().chain(base), color, AREA_OPACITY);
                svg.polyline(line, color, LINE_PX);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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

/// How [`one_series_chart`] draws its runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Lines,
    Areas,
}

/// The settings of a chart of one series over a time window on a count axis.
pub(crate) struct OneSeries<'a> {
    /// The chart's accessible description.
    pub label: &'a str,
    pub legend: &'a str,
    pub color: Rgb,
    pub shape: Shape,
    /// Lowest top of the y axis, whether its ticks are whole numbers, and its highest top
    /// (100 for a percentage).
    pub min_top: f64,
    pub integers: bool,
    pub max_top: f64,
    /// Written after every y tick (`%` for a percentage).
    pub y_suffix: &'a str,
}

/// One series of `runs` over `window`: time along x, a count (or share) up y, "no data" when
/// there are no runs.
pub(crate) fn one_series_chart(
    window: &TimeWindow,
    runs: &[Vec<(f64, f64)>],
    s: &OneSeries<'_>,
) -> String {
    use super::frame::{self, Axes};
    use super::scale::{count_label, tick_step, value_ticks};
    super::frame::render_over(window, false, s.label, |svg| {
        let (x_ticks, x_label) = window.axis();
        let y_ticks = value_ticks(max_of(runs).min(s.max_top), s.min_top, s.integers);
        let y_step = tick_step(&y_ticks);
        let axes = Axes {
            x_range: -window.secs()..0.0,
            x_ticks,
            x_label: &x_label,
            y_ticks,
            y_label: &|v| format!("{}{}", count_label(*v, y_step), s.y_suffix),
            right_axis: false,
        };
        let plot = frame::build(svg, &axes);
        match s.shape {
            Shape::Lines => draw_lines(svg, runs, s.color, |p| plot.at(p)),
            Shape::Areas => draw_areas(svg, &plot, runs, s.color),
        }
        if runs.is_empty() {
            frame::draw_no_data(svg, &plot);
        }
        frame::draw_legend(svg, &[(s.legend, s.color)]);
    })
}
