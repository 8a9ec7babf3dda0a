//! The chart frame shared by every chart: theme, canvas, axes, legend, "No data yet", and the
//! SVG writer they draw with ([`Svg`], [`Plot`]).
//!
//! The charts need lines, filled areas, bars, dots and anchored text on a fixed canvas, nothing
//! a drawing library adds beyond that; written here, the charts' code in the WASM bundle is a
//! few KB instead of plotters' generic drawing stack (issue 12, BENCHMARKS.md).

use std::fmt::Write as _;
use std::ops::Range;

use super::time::TimeWindow;

/// Drawing size of every chart in SVG user units (the `viewBox`); the output scales to its box.
pub const WIDTH_PX: u32 = 600;
pub(crate) const HEIGHT_PX: u32 = 240;

/// An opaque colour, written `#RRGGBB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rgb(pub u8, pub u8, pub u8);

impl std::fmt::Display for Rgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{:02X}{:02X}{:02X}", self.0, self.1, self.2)
    }
}

/// Axis lines and labels.
pub(crate) const AXIS: Rgb = Rgb(0x9a, 0xa3, 0xb2);
/// The dashboard's card background, used behind the "No data yet" notice.
pub(crate) const BACKGROUND: Rgb = Rgb(0x17, 0x1a, 0x21);
/// Grid lines.
pub(crate) const GRID: Rgb = Rgb(0x2a, 0x2f, 0x3a);
pub(crate) const CPU: Rgb = Rgb(0x60, 0xa5, 0xfa);
pub(crate) const MEMORY: Rgb = Rgb(0xa7, 0x8b, 0xfa);
pub(crate) const ACTIONS: Rgb = Rgb(0x5e, 0xd3, 0x8b);
pub(crate) const DURATION: Rgb = Rgb(0xfb, 0xbf, 0x24);
pub(crate) const ACTION_QUEUE: Rgb = Rgb(0x60, 0xa5, 0xfa);
pub(crate) const EVENT_QUEUE: Rgb = Rgb(0xf4, 0x72, 0xb6);
pub(crate) const ERRORS: Rgb = Rgb(0xf8, 0x71, 0x71);
pub(crate) const P50: Rgb = Rgb(0x5e, 0xd3, 0x8b);
pub(crate) const P95: Rgb = Rgb(0xfb, 0xbf, 0x24);
pub(crate) const P99: Rgb = Rgb(0xf8, 0x71, 0x71);
/// Histogram bars.
pub(crate) const SAMPLES: Rgb = Rgb(0x60, 0xa5, 0xfa);

/// Text shown in the plot area when there is nothing to plot.
pub const NO_DATA_TEXT: &str = "No data yet";

/// Font size of tick labels and legend text, in SVG user units.
const LABEL_FONT_PX: u32 = 11;
/// Font size of the "No data yet" notice.
const NOTICE_FONT_PX: u32 = 13;
/// Rough advance of one character of `LABEL_FONT_PX` sans-serif text, for laying out the legend.
const CHAR_ADVANCE_PX: f64 = 6.2;

const LEGEND_ROW_PX: u32 = 26;
const LEFT_AREA_PX: u32 = 52;
const MARGIN_LEFT_PX: u32 = 4;
const MARGIN_BOTTOM_PX: u32 = 4;
const BOTTOM_AREA_PX: u32 = 22;
/// Right margin of a chart without a right axis: room for half of the "now" label.
const RIGHT_MARGIN_PX: u32 = 18;
/// Right margin of a chart with a secondary axis, which [`draw_right_axis`] fills.
const RIGHT_AXIS_PX: u32 = 52;
/// Length of an axis' tick marks, and the gap between a mark and its label.
const TICK_PX: i32 = 5;
const LABEL_GAP_PX: i32 = 4;

/// A point on the canvas, in whole SVG user units.
pub(crate) type Px = (i32, i32);

/// Where a text's anchor point lies across it.
#[derive(Clone, Copy)]
pub(crate) enum Across {
    Start,
    Middle,
    End,
}

/// Where a text's anchor point lies up and down it.
#[derive(Clone, Copy)]
pub(crate) enum Down {
    /// The anchor is the text's top (x-axis labels under their tick).
    Top,
    Middle,
}

/// The elements of a chart, written in drawing order (later ones paint over earlier ones).
/// Coordinates are whole user units; colours are opaque unless an opacity is given.
pub(crate) struct Svg {
    out: String,
}

impl Svg {
    fn new() -> Self {
        Svg { out: String::with_capacity(12 * 1024) }
    }

    /// A one-unit line of `color` from `a` to `b`.
    pub(crate) fn line(&mut self, a: Px, b: Px, color: Rgb) {
        let _ = write!(
            self.out,
            "<line stroke=\"{color}\" stroke-width=\"1\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>",
            a.0, a.1, b.0, b.1
        );
    }

    /// An open path through `points`, `width` units wide.
    pub(crate) fn polyline(
        &mut self,
        points: impl IntoIterator<Item = Px>,
        color: Rgb,
        width: u32,
    ) {
        let _ = write!(
            self.out,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"{width}\" points=\""
        );
        self.points(points);
        self.out.push_str("\"/>");
    }

    /// A closed shape through `points`, filled with `color` at `opacity`.
    pub(crate) fn polygon(
        &mut self,
        points: impl IntoIterator<Item = Px>,
        color: Rgb,
        opacity: &str,
    ) {
        let _ = write!(self.out, "<polygon opacity=\"{opacity}\" fill=\"{color}\" points=\"");
        self.points(points);
        self.out.push_str("\"/>");
    }

    fn points(&mut self, points: impl IntoIterator<Item = Px>) {
        for (x, y) in points {
            let _ = write!(self.out, "{x},{y} ");
        }
    }

    /// A filled rectangle with corners `a` and `b` (in any order).
    pub(crate) fn rect(&mut self, a: Px, b: Px, color: Rgb) {
        let (left, top) = (a.0.min(b.0), a.1.min(b.1));
        let _ = write!(
            self.out,
            "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"{color}\"/>",
            a.0.max(b.0) - left,
            a.1.max(b.1) - top
        );
    }

    /// A filled dot.
    pub(crate) fn circle(&mut self, center: Px, radius: u32, color: Rgb) {
        let _ = write!(
            self.out,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{radius}\" fill=\"{color}\" stroke-width=\"1\"/>",
            center.0, center.1
        );
    }

    /// `text` anchored at `at`, in the chart's font (set once on the root).
    pub(crate) fn text(
        &mut self,
        text: &str,
        at: Px,
        anchor: (Across, Down),
        size: u32,
        color: Rgb,
    ) {
        let dy = match anchor.1 {
            Down::Top => "0.76em",
            Down::Middle => "0.5ex",
        };
        let across = match anchor.0 {
            Across::Start => "start",
            Across::Middle => "middle",
            Across::End => "end",
        };
        let _ = write!(
            self.out,
            "<text x=\"{}\" y=\"{}\" dy=\"{dy}\" text-anchor=\"{across}\" font-size=\"{size}\" \
             fill=\"{color}\">",
            at.0, at.1
        );
        escape_into(&mut self.out, text);
        self.out.push_str("</text>");
    }
}

/// A linear `f64` axis with the tick positions we chose. Values outside the range are drawn at
/// its nearest end, so no point is placed outside the plot area.
pub(crate) struct Axis {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl Axis {
    /// `range` must be finite and non-empty (see [`safe_range`]).
    fn new(range: Range<f64>, ticks: Vec<f64>) -> Self {
        let ticks = ticks.into_iter().filter(|t| range.start <= *t && *t <= range.end).collect();
        Axis { range, ticks }
    }

    /// `value` between the pixels `from` (the range's start) and `to` (its end), rounded.
    fn map(&self, value: f64, (from, to): (i32, i32)) -> i32 {
        let share = (value - self.range.start) / (self.range.end - self.range.start);
        let share = if share.is_nan() { 0.0 } else { share.clamp(0.0, 1.0) };
        (f64::from(from) + share * f64::from(to - from)).round() as i32
    }
}

/// The plot area of a chart and the scales that place values in it: x and y, and a secondary y
/// for a chart with a right-hand axis.
pub(crate) struct Plot {
    x: Axis,
    y: Axis,
    /// Left edge and right edge (exclusive) of the plot area.
    left: i32,
    right: i32,
    /// Top edge and bottom edge (exclusive).
    top: i32,
    bottom: i32,
    /// The secondary y scale (see [`Plot::with_secondary`]); 0 to 1 until one is given.
    secondary: Axis,
}

impl Plot {
    /// A point of the primary scales on the canvas (values beyond an axis at its end).
    pub(crate) fn at(&self, (x, y): (f64, f64)) -> Px {
        (self.x.map(x, (self.left, self.right - 1)), self.y.map(y, (self.bottom - 1, self.top)))
    }

    /// A point of the secondary y scale (see [`Plot::with_secondary`]), placed as the primary
    /// scale places its own (and as [`draw_right_axis`] places its ticks).
    pub(crate) fn at_secondary(&self, (x, y): (f64, f64)) -> Px {
        (self.at((x, 0.0)).0, self.secondary.map(y, (self.bottom - 1, self.top)))
    }

    /// The same plot with a secondary y scale with these ticks, from 0 up to the last one.
    pub(crate) fn with_secondary(self, ticks: &[f64]) -> Self {
        Plot { secondary: Axis::new(0.0..top_of(ticks), ticks.to_vec()), ..self }
    }

    /// The middle of the plot area.
    fn center(&self) -> Px {
        ((self.left + self.right) / 2, (self.top + self.bottom) / 2)
    }
}

/// Draws onto a `WIDTH_PX` × `HEIGHT_PX` canvas and returns the finished SVG: responsive
/// (`width="100%"`, no height, `viewBox` kept), `role="img"` with `aria_label`.
pub(crate) fn render(aria_label: &str, draw: impl FnOnce(&mut Svg)) -> String {
    render_with(aria_label, "", draw)
}

/// [`render`] for a chart over `window`: the `<svg>` also says which span it shows and where
/// its start and end are drawn (`data-from-ms`, `data-to-ms`, `data-plot-x0`, `data-plot-x1`,
/// in viewBox units), so the page can turn a drag across it into a time range and place alert
/// bands over it.
pub(crate) fn render_over(
    window: &TimeWindow,
    right_axis: bool,
    aria_label: &str,
    draw: impl FnOnce(&mut Svg),
) -> String {
    let (x0, x1) = time_x(right_axis);
    let attrs = format!(
        " data-from-ms=\"{}\" data-to-ms=\"{}\" data-plot-x0=\"{x0}\" data-plot-x1=\"{x1}\"",
        window.start_ms(),
        window.end_ms()
    );
    render_with(aria_label, &attrs, draw)
}

/// Left edge and right edge (exclusive) of the plot area in viewBox units.
fn plot_x(right_axis: bool) -> (u32, u32) {
    let right = if right_axis { RIGHT_AXIS_PX } else { RIGHT_MARGIN_PX };
    (MARGIN_LEFT_PX + LEFT_AREA_PX, WIDTH_PX - right)
}

/// Where the start and the end of the x range are drawn ([`Plot::at`]), in viewBox units.
pub(crate) fn time_x(right_axis: bool) -> (u32, u32) {
    let (left, right) = plot_x(right_axis);
    (left, right - 1)
}

fn render_with(aria_label: &str, attrs: &str, draw: impl FnOnce(&mut Svg)) -> String {
    let mut svg = Svg::new();
    draw(&mut svg);
    finish(&svg.out, aria_label, attrs)
}

/// The chart's elements in the `<svg>` root: the canvas' size, its font, its description.
fn finish(body: &str, aria_label: &str, attrs: &str) -> String {
    let mut out = String::with_capacity(body.len() + 256);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {WIDTH_PX} \
         {HEIGHT_PX}\" role=\"img\" aria-label=\"{}\" font-family=\"sans-serif\"{attrs}>",
        escape_attr(aria_label)
    );
    out.push_str(body);
    out.push_str("</svg>");
    out
}

/// Escapes text for a double-quoted XML attribute.
fn escape_attr(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '\n' | '\r' | '\t' => out.push(' '),
            other => escape_char(&mut out, other),
        }
    }
    out
}

/// Escapes text for an element's content.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        escape_char(out, c);
    }
}

fn escape_char(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        other => out.push(other),
    }
}

/// Axes of a chart: x and y ranges with their tick positions and label functions.
pub(crate) struct Axes<'f> {
    pub x_range: Range<f64>,
    pub x_ticks: Vec<f64>,
    pub x_label: &'f dyn Fn(&f64) -> String,
    /// Ticks from 0 up; the last one is the top of the y range.
    pub y_ticks: Vec<f64>,
    pub y_label: &'f dyn Fn(&f64) -> String,
    /// Reserve room for a right-hand axis (see [`draw_right_axis`]).
    pub right_axis: bool,
}

/// The top of a tick list (the last tick, at least a small positive number).
pub(crate) fn top_of(ticks: &[f64]) -> f64 {
    ticks.last().copied().filter(|t| t.is_finite() && *t > 0.0).unwrap_or(1.0)
}

/// A non-empty, finite range (the scales divide by its length).
fn safe_range(range: &Range<f64>) -> Range<f64> {
    let start = if range.start.is_finite() { range.start } else { 0.0 };
    let end = if range.end.is_finite() { range.end } else { start + 1.0 };
    if end > start {
        start..end
    } else {
        start..start + 1.0
    }
}

/// The plot area under the legend row, with its grid, axes, tick marks and tick labels drawn.
pub(crate) fn build(svg: &mut Svg, axes: &Axes<'_>) -> Plot {
    let (left, right) = plot_x(axes.right_axis);
    let plot = Plot {
        x: Axis::new(safe_range(&axes.x_range), axes.x_ticks.clone()),
        y: Axis::new(0.0..top_of(&axes.y_ticks), axes.y_ticks.clone()),
        left: left as i32,
        right: right as i32,
        top: LEGEND_ROW_PX as i32,
        bottom: (HEIGHT_PX - MARGIN_BOTTOM_PX - BOTTOM_AREA_PX) as i32,
        secondary: Axis::new(0.0..1.0, Vec::new()),
    };
    let (x_end, y_end) = (plot.right - 1, plot.bottom - 1);
    let xs: Vec<i32> = plot.x.ticks.iter().map(|t| plot.at((*t, 0.0)).0).collect();
    let ys: Vec<i32> = plot.y.ticks.iter().map(|t| plot.at((0.0, *t)).1).collect();
    for x in &xs {
        svg.line((*x, y_end), (*x, plot.top), GRID);
    }
    for y in &ys {
        svg.line((plot.left, *y), (x_end, *y), GRID);
    }
    // The y axis just left of the plot area, its labels right-aligned before the marks.
    let axis_x = plot.left - 1;
    svg.polyline([(axis_x, plot.top), (axis_x, y_end)], AXIS, 1);
    for (tick, y) in plot.y.ticks.iter().zip(&ys) {
        let label_at = (axis_x - TICK_PX - LABEL_GAP_PX, *y);
        svg.text(&(axes.y_label)(tick), label_at, (Across::End, Down::Middle), LABEL_FONT_PX, AXIS);
        svg.polyline([(axis_x - TICK_PX, *y), (axis_x, *y)], AXIS, 1);
    }
    // The x axis just under it, its labels centred under the marks.
    let axis_y = plot.bottom;
    svg.polyline([(plot.left, axis_y), (x_end, axis_y)], AXIS, 1);
    for (tick, x) in plot.x.ticks.iter().zip(&xs) {
        let label_at = (*x, axis_y + 2 * TICK_PX);
        svg.text(&(axes.x_label)(tick), label_at, (Across::Middle, Down::Top), LABEL_FONT_PX, AXIS);
        svg.polyline([(*x, axis_y), (*x, axis_y + TICK_PX)], AXIS, 1);
    }
    plot
}

/// Draws the right-hand axis of the plot's secondary scale ([`Plot::with_secondary`]): axis
/// line, tick marks and labels, each tick where [`Plot::at_secondary`] places its value.
pub(crate) fn draw_right_axis(svg: &mut Svg, plot: &Plot, label: &dyn Fn(&f64) -> String) {
    let right = plot.right;
    svg.polyline([(right, plot.top), (right, plot.bottom - 1)], AXIS, 1);
    for tick in &plot.secondary.ticks {
        let y = plot.at_secondary((0.0, *tick)).1;
        svg.polyline([(right, y), (right + TICK_PX, y)], AXIS, 1);
        let at = (right + TICK_PX + LABEL_GAP_PX, y);
        svg.text(&label(tick), at, (Across::Start, Down::Middle), LABEL_FONT_PX, AXIS);
    }
}

/// Draws the legend row above the plot: a colour swatch and a label per series.
pub(crate) fn draw_legend(svg: &mut Svg, entries: &[(&str, Rgb)]) {
    let mut x = (LEFT_AREA_PX + 4) as i32;
    let y = (LEGEND_ROW_PX / 2) as i32;
    for (text, color) in entries {
        svg.rect((x, y - 4), (x + 10, y + 5), *color);
        svg.text(text, (x + 15, y), (Across::Start, Down::Middle), LABEL_FONT_PX, AXIS);
        let text_px = (text.chars().count() as f64 * CHAR_ADVANCE_PX).ceil() as i32;
        x += 15 + text_px + 18;
    }
}

/// Writes "No data yet" in the middle of the plot area.
pub(crate) fn draw_no_data(svg: &mut Svg, plot: &Plot) {
    let center = plot.center();
    let half_width = (NO_DATA_TEXT.len() as f64 * CHAR_ADVANCE_PX * 0.65).ceil() as i32;
    let backdrop = ((center.0 - half_width, center.1 - 10), (center.0 + half_width, center.1 + 10));
    svg.rect(backdrop.0, backdrop.1, BACKGROUND);
    svg.text(NO_DATA_TEXT, center, (Across::Middle, Down::Middle), NOTICE_FONT_PX, AXIS);
}
