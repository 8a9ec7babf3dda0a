//! Tests of the public chart functions: SVG shape, colours, labels, empty and hostile input.

use super::*;
use crate::model::ops::{HistogramBin, LatencyPoint};

const NOW_MS: u64 = 1_700_000_060_000;
const WINDOW_MS: u64 = 60_000;
const SIZE_LIMIT_BYTES: usize = 20 * 1024;

fn at(i: u64) -> u64 {
    NOW_MS - (59 - i) * 1000
}

fn cpu_points() -> Vec<(u64, f32, f32)> {
    (0..60).map(|i| (at(i), (i as f32 * 1.3) % 100.0, 40.0 + i as f32 / 3.0)).collect()
}

fn action_points() -> Vec<(u64, f64, f64)> {
    (0..60).map(|i| (at(i), 100.0 + i as f64, 250.0 + (i as f64 * 7.0) % 90.0)).collect()
}

fn queue_points() -> Vec<(u64, f64, f64)> {
    (0..60).map(|i| (at(i), (i % 7) as f64, (i % 4) as f64)).collect()
}

fn error_points() -> Vec<(u64, u64)> {
    (0..60).map(|i| (at(i), i % 5)).collect()
}

fn latency_points() -> Vec<LatencyPoint> {
    (0..60)
        .map(|i| LatencyPoint {
            at_ms: NOW_MS - 300_000 + i * 5000,
            bucket_secs: 5,
            count: 10,
            errors: i % 3,
            p50_ms: 20.0 + i as f64,
            p95_ms: 80.0 + i as f64,
            p99_ms: 150.0 + 2.0 * i as f64,
        })
        .collect()
}

fn bins() -> Vec<HistogramBin> {
    (0..30)
        .map(|i| HistogramBin {
            lower_ms: 2.0 * 1.26f64.powi(i),
            upper_ms: 2.0 * 1.26f64.powi(i + 1),
            count: [0, 3, 40, 7][i as usize % 4],
        })
        .collect()
}

/// Every chart drawn from typical data, with the colours and texts it must contain.
fn typical_charts() -> Vec<(&'static str, String, Vec<&'static str>, Vec<&'static str>)> {
    vec![
        (
            "cpu_memory",
            cpu_memory_chart(&cpu_points(), TimeWindow::last(WINDOW_MS, NOW_MS)),
            vec!["#60a5fa", "#a78bfa"],
            vec!["CPU %", "Memory %", "-60s", "-30s", "now", "0%", "100%"],
        ),
        (
            "action",
            action_chart(&action_points(), TimeWindow::last(WINDOW_MS, NOW_MS)),
            vec!["#5ed38b", "#fbbf24"],
            vec!["Actions/min (left)", "Avg duration (right)", "-60s", "now", "ms<"],
        ),
        (
            "queue",
            queue_chart(&queue_points(), TimeWindow::last(WINDOW_MS, NOW_MS)),
            vec!["#60a5fa", "#f472b6"],
            vec!["Action queue", "Event queue", "-60s", "now"],
        ),
        (
            "errors",
            errors_chart(&error_points(), TimeWindow::last(WINDOW_MS, NOW_MS)),
            vec!["#f87171"],
            vec!["Errors", "-60s", "now"],
        ),
        (
            "latency_over_time",
            latency_over_time_chart(&latency_points(), TimeWindow::last(300_000, NOW_MS)),
            vec!["#5ed38b", "#fbbf24", "#f87171"],
            vec!["p50", "p95", "p99", "-5m", "now", "ms<"],
        ),
        (
            "throughput",
            throughput_chart(&latency_points(), TimeWindow::last(300_000, NOW_MS)),
            vec!["#5ed38b"],
            vec!["Samples/min", "-5m", "now"],
        ),
        (
            "error_rate",
            error_rate_chart(&latency_points(), TimeWindow::last(300_000, NOW_MS)),
            vec!["#f87171"],
            vec!["Failed %", "-5m", "now", "%<"],
        ),
        (
            "latency_histogram",
            latency_histogram_chart(&bins()),
            vec!["#60a5fa"],
            vec!["Samples per latency bin", ">2ms<"],
        ),
    ]
}

/// Checks that tags nest and close properly and attribute quotes pair up.
fn assert_well_formed(svg: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        assert!(!text.contains('>'), "stray '>' in text {text:?}");
        let close = rest[open..].find('>').map(|c| open + c).expect("unclosed tag");
        let tag = &rest[open + 1..close];
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in <{tag}>");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name.trim()), "mismatched </{name}>");
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().expect("empty tag");
            stack.push(name.to_owned());
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    assert!(rest.trim().is_empty(), "text after the root element: {rest:?}");
}

/// Checks what every chart must be: a responsive, labelled, valid, small `<svg>`.
fn assert_chart_shape(name: &str, svg: &str) {
    assert!(svg.starts_with("<svg "), "{name}: {}", &svg[..svg.len().min(80)]);
    assert!(svg.ends_with("</svg>"), "{name}");
    let root_tag = &svg[..svg.find('>').expect("root tag")];
    assert!(root_tag.contains("viewBox=\"0 0 600 240\""), "{name}: {root_tag}");
    assert!(root_tag.contains("width=\"100%\""), "{name}: {root_tag}");
    assert!(!root_tag.contains("height="), "{name}: {root_tag}");
    assert!(root_tag.contains("role=\"img\""), "{name}: {root_tag}");
    assert!(root_tag.contains("aria-label=\""), "{name}: {root_tag}");
    assert_eq!(svg.matches("<svg").count(), 1, "{name}");
    assert!(!svg.contains("NaN") && !svg.contains("inf"), "{name} has non-finite numbers");
    assert!(svg.len() < SIZE_LIMIT_BYTES, "{name}: {} bytes", svg.len());
    assert_well_formed(svg);
}

fn aria_label(svg: &str) -> &str {
    let start = svg.find("aria-label=\"").expect("aria-label") + "aria-label=\"".len();
    let end = svg[start..].find('"').expect("closing quote");
    &svg[start..start + end]
}

/// Point counts of the polylines stroked in `color` (lowercase `#rrggbb`).
fn polylines(svg: &str, color: &str) -> Vec<usize> {
    let lower = svg.to_ascii_lowercase();
    lower
        .split("<polyline")
        .skip(1)
        .map(|rest| &rest[..rest.find('>').unwrap_or(rest.len())])
        .filter(|tag| tag.contains(&format!("stroke=\"{color}\"")))
        .map(|tag| {
            let points = tag.split("points=\"").nth(1).expect("points");
            let points = &points[..points.find('"').expect("end of points")];
            points.split_whitespace().count()
        })
        .collect()
}

/// Number of `element`s filled with `color`.
fn filled(svg: &str, element: &str, color: &str) -> usize {
    let lower = svg.to_ascii_lowercase();
    lower
        .split(&format!("<{element} "))
        .skip(1)
        .filter(|rest| rest[..rest.find('>').unwrap_or(rest.len())].contains(color))
        .count()
}

#[test]
fn every_chart_is_a_responsive_labelled_svg_with_its_colours_and_texts() {
    for (name, svg, colors, texts) in typical_charts() {
        assert_chart_shape(name, &svg);
        let lower = svg.to_ascii_lowercase();
        for color in colors {
            assert!(lower.contains(color), "{name} lacks {color}");
        }
        for text in texts {
            assert!(svg.contains(text), "{name} lacks {text:?}");
        }
        assert!(!svg.contains(NO_DATA_TEXT), "{name} claims no data");
        assert!(aria_label(&svg).contains("latest") || name == "latency_histogram", "{name}");
    }
}

#[test]
fn line_charts_draw_one_polyline_vertex_per_point() {
    let svg = cpu_memory_chart(&cpu_points(), TimeWindow::last(WINDOW_MS, NOW_MS));
    assert_eq!(polylines(&svg, "#60a5fa"), vec![60]);
    assert_eq!(polylines(&svg, "#a78bfa"), vec![60]);
    let svg = action_chart(&action_points(), TimeWindow::last(WINDOW_MS, NOW_MS));
    assert_eq!(polylines(&svg, "#5ed38b"), vec![60]);
    assert_eq!(polylines(&svg, "#fbbf24"), vec![60]);
    let svg = latency_over_time_chart(&latency_points(), TimeWindow::last(300_000, NOW_MS));
    for color in ["#5ed38b", "#fbbf24", "#f87171"] {
        assert_eq!(polylines(&svg, color), vec![60], "{color}");
    }
    let svg = errors_chart(&error_points(), TimeWindow::last(WINDOW_MS, NOW_MS));
    assert_eq!(polylines(&svg, "#f87171"), vec![60]);
    assert_eq!(filled(&svg, "polygon", "#f87171"), 1);
}

#[test]
fn points_outside_the_window_are_left_out() {
    let mut points = cpu_points();
    points.push((NOW_MS - WINDOW_MS - 1, 50.0, 50.0));
    points.push((NOW_MS + 1, 50.0, 50.0));
    points.reverse();
    let svg = cpu_memory_chart(&points, TimeWindow::last(WINDOW_MS, NOW_MS));
    assert_eq!(polylines(&svg, "#60a5fa"), vec![60]);
    let old: Vec<_> = points.iter().map(|p| (p.0 - 120_000, p.1, p.2)).collect();
    let svg = cpu_memory_chart(&old, TimeWindow::last(WINDOW_MS, NOW_MS));
    assert!(svg.contains(NO_DATA_TEXT));
}

#[test]
fn empty_input_draws_axes_and_no_data_text() {
    let charts = [
        ("cpu_memory", cpu_memory_chart(&[], TimeWindow::last(WINDOW_MS, NOW_MS))),
        ("action", action_chart(&[], TimeWindow::last(WINDOW_MS, NOW_MS))),
        ("queue", queue_chart(&[], TimeWindow::last(WINDOW_MS, NOW_MS))),
        ("errors", errors_chart(&[], TimeWindow::last(WINDOW_MS, NOW_MS))),
        ("latency_over_time", latency_over_time_chart(&[], TimeWindow::last(300_000, NOW_MS))),
        ("latency_histogram", latency_histogram_chart(&[])),
    ];
    for (name, svg) in charts {
        assert_chart_shape(name, &svg);
        assert!(svg.contains(NO_DATA_TEXT), "{name}");
        assert!(aria_label(&svg).contains("no data yet"), "{name}: {}", aria_label(&svg));
        assert!(svg.contains(">0<") || svg.contains(">0%<"), "{name} lacks its y axis labels");
    }
}

#[test]
fn one_point_is_drawn_as_a_dot() {
    let svg = cpu_memory_chart(&cpu_points()[59..], TimeWindow::last(WINDOW_MS, NOW_MS));
    assert_chart_shape("one point", &svg);
    assert!(polylines(&svg, "#60a5fa").is_empty());
    assert_eq!(filled(&svg, "circle", "#60a5fa"), 1);
    assert_eq!(filled(&svg, "circle", "#a78bfa"), 1);
    assert!(!svg.contains(NO_DATA_TEXT));
    let svg = errors_chart(&[(NOW_MS, 3)], TimeWindow::last(WINDOW_MS, NOW_MS));
    assert_eq!(filled(&svg, "circle", "#f87171"), 1);
    let svg = latency_histogram_chart(&[HistogramBin { lower_ms: 3.0, upper_ms: 3.0, count: 5 }]);
    assert_chart_shape("single bin", &svg);
    assert_eq!(filled(&svg, "rect", "#60a5fa"), 2, "legend swatch and one bar");
    assert!(svg.contains(">3ms<"));
}

#[test]
fn non_finite_values_leave_gaps_and_never_panic() {
    let mut points = cpu_points();
    points[30].1 = f32::NAN;
    points[31].2 = f32::INFINITY;
    let svg = cpu_memory_chart(&points, TimeWindow::last(WINDOW_MS, NOW_MS));
    assert_chart_shape("cpu with NaN", &svg);
    assert_eq!(polylines(&svg, "#60a5fa"), vec![30, 29]);
    assert_eq!(polylines(&svg, "#a78bfa"), vec![31, 28]);

    let hostile = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -5.0, f64::MAX, 0.0];
    let actions: Vec<_> =
        hostile.iter().enumerate().map(|(i, v)| (at(i as u64 * 9), *v, *v)).collect();
    for (name, svg) in [
        ("action", action_chart(&actions, TimeWindow::last(WINDOW_MS, NOW_MS))),
        ("queue", queue_chart(&actions, TimeWindow::last(WINDOW_MS, NOW_MS))),
        (
            "errors",
            errors_chart(
                &[(NOW_MS, u64::MAX), (NOW_MS - 1000, 0)],
                TimeWindow::last(WINDOW_MS, NOW_MS),
            ),
        ),
    ] {
        assert_chart_shape(name, &svg);
    }
    let all_nan: Vec<_> = (0..5).map(|i| (at(i), f32::NAN, f32::NAN)).collect();
    assert!(cpu_memory_chart(&all_nan, TimeWindow::last(WINDOW_MS, NOW_MS)).contains(NO_DATA_TEXT));

    let latency: Vec<LatencyPoint> = hostile
        .iter()
        .enumerate()
        .map(|(i, v)| LatencyPoint {
            at_ms: NOW_MS - 50_000 + i as u64 * 1000,
            bucket_secs: 0,
            count: 1,
            errors: 0,
            p50_ms: *v,
            p95_ms: f64::NAN,
            p99_ms: *v * 2.0,
        })
        .collect();
    assert_chart_shape(
        "latency",
        &latency_over_time_chart(&latency, TimeWindow::last(60_000, NOW_MS)),
    );
    let bins: Vec<HistogramBin> = hostile
        .iter()
        .map(|v| HistogramBin { lower_ms: *v, upper_ms: f64::NAN, count: u64::MAX })
        .collect();
    let svg = latency_histogram_chart(&bins);
    assert_chart_shape("histogram", &svg);
    assert!(svg.contains(">?<"));
}

#[test]
fn odd_windows_and_clocks_still_draw() {
    let points = cpu_points();
    for (window_ms, now_ms) in [(0, NOW_MS), (u64::MAX, NOW_MS), (WINDOW_MS, 0), (1, u64::MAX)] {
        let svg = cpu_memory_chart(&points, TimeWindow::last(window_ms, now_ms));
        assert_chart_shape("odd window", &svg);
        let svg = queue_chart(&queue_points(), TimeWindow::last(window_ms, now_ms));
        assert_chart_shape("odd window queue", &svg);
    }
    let duplicates = vec![(NOW_MS, 10.0, 20.0); 5];
    assert_chart_shape(
        "same instant",
        &cpu_memory_chart(&[(NOW_MS, 1.0, 2.0); 3], TimeWindow::last(60_000, NOW_MS)),
    );
    assert_chart_shape("same instant", &queue_chart(&duplicates, TimeWindow::last(60_000, NOW_MS)));
}

#[test]
fn queue_and_histogram_draw_one_bar_per_positive_value() {
    let points = queue_points();
    let svg = queue_chart(&points, TimeWindow::last(WINDOW_MS, NOW_MS));
    let positive = |f: fn(&(u64, f64, f64)) -> f64| points.iter().filter(|p| f(p) > 0.0).count();
    // One swatch in the legend plus the bars.
    assert_eq!(filled(&svg, "rect", "#60a5fa"), 1 + positive(|p| p.1));
    assert_eq!(filled(&svg, "rect", "#f472b6"), 1 + positive(|p| p.2));
    let bins = bins();
    let svg = latency_histogram_chart(&bins);
    assert_eq!(filled(&svg, "rect", "#60a5fa"), 1 + bins.iter().filter(|b| b.count > 0).count());
}

#[test]
fn output_is_deterministic_and_scales_with_data_not_beyond_limits() {
    assert_eq!(
        action_chart(&action_points(), TimeWindow::last(WINDOW_MS, NOW_MS)),
        action_chart(&action_points(), TimeWindow::last(WINDOW_MS, NOW_MS))
    );
    // An hour of one-second samples in a one-hour window stays bounded too.
    let many: Vec<_> = (0..3600).map(|i| (NOW_MS - i * 1000, 50.0f32, 50.0f32)).collect();
    let svg = cpu_memory_chart(&many, TimeWindow::last(3_600_000, NOW_MS));
    assert_chart_shape("hour", &svg);
    assert!(svg.contains("-50m") && svg.contains("now"), "hour labels");
    // At most two vertices per thinning column (270 columns, plus one partial).
    assert!(polylines(&svg, "#60a5fa").iter().sum::<usize>() <= 2 * 271);
    let many: Vec<_> = (0..3600).map(|i| (NOW_MS - i * 1000, (i % 9) as f64, 1.0)).collect();
    let svg = queue_chart(&many, TimeWindow::last(3_600_000, NOW_MS));
    assert_chart_shape("hour of queues", &svg);
    assert_eq!(filled(&svg, "rect", "#f472b6"), 1 + 120);
}

#[test]
fn descriptions_and_texts_are_escaped() {
    let svg = frame::render("a \"b\" <c> & d", |svg| {
        let anchor = (frame::Across::Start, frame::Down::Middle);
        svg.text("<b> & \"c\"", (1, 2), anchor, 11, frame::AXIS);
    });
    assert!(svg.contains("aria-label=\"a &quot;b&quot; &lt;c&gt; &amp; d\""), "{svg}");
    assert!(svg.contains(">&lt;b&gt; &amp; \"c\"</text>"), "{svg}");
    assert_chart_shape("escaped", &svg);
}

#[test]
fn a_line_on_the_right_hand_scale_meets_that_scales_ticks() {
    // Durations of 240 and 120 ms in turn (the scale's top and middle ticks): each point lies
    // level with its value's label on the right axis, and at the x of the left-hand line's.
    let points: Vec<_> = action_points()
        .into_iter()
        .enumerate()
        .map(|(i, (at, rate, _))| (at, rate, if i % 2 == 0 { 240.0 } else { 120.0 }))
        .collect();
    let svg = action_chart(&points, TimeWindow::last(WINDOW_MS, NOW_MS));
    let label_y = |text: &str| {
        let label = svg.find(&format!(">{text}</text>")).unwrap_or_else(|| panic!("{text}"));
        let tag = &svg[svg[..label].rfind("<text").unwrap()..label];
        tag.split("y=\"").nth(1).and_then(|v| v.split('"').next()).unwrap().to_owned()
    };
    let (top, middle) = (label_y("240ms"), label_y("120ms"));
    let line = |color: &str| {
        let start = svg.find(&format!("stroke=\"{color}\" stroke-width=\"2\"")).unwrap();
        let points = svg[start..].split("points=\"").nth(1).unwrap();
        let points = &points[..points.find('"').unwrap()];
        points.split_whitespace().map(str::to_owned).collect::<Vec<_>>()
    };
    let duration = line("#FBBF24");
    assert_eq!(duration.len(), 60);
    for (i, p) in duration.iter().enumerate() {
        let want = if i % 2 == 0 { &top } else { &middle };
        assert!(p.ends_with(&format!(",{want}")), "{i}: {p} against y={want}");
    }
    let rate = line("#5ED38B");
    let x_of = |p: &String| p.split(',').next().unwrap().to_owned();
    let xs = |line: &[String]| line.iter().map(x_of).collect::<Vec<_>>();
    assert_eq!(xs(&duration), xs(&rate));
}

#[test]
fn throughput_and_error_rate_are_per_bucket_and_gaps_stay_gaps() {
    let window = TimeWindow::last(300_000, NOW_MS);
    // 10 samples per 5 s bucket: 120 per minute; the last bucket has 2 failures of 10.
    let points = latency_points();
    let svg = throughput_chart(&points, window);
    assert!(aria_label(&svg).ends_with("latest 120/min"), "{}", aria_label(&svg));
    assert_eq!(polylines(&svg, "#5ed38b"), vec![60]);
    let svg = error_rate_chart(&points, window);
    assert!(aria_label(&svg).ends_with("latest 20 % failed"), "{}", aria_label(&svg));
    // A missing stretch of buckets splits the line; empty buckets are not zeros.
    let mut gappy = points.clone();
    gappy.drain(20..30);
    gappy[5].count = 0;
    let svg = throughput_chart(&gappy, window);
    assert_eq!(polylines(&svg, "#5ed38b"), vec![5, 14, 30]);
    assert!(error_rate_chart(&[], window).contains(NO_DATA_TEXT));
}

#[test]
fn time_charts_state_their_span_and_plot_area_for_zooming() {
    let window = TimeWindow::between(NOW_MS - 3_600_000, NOW_MS);
    for svg in [
        cpu_memory_chart(&cpu_points(), window),
        action_chart(&action_points(), window),
        latency_over_time_chart(&latency_points(), window),
    ] {
        let root = &svg[..svg.find('>').unwrap()];
        assert!(root.contains(&format!("data-from-ms=\"{}\"", NOW_MS - 3_600_000)), "{root}");
        assert!(root.contains(&format!("data-to-ms=\"{NOW_MS}\"")), "{root}");
        assert!(root.contains("data-plot-x0=\"56\""), "{root}");
    }
    assert!(action_chart(&[], window).contains("data-plot-x1=\"547\""), "a right axis narrows it");
    assert!(cpu_memory_chart(&[], window).contains("data-plot-x1=\"581\""));
    // A fixed span is labelled with UTC clock times, not "now".
    let svg = cpu_memory_chart(&cpu_points(), window);
    assert!(!svg.contains(">now<") && svg.contains(">22:"), "{}", aria_label(&svg));
}

#[test]
fn alert_bands_sit_over_the_plot_area_where_the_alerts_fired() {
    use crate::model::alerts::{AlertSpan, Severity};
    let window = TimeWindow::between(1_000_000, 1_060_000);
    let svg = cpu_memory_chart(&cpu_points(), window);
    let (x0, x1) = frame::time_x(false);
    let (x0, x1) = (f64::from(x0), f64::from(x1));
    let pct = |share: f64| (x0 + share * (x1 - x0)) / f64::from(WIDTH_PX) * 100.0;
    let span = |from_ms, to_ms, severity| AlertSpan {
        rule: "cpu".into(),
        series: "host".into(),
        severity,
        from_ms,
        to_ms,
    };
    let spans = [
        span(1_030_000, Some(1_045_000), Severity::Warning),
        span(900_000, None, Severity::Critical),
        span(1_070_000, None, Severity::Warning),
        span(900_000, Some(990_000), Severity::Warning),
    ];
    let bands = alert_bands(&svg, &spans);
    assert_eq!(bands.len(), 2, "{bands:?}");
    assert!((bands[0].left_pct - pct(0.5)).abs() < 1e-9, "{bands:?}");
    assert!((bands[0].width_pct - (pct(0.75) - pct(0.5))).abs() < 1e-9, "{bands:?}");
    assert_eq!(bands[0].severity, Severity::Warning);
    assert!(bands[0].title.starts_with("cpu (warning) on host: from "), "{}", bands[0].title);
    // Firing since before the chart's start and still firing: the whole plot area.
    assert!((bands[1].left_pct - pct(0.0)).abs() < 1e-9);
    assert!((bands[1].width_pct - (pct(1.0) - pct(0.0))).abs() < 1e-9);
    assert!(bands[1].title.ends_with("still firing"), "{}", bands[1].title);
    // A chart that states no time span gets none.
    assert!(alert_bands(&latency_histogram_chart(&bins()), &spans).is_empty());
}

#[test]
fn the_windows_ends_are_drawn_where_the_chart_says_they_are() {
    // One point at the window's start and one at its end, on a chart with and without a right
    // axis: their x are the `data-plot-x0` and `data-plot-x1` the page maps drags and bands by.
    let window = TimeWindow::between(NOW_MS - 60_000, NOW_MS);
    let attr = |svg: &str, name: &str| {
        let v = svg.split(&format!("{name}=\"")).nth(1).unwrap();
        v[..v.find('"').unwrap()].to_owned()
    };
    let ends = [(NOW_MS - 60_000, 10.0, 500.0), (NOW_MS, 20.0, 600.0)];
    let cpu = cpu_memory_chart(&[(ends[0].0, 10.0, 20.0), (ends[1].0, 30.0, 40.0)], window);
    for svg in [cpu, action_chart(&ends, window)] {
        let line = svg.split("stroke-width=\"2\" points=\"").nth(1).unwrap();
        let xs: Vec<&str> = line[..line.find('"').unwrap()]
            .split_whitespace()
            .map(|p| p.split(',').next().unwrap())
            .collect();
        assert_eq!(xs, [attr(&svg, "data-plot-x0"), attr(&svg, "data-plot-x1")], "{svg}");
    }
}
