//! Chart drawing: pure functions from data to a self-contained SVG string, written by
//! [`frame`]'s small SVG writer and shared by the server (initial HTML, reports) and the WASM
//! client (redraws).
//!
//! Every chart is drawn on a 600 × 240 canvas and returned as `<svg width="100%" viewBox="0 0
//! 600 240" role="img" aria-label="…">` with no height, so it scales to its container's width.
//! Text is plain SVG `<text>` (no font files); the background is transparent (dark theme
//! colours for lines, labels and grid). No chart panics: non-finite values are skipped and huge
//! ones clamped, and an empty input draws empty axes with "No data yet".
//!
//! Nothing here measures text or touches the DOM, so the server and the browser produce the
//! same SVG for the same input.

mod bands;
mod frame;
mod live;
mod ops;
mod scale;
mod series;
mod time;
mod values;

pub use bands::{alert_bands, Band};
pub use frame::NO_DATA_TEXT;
pub use frame::WIDTH_PX;
pub use live::{action_chart, cpu_memory_chart, errors_chart, queue_chart};
pub use ops::{
    error_rate_chart, latency_histogram_chart, latency_over_time_chart, throughput_chart,
};
pub use scale::{fixed, number, signed};
pub use time::{rfc3339_utc, span_words, TimeWindow, COLUMNS};
pub use values::value_chart;

#[cfg(test)]
mod tests;
