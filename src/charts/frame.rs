//! The chart frame shared by every chart: theme, canvas, axes, legend, "No data yet", and the
//! post-processing that turns plotters' SVG into a small, responsive, labelled `<svg>`.

use std::error::Error;
use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::time::TimeWindow;

/// Drawing size of every chart in SVG user units (the `viewBox`); the output scales to its box.
pub const WIDTH_PX: u32 = 600;
pub(crate) const HEIGHT_PX: u32 = 240;

/// Axis lines and labels.
pub(crate) const AXIS: RGBColor = RGBColor(0x9a, 0xa3, 0xb2);
/// The dashboard's card background, used behind the "No data yet" notice.
pub(crate) const BACKGROUND: RGBColor = RGBColor(0x17, 0x1a, 0x21);
/// Grid lines.
pub(crate) const GRID: RGBColor = RGBColor(0x2a, 0x2f, 0x3a);
pub(crate) const CPU: RGBColor = RGBColor(0x60, 0xa5, 0xfa);
pub(crate) const MEMORY: RGBColor = RGBColor(0xa7, 0x8b, 0xfa);
pub(crate) const ACTIONS: RGBColor = RGBColor(0x5e, 0xd3, 0x8b);
pub(crate) const DURATION: RGBColor = RGBColor(0xfb, 0xbf, 0x24);
pub(crate) const ACTION_QUEUE: RGBColor = RGBColor(0x60, 0xa5, 0xfa);
pub(crate) const EVENT_QUEUE: RGBColor = RGBColor(0xf4, 0x72, 0xb6);
pub(crate) const ERRORS: RGBColor = RGBColor(0xf8, 0x71, 0x71);
pub(crate) const P50: RGBColor = RGBColor(0x5e, 0xd3, 0x8b);
pub(crate) const P95: RGBColor = RGBColor(0xfb, 0xbf, 0x24);
pub(crate) const P99: RGBColor = RGBColor(0xf8, 0x71, 0x71);
/// Histogram bars.
pub(crate) const SAMPLES: RGBColor = RGBColor(0x60, 0xa5, 0xfa);

/// Text shown in the plot area when there is nothing to plot.
pub const NO_DATA_TEXT: &str = "No data yet";

/// Font size of tick labels and legend text, in SVG user units.
const LABEL_FONT_PX: f64 = 11.0;
/// plotters writes `font-size` as the requested size divided by this.
const PLOTTERS_FONT_SCALE: f64 = 1.24;
/// Rough advance of one character of `LABEL_FONT_PX` sans-serif text, for laying out the legend.
const CHAR_ADVANCE_PX: f64 = 6.2;

const LEGEND_ROW_PX: u32 = 26;
const LEFT_AREA_PX: u32 = 52;
const MARGIN_LEFT_PX: u32 = 4;
const BOTTOM_AREA_PX: u32 = 22;
/// Right margin of a chart without a right axis: room for half of the "now" label.
const RIGHT_MARGIN_PX: u32 = 18;
/// Right margin of a chart with a secondary axis, which [`draw_right_axis`] fills.
pub(crate) const RIGHT_AXIS_PX: u32 = 52;

pub(crate) type DrawResult<T = ()> = Result<T, Box<dyn Error>>;
pub(crate) type Root<'b> = DrawingArea<SVGBackend<'b>, plotters::coord::Shift>;
pub(crate) type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Axis, Axis>>;

/// A linear `f64` axis with the tick positions we chose. Values outside the range are drawn at
/// its nearest end, so nothing ever escapes the plot area.
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
}

impl Ranged for Axis {
    type ValueType = f64;
    type FormatOption = DefaultFormatting;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.range.start) / (self.range.end - self.range.start);
        let share = if share.is_nan() { 0.0 } else { share.clamp(0.0, 1.0) };
        (f64::from(limit.0) + share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// Tick-label style of the given colour, anchored at `h`/`v`.
pub(crate) fn label_style(color: &RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    // The family by its variant: from a name, plotters lowercases it (Unicode tables in the
    // bundle).
    (FontFamily::SansSerif, LABEL_FONT_PX * PLOTTERS_FONT_SCALE)
        .into_font()
        .color(color)
        .pos(Pos::new(h, v))
}

/// Draws with plotters onto a `WIDTH_PX` × `HEIGHT_PX` canvas and returns the finished SVG:
/// responsive (`width="100%"`, no height, `viewBox` kept), `role="img"` with `aria_label`.
/// A drawing error (none is expected with the string backend) yields a frame saying so.
pub(crate) fn render(aria_label: &str, draw: impl FnOnce(&Root<'_>) -> DrawResult) -> String {
    render_with(aria_label, "", draw)
}

/// [`render`] for a chart over `window`: the `<svg>` also says which span it shows and where
/// its plot area lies (`data-from-ms`, `data-to-ms`, `data-plot-x0`, `data-plot-x1`, in
/// viewBox units), so the page can turn a drag across it into a time range.
pub(crate) fn render_over(
    window: &TimeWindow,
    right_axis: bool,
    aria_label: &str,
    draw: impl FnOnce(&Root<'_>) -> DrawResult,
) -> String {
    let (x0, x1) = plot_x(right_axis);
    let attrs = format!(
        " data-from-ms=\"{}\" data-to-ms=\"{}\" data-plot-x0=\"{x0}\" data-plot-x1=\"{x1}\"",
        window.start_ms(),
        window.end_ms()
    );
    render_with(aria_label, &attrs, draw)
}

/// Left and right edge of the plot area in viewBox units.
pub(crate) fn plot_x(right_axis: bool) -> (u32, u32) {
    let right = if right_axis { RIGHT_AXIS_PX } else { RIGHT_MARGIN_PX };
    (MARGIN_LEFT_PX + LEFT_AREA_PX, WIDTH_PX - right)
}

fn render_with(
    aria_label: &str,
    attrs: &str,
    draw: impl FnOnce(&Root<'_>) -> DrawResult,
) -> String {
    let mut raw = String::with_capacity(16 * 1024);
    let outcome = {
        let root = SVGBackend::with_string(&mut raw, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
        draw(&root).and_then(|()| root.present().map_err(Into::into))
    };
    if outcome.is_err() {
        raw = fallback();
    }
    finish(&raw, aria_label, attrs)
}

/// A bare frame with a notice, used when plotters reports an error.
fn fallback() -> String {
    format!(
        "<svg viewBox=\"0 0 {w} {h}\"><text x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" \
         font-size=\"13\" fill=\"#9AA3B2\">Chart unavailable</text></svg>",
        w = WIDTH_PX,
        h = HEIGHT_PX,
        x = WIDTH_PX / 2,
        y = HEIGHT_PX / 2
    )
}

/// Rewrites plotters' output: our own `<svg>` opening tag, no newlines, no default-valued
/// `opacity="1"` or `stroke="none"`,
/// one `font-family` on the root instead of on every label, short `font-size` values.
pub(crate) fn finish(raw: &str, aria_label: &str, attrs: &str) -> String {
    let body = raw
        .find("<svg")
        .and_then(|start| raw[start..].find('>').map(|end| &raw[start + end + 1..]))
        .unwrap_or("</svg>");
    let mut out = String::with_capacity(body.len() + 256);
    out.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {WIDTH_PX} \
         {HEIGHT_PX}\" role=\"img\" aria-label=\"{}\" font-family=\"sans-serif\"{attrs}>",
        escape_attr(aria_label)
    ));
    let body = body
        .replace('\n', "")
        .replace(" opacity=\"1\"", "")
        .replace(" stroke=\"none\"", "")
        .replace(" font-family=\"sans-serif\"", "");
    out.push_str(&round_font_sizes(&body));
    out
}

/// Rewrites every `font-size="11.000000000000002"` to at most one decimal.
fn round_font_sizes(svg: &str) -> String {
    const KEY: &str = "font-size=\"";
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(at) = rest.find(KEY) {
        let value_start = at + KEY.len();
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push_str(&one_decimal(&rest[..end]).unwrap_or_else(|| rest[..end].to_owned()));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A plain decimal ("11.000000000000002", "10.96", "9") rounded to at most one decimal ("11",
/// "11", "9"), by its digits: a float parser would add its tables to the bundle's first part.
/// `None` for anything else.
fn one_decimal(text: &str) -> Option<String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digit = |c: Option<char>| c.map_or(Some(0), |c| c.to_digit(10).map(u64::from));
    let ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 15 || !ok(whole) || !ok(fraction) {
        return None;
    }
    let mut digits = fraction.chars();
    let (tenth, next) = (digit(digits.next())?, digit(digits.next())?);
    let tenths = whole.parse::<u64>().ok()? * 10 + tenth + u64::from(next >= 5);
    Some(match tenths % 10 {
        0 => (tenths / 10).to_string(),
        d => format!("{}.{d}", tenths / 10),
    })
}

/// Escapes text for a double-quoted XML attribute.
pub(crate) fn escape_attr(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' | '\r' | '\t' => out.push(' '),
            other => out.push(other),
        }
    }
    out
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

/// A non-empty, finite range (plotters divides by its length).
fn safe_range(range: &Range<f64>) -> Range<f64> {
    let start = if range.start.is_finite() { range.start } else { 0.0 };
    let end = if range.end.is_finite() { range.end } else { start + 1.0 };
    if end > start {
        start..end
    } else {
        start..start + 1.0
    }
}

/// Builds the chart area under the legend row and draws grid, axes and tick labels.
pub(crate) fn build<'a, 'b>(root: &'a Root<'b>, axes: &Axes<'_>) -> DrawResult<Chart<'a, 'b>> {
    let x_range = safe_range(&axes.x_range);
    let y_range = 0.0..top_of(&axes.y_ticks);
    let mut builder = ChartBuilder::on(root);
    builder
        .margin_top(LEGEND_ROW_PX)
        .margin_left(MARGIN_LEFT_PX)
        .margin_bottom(4)
        .x_label_area_size(BOTTOM_AREA_PX)
        .y_label_area_size(LEFT_AREA_PX);
    if axes.right_axis {
        // Not a plotters label area: the mesh would repeat the left labels there.
        builder.margin_right(RIGHT_AXIS_PX);
    } else {
        builder.margin_right(RIGHT_MARGIN_PX);
    }
    let mut chart = builder.build_cartesian_2d(
        Axis::new(x_range, axes.x_ticks.clone()),
        Axis::new(y_range, axes.y_ticks.clone()),
    )?;
    chart
        .configure_mesh()
        .axis_style(AXIS)
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .x_label_style(label_style(&AXIS, HPos::Center, VPos::Top))
        .y_label_style(label_style(&AXIS, HPos::Right, VPos::Center))
        .x_label_formatter(axes.x_label)
        .y_label_formatter(axes.y_label)
        .draw()?;
    Ok(chart)
}

/// Draws a right-hand axis for a secondary scale `0..top_of(ticks)` sharing the plot area of
/// `chart`: axis line, tick marks and labels (positioned here rather than by plotters, whose
/// right-axis layout measures text through the DOM when compiled to WASM).
pub(crate) fn draw_right_axis(
    root: &Root<'_>,
    chart: &Chart<'_, '_>,
    ticks: &[f64],
    label: &dyn Fn(&f64) -> String,
) -> DrawResult {
    let (x_px, y_px) = chart.plotting_area().get_pixel_range();
    let right = x_px.end;
    let (bottom, top) = (y_px.end - 1, y_px.start);
    let top_value = top_of(ticks);
    root.draw(&PathElement::new(vec![(right, top), (right, bottom)], AXIS))?;
    let style = label_style(&AXIS, HPos::Left, VPos::Center);
    for tick in ticks {
        let y = bottom - ((tick / top_value) * f64::from(bottom - top)).round() as i32;
        root.draw(&PathElement::new(vec![(right, y), (right + 5, y)], AXIS))?;
        root.draw_text(&label(tick), &style, (right + 9, y))?;
    }
    Ok(())
}

/// Draws the legend row above the plot: a colour swatch and a label per series.
pub(crate) fn draw_legend(root: &Root<'_>, entries: &[(&str, RGBColor)]) -> DrawResult {
    let mut x = (LEFT_AREA_PX + 4) as i32;
    let y = (LEGEND_ROW_PX / 2) as i32;
    let style = label_style(&AXIS, HPos::Left, VPos::Center);
    for (text, color) in entries {
        root.draw(&Rectangle::new([(x, y - 4), (x + 10, y + 5)], color.filled()))?;
        root.draw_text(text, &style, (x + 15, y))?;
        let text_px = (text.chars().count() as f64 * CHAR_ADVANCE_PX).ceil() as i32;
        x += 15 + text_px + 18;
    }
    Ok(())
}

/// Writes "No data yet" in the middle of the plot area.
pub(crate) fn draw_no_data(root: &Root<'_>, chart: &Chart<'_, '_>) -> DrawResult {
    let (x_px, y_px) = chart.plotting_area().get_pixel_range();
    let center = ((x_px.start + x_px.end) / 2, (y_px.start + y_px.end) / 2);
    let style = (FontFamily::SansSerif, 13.0 * PLOTTERS_FONT_SCALE)
        .into_font()
        .color(&AXIS)
        .pos(Pos::new(HPos::Center, VPos::Center));
    let half_width = (NO_DATA_TEXT.len() as f64 * CHAR_ADVANCE_PX * 0.65).ceil() as i32;
    let backdrop = [(center.0 - half_width, center.1 - 10), (center.0 + half_width, center.1 + 10)];
    root.draw(&Rectangle::new(backdrop, BACKGROUND.filled()))?;
    root.draw_text(NO_DATA_TEXT, &style, center)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn font_sizes_keep_at_most_one_decimal_read_by_their_digits() {
        for (text, want) in [
            ("11.000000000000002", Some("11")),
            ("10.96", Some("11")),
            ("10.94", Some("10.9")),
            ("9.25", Some("9.3")),
            ("9", Some("9")),
            ("12.", Some("12")),
            ("0.04", Some("0")),
            ("1e3", None),
            ("-3", None),
            ("", None),
        ] {
            assert_eq!(one_decimal(text).as_deref(), want, "{text}");
        }
        let svg = round_font_sizes(
            r#"<text font-size="13.000000000000002">a</text><text font-size="x">"#,
        );
        assert_eq!(svg, r#"<text font-size="13">a</text><text font-size="x">"#);
    }
}
