//! The dashboard's live charts: CPU and memory, actions and their duration, queue depths, and
//! errors, each over a [`TimeWindow`] (the last minute live, or a stored range).

use super::frame::{self, Axes, Rgb};
use super::scale::{self, count_label, duration_label, fixed, tick_step, value_ticks};
use super::series::{self, latest_note, max_step, typical_step, OneSeries, Shape};
use super::time::TimeWindow;

/// Fraction of its time slot a queue bar pair fills (the rest is the gap between pairs).
const BAR_FILL: f64 = 0.9;
/// Most bar pairs a queue chart draws; denser samples are merged (largest depth wins).
const MAX_BARS: usize = 120;

/// CPU and memory use as two lines on a 0–100 % scale over `window`.
///
/// `points` are `(at_ms, cpu_pct, memory_pct)`: Unix milliseconds and percentages. Points
/// outside the window are left out, values are clamped into 0..=100, a NaN or infinite value
/// leaves a gap, and so does a pause much longer than the usual sample spacing.
pub fn cpu_memory_chart(points: &[(u64, f32, f32)], window: TimeWindow) -> String {
    let picked = window.select(points, |p| p.0);
    let gap = max_step(typical_step(picked.iter().map(|p| p.0)));
    // Non-finite stays non-finite (a gap); `f64::min` alone would turn NaN and +inf into 100.
    let pct = |v: f32| if v.is_finite() { f64::from(v).min(100.0) } else { f64::NAN };
    let cpu = series::runs(&window, picked.iter().map(|(x, p)| (*x, pct(p.1))), gap);
    let memory = series::runs(&window, picked.iter().map(|(x, p)| (*x, pct(p.2))), gap);
    let label = format!(
        "CPU and memory use {}{}",
        window.describe(),
        latest_note(&[
            series::latest(&cpu).map(|v| format!("CPU {} %", fixed(v, 0))),
            series::latest(&memory).map(|v| format!("memory {} %", fixed(v, 0))),
        ])
    );
    frame::render_over(&window, false, &label, |svg| {
        let (x_ticks, x_label) = window.axis();
        let axes = Axes {
            x_range: -window.secs()..0.0,
            x_ticks,
            x_label: &x_label,
            y_ticks: vec![0.0, 25.0, 50.0, 75.0, 100.0],
            y_label: &|v| format!("{}%", fixed(*v, 0)),
            right_axis: false,
        };
        let plot = frame::build(svg, &axes);
        series::draw_lines(svg, &cpu, frame::CPU, |p| plot.at(p));
        series::draw_lines(svg, &memory, frame::MEMORY, |p| plot.at(p));
        if cpu.is_empty() && memory.is_empty() {
            frame::draw_no_data(svg, &plot);
        }
        frame::draw_legend(svg, &[("CPU %", frame::CPU), ("Memory %", frame::MEMORY)]);
    })
}

/// Actions per minute (left axis) and their average duration in milliseconds (right axis, a
/// secondary scale) over `window`.
///
/// `points` are `(at_ms, actions_per_min, avg_duration_ms)`; same filtering as
/// [`cpu_memory_chart`], and values are clamped into `0..=1e15`.
pub fn action_chart(points: &[(u64, f64, f64)], window: TimeWindow) -> String {
    let picked = window.select(points, |p| p.0);
    let gap = max_step(typical_step(picked.iter().map(|p| p.0)));
    let rate = series::runs(&window, picked.iter().map(|(x, p)| (*x, p.1)), gap);
    let duration = series::runs(&window, picked.iter().map(|(x, p)| (*x, p.2)), gap);
    let label = format!(
        "Actions per minute and average action duration {}{}",
        window.describe(),
        latest_note(&[
            series::latest(&rate).map(|v| format!("{} actions/min", scale::trim(v, 1))),
            series::latest(&duration).map(|v| format!("{} ms average", scale::trim(v, 1))),
        ])
    );
    frame::render_over(&window, true, &label, |svg| {
        let (x_ticks, x_label) = window.axis();
        let rate_ticks = value_ticks(series::max_of(&rate), 4.0, false);
        let rate_step = tick_step(&rate_ticks);
        let intervals = rate_ticks.len().saturating_sub(1);
        let ms_ticks = scale::aligned_ticks(series::max_of(&duration), 4.0, intervals);
        let ms_step = tick_step(&ms_ticks);
        let axes = Axes {
            x_range: -window.secs()..0.0,
            x_ticks,
            x_label: &x_label,
            y_ticks: rate_ticks,
            y_label: &|v| count_label(*v, rate_step),
            right_axis: true,
        };
        let plot = frame::build(svg, &axes);
        let plot = plot.with_secondary(&ms_ticks);
        frame::draw_right_axis(svg, &plot, &|v| duration_label(*v, ms_step));
        series::draw_lines(svg, &rate, frame::ACTIONS, |p| plot.at(p));
        series::draw_lines(svg, &duration, frame::DURATION, |p| plot.at_secondary(p));
        if rate.is_empty() && duration.is_empty() {
            frame::draw_no_data(svg, &plot);
        }
        frame::draw_legend(
            svg,
            &[("Actions/min (left)", frame::ACTIONS), ("Avg duration (right)", frame::DURATION)],
        );
    })
}

/// Queue depths as bars, action queue and event queue side by side in each sample's time slot,
/// over `window`.
///
/// `points` are `(at_ms, action_queue_depth, event_queue_depth)`; a bar ends at its sample's
/// time and is as wide as the usual sample spacing allows. Non-finite depths draw no bar,
/// values are clamped into `0..=1e15`.
pub fn queue_chart(points: &[(u64, f64, f64)], window: TimeWindow) -> String {
    let picked = window.select(points, |p| p.0);
    let mut slot_secs = typical_step(picked.iter().map(|p| p.0))
        .unwrap_or(1.0)
        .clamp(window.secs() / 600.0, window.secs() / 10.0);
    let mut depths: Vec<(f64, Option<f64>, Option<f64>)> =
        picked.iter().map(|(x, p)| (*x, scale::clean(p.1), scale::clean(p.2))).collect();
    if depths.len() > MAX_BARS {
        slot_secs = window.secs() / MAX_BARS as f64;
        depths = merge_slots(&depths, slot_secs);
    }
    let actions: Vec<(f64, Option<f64>)> = depths.iter().map(|(x, a, _)| (*x, *a)).collect();
    let events: Vec<(f64, Option<f64>)> = depths.iter().map(|(x, _, e)| (*x, *e)).collect();
    let latest_of = |s: &[(f64, Option<f64>)]| s.iter().rev().find_map(|(_, v)| *v);
    let max = actions.iter().chain(&events).filter_map(|(_, v)| *v).fold(0.0, f64::max);
    let has_data = actions.iter().chain(&events).any(|(_, v)| v.is_some());
    let label = format!(
        "Action and event queue depths {}{}",
        window.describe(),
        latest_note(&[
            latest_of(&actions).map(|v| format!("{} actions queued", scale::trim(v, 1))),
            latest_of(&events).map(|v| format!("{} events queued", scale::trim(v, 1))),
        ])
    );
    frame::render_over(&window, false, &label, |svg| {
        let (x_ticks, x_label) = window.axis();
        let y_ticks = value_ticks(max, 4.0, false);
        let y_step = tick_step(&y_ticks);
        let axes = Axes {
            x_range: -window.secs()..0.0,
            x_ticks,
            x_label: &x_label,
            y_ticks,
            y_label: &|v| count_label(*v, y_step),
            right_axis: false,
        };
        let plot = frame::build(svg, &axes);
        let half = slot_secs * BAR_FILL / 2.0;
        // Bars end at their sample's time; the axis clamps the oldest one to the left edge.
        let mut bars = |series: &[(f64, Option<f64>)], offset: f64, color: Rgb| {
            for (x, v) in series.iter().filter_map(|(x, v)| v.filter(|v| *v > 0.0).map(|v| (*x, v)))
            {
                svg.rect(plot.at((x - offset - half, 0.0)), plot.at((x - offset, v)), color);
            }
        };
        bars(&actions, half, frame::ACTION_QUEUE);
        bars(&events, 0.0, frame::EVENT_QUEUE);
        if !has_data {
            frame::draw_no_data(svg, &plot);
        }
        frame::draw_legend(
            svg,
            &[("Action queue", frame::ACTION_QUEUE), ("Event queue", frame::EVENT_QUEUE)],
        );
    })
}

/// Merges samples (x ascending) into slots `slot_secs` wide: each slot is drawn at its last
/// sample's time with the largest depths seen in it.
fn merge_slots(
    depths: &[(f64, Option<f64>, Option<f64>)],
    slot_secs: f64,
) -> Vec<(f64, Option<f64>, Option<f64>)> {
    let larger = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    depths
        .chunk_by(|a, b| (a.0 / slot_secs).ceil() == (b.0 / slot_secs).ceil())
        .filter_map(|slot| {
            let x = slot.last()?.0;
            let (a, e) =
                slot.iter().fold((None, None), |(a, e), p| (larger(a, p.1), larger(e, p.2)));
            Some((x, a, e))
        })
        .collect()
}

/// Errors as a filled area over `window`.
///
/// `points` are `(at_ms, errors)`, e.g. failed actions in the minute before each sample.
pub fn errors_chart(points: &[(u64, u64)], window: TimeWindow) -> String {
    let picked = window.select(points, |p| p.0);
    let gap = max_step(typical_step(picked.iter().map(|p| p.0)));
    let runs = series::runs(&window, picked.iter().map(|(x, p)| (*x, p.1 as f64)), gap);
    let label = format!(
        "Errors {}{}",
        window.describe(),
        latest_note(&[series::latest(&runs).map(|v| format!("{} errors", fixed(v, 0)))])
    );
    let chart = OneSeries {
        label: &label,
        legend: "Errors",
        color: frame::ERRORS,
        shape: Shape::Areas,
        min_top: 4.0,
        integers: true,
        max_top: f64::INFINITY,
        y_suffix: "",
    };
    series::one_series_chart(&window, &runs, &chart)
}
