//! The Operations detail view's charts: latency quantiles over time and the latency histogram.

use super::frame::{self, Axes};
use super::scale::{self, count_label, duration_label, short_duration, tick_step, value_ticks};
use super::series::{self, latest_note, OneSeries, Shape};
use super::time::TimeWindow;
use crate::model::ops::{HistogramBin, LatencyPoint};

/// Most x labels on the histogram's axis.
const MAX_BIN_LABELS: usize = 6;
/// Share of its slot a histogram bar fills.
const BAR_FILL: f64 = 0.84;

/// p50, p95 and p99 latency as three lines on a linear millisecond axis over `window`.
///
/// Each point is drawn at its bucket's start (`at_ms`). Buckets with no neighbour within
/// 1.5 bucket widths are not joined (operations called rarely show as dots). NaN or infinite
/// quantiles are skipped; values are clamped into `0..=1e15` ms.
pub fn latency_over_time_chart(points: &[LatencyPoint], window: TimeWindow) -> String {
    let line = |q: fn(&LatencyPoint) -> f64| bucket_runs(points, &window, |p, _| q(p));
    let lines = [
        ("p50", line(|p| p.p50_ms), frame::P50),
        ("p95", line(|p| p.p95_ms), frame::P95),
        ("p99", line(|p| p.p99_ms), frame::P99),
    ];
    let latest: Vec<Option<String>> = lines
        .iter()
        .map(|(name, runs, _)| {
            series::latest(runs).map(|v| format!("{name} {}", short_duration(v)))
        })
        .collect();
    let label = format!("Latency p50, p95 and p99 {}{}", window.describe(), latest_note(&latest));
    frame::render_over(&window, false, &label, |svg| {
        let (x_ticks, x_label) = window.axis();
        let max = lines.iter().map(|(_, runs, _)| series::max_of(runs)).fold(0.0, f64::max);
        let y_ticks = value_ticks(max, 1.0, false);
        let y_step = tick_step(&y_ticks);
        let axes = Axes {
            x_range: -window.secs()..0.0,
            x_ticks,
            x_label: &x_label,
            y_ticks,
            y_label: &|v| duration_label(*v, y_step),
            right_axis: false,
        };
        let plot = frame::build(svg, &axes);
        for (_, runs, color) in &lines {
            series::draw_lines(svg, runs, *color, |p| plot.at(p));
        }
        if lines.iter().all(|(_, runs, _)| runs.is_empty()) {
            frame::draw_no_data(svg, &plot);
        }
        frame::draw_legend(svg, &[("p50", frame::P50), ("p95", frame::P95), ("p99", frame::P99)]);
    })
}

/// A bar per histogram bin, in the order given, each the same width (the server's bins are
/// log-spaced, so this reads as a log latency axis). X labels are bin edges ("1.2ms", "3s");
/// the y axis counts samples. Bins with a non-finite edge keep their bar and label "?".
pub fn latency_histogram_chart(bins: &[HistogramBin]) -> String {
    let total: u64 = bins.iter().fold(0, |sum, b| sum.saturating_add(b.count));
    let label = match (bins.first(), bins.last()) {
        (Some(first), Some(last)) if total > 0 => format!(
            "Latency histogram: {total} samples from {} to {} in {} bins",
            short_duration(first.lower_ms),
            short_duration(last.upper_ms),
            bins.len()
        ),
        _ => "Latency histogram; no data yet".to_owned(),
    };
    let n = bins.len();
    // Edge i is the lower bound of bin i; edge n is the upper bound of the last bin.
    let edge = move |i: usize| -> Option<f64> {
        match i.checked_sub(n) {
            Some(0) => bins.last().map(|b| b.upper_ms),
            Some(_) => None,
            None => bins.get(i).map(|b| b.lower_ms),
        }
    };
    let single_value = matches!(bins, [b] if b.lower_ms == b.upper_ms);
    frame::render(&label, |svg| {
        let max = bins.iter().map(|b| b.count as f64).fold(0.0, f64::max);
        let y_ticks = value_ticks(max, 4.0, true);
        let y_step = tick_step(&y_ticks);
        let x_ticks: Vec<f64> = if n == 0 {
            Vec::new()
        } else if single_value {
            vec![0.5]
        } else {
            let every = n.div_ceil(MAX_BIN_LABELS).max(1);
            (0..=n).step_by(every).map(|i| i as f64).collect()
        };
        let x_label = |x: &f64| {
            if single_value {
                return bins.first().map(|b| short_duration(b.lower_ms)).unwrap_or_default();
            }
            let i = x.round();
            if (x - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            edge(i as usize).map(short_duration).unwrap_or_default()
        };
        let axes = Axes {
            x_range: 0.0..(n.max(1) as f64),
            x_ticks,
            x_label: &x_label,
            y_ticks,
            y_label: &|v| count_label(*v, y_step),
            right_axis: false,
        };
        let plot = frame::build(svg, &axes);
        let pad = (1.0 - BAR_FILL) / 2.0;
        for (i, b) in bins.iter().enumerate().filter(|(_, b)| b.count > 0) {
            let count = (b.count as f64).min(scale::MAX_VALUE);
            let x = i as f64;
            svg.rect(plot.at((x + pad, 0.0)), plot.at((x + 1.0 - pad, count)), frame::SAMPLES);
        }
        if total == 0 {
            frame::draw_no_data(svg, &plot);
        }
        frame::draw_legend(svg, &[("Samples per latency bin", frame::SAMPLES)]);
    })
}

/// Throughput: samples per minute in each bucket of `points`, as a line over `window`.
/// Buckets with no neighbour within 1.5 bucket widths are not joined.
pub fn throughput_chart(points: &[LatencyPoint], window: TimeWindow) -> String {
    let runs = bucket_runs(points, &window, |p, minutes| p.count as f64 / minutes);
    let label = format!(
        "Throughput in samples per minute {}{}",
        window.describe(),
        latest_note(&[series::latest(&runs).map(|v| format!("{}/min", scale::trim(v, 1)))])
    );
    let chart = OneSeries {
        label: &label,
        legend: "Samples/min",
        color: frame::ACTIONS,
        shape: Shape::Lines,
        min_top: 4.0,
        integers: false,
        max_top: f64::INFINITY,
        y_suffix: "",
    };
    series::one_series_chart(&window, &runs, &chart)
}

/// Error rate: the share of failed samples in each bucket of `points` (0–100 %), as a filled
/// area over `window`. Buckets without samples are gaps, not zeros.
pub fn error_rate_chart(points: &[LatencyPoint], window: TimeWindow) -> String {
    let runs = bucket_runs(points, &window, |p, _| 100.0 * p.errors as f64 / p.count as f64);
    let label = format!(
        "Error rate in percent of samples {}{}",
        window.describe(),
        latest_note(&[series::latest(&runs).map(|v| format!("{} % failed", scale::trim(v, 1)))])
    );
    let chart = OneSeries {
        label: &label,
        legend: "Failed %",
        color: frame::ERRORS,
        shape: Shape::Areas,
        min_top: 1.0,
        integers: false,
        max_top: 100.0,
        y_suffix: "%",
    };
    series::one_series_chart(&window, &runs, &chart)
}

/// One value per non-empty bucket inside `window` (`value(point, bucket_minutes)`), as runs
/// broken where buckets are missing.
fn bucket_runs(
    points: &[LatencyPoint],
    window: &TimeWindow,
    value: impl Fn(&LatencyPoint, f64) -> f64,
) -> Vec<Vec<(f64, f64)>> {
    let picked =
        window.select(&points.iter().filter(|p| p.count > 0).collect::<Vec<_>>(), |p| p.at_ms);
    let bucket_secs = picked.iter().map(|(_, p)| p.bucket_secs).max().unwrap_or(1).max(1);
    let minutes = |p: &LatencyPoint| p.bucket_secs.max(1) as f64 / 60.0;
    series::runs(
        window,
        picked.iter().map(|(x, p)| (*x, value(p, minutes(p)))),
        bucket_secs as f64 * 1.5,
    )
}
