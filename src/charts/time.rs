//! The time axis of every time chart: which span it shows, where a timestamp falls on it, its
//! ticks and their labels, and how the span is worded in descriptions.
//!
//! x positions are seconds before the span's end (`-secs ..= 0`). A span that ends now (live
//! views, "the last 24 h") is labelled relative to now ("-2h" … "now"); a fixed span (a custom
//! range, a zoom) is labelled with UTC clock times on whole steps ("10:00", "Dec 2"), the same
//! on the server and in the browser whatever their time zones.

use time::OffsetDateTime;

use super::scale::trim;
use crate::model::history::Span;

/// Longest span a chart accepts (400 days, the default retention of hour rows); longer
/// requests are cut to their most recent part.
const MAX_SPAN_MS: u64 = 400 * 24 * 3600 * 1000;
/// Shortest span a chart accepts.
const MIN_SPAN_MS: u64 = 1000;
/// Time columns per span when thinning long series: one per two pixels of plot width.
pub const COLUMNS: f64 = 270.0;
/// Tick steps in seconds, smallest first; the axis takes the first giving at most ~6 intervals.
const STEPS_SECS: [u64; 23] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
    172_800, 432_000, 604_800, 1_209_600, 2_592_000,
];
const DAY_SECS: u64 = 86_400;

/// The x axis of a time chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    start_ms: u64,
    end_ms: u64,
    /// Labelled relative to its end ("now"), or with clock times.
    ends_now: bool,
}

impl TimeWindow {
    /// The last `span_ms` ending now (`now_ms`); the span is clamped to 1 s ..= 400 days.
    pub fn last(span_ms: u64, now_ms: u64) -> Self {
        let span_ms = span_ms.clamp(MIN_SPAN_MS, MAX_SPAN_MS);
        TimeWindow { start_ms: now_ms.saturating_sub(span_ms), end_ms: now_ms, ends_now: true }
    }

    /// A fixed span, labelled with clock times. Reversed bounds are swapped; the span is
    /// clamped to 1 s ..= 400 days (keeping its end).
    pub fn between(from_ms: u64, to_ms: u64) -> Self {
        let (from_ms, to_ms) = if from_ms <= to_ms { (from_ms, to_ms) } else { (to_ms, from_ms) };
        let span_ms = (to_ms - from_ms).clamp(MIN_SPAN_MS, MAX_SPAN_MS);
        let end_ms = to_ms.max(span_ms);
        TimeWindow { start_ms: end_ms - span_ms, end_ms, ends_now: false }
    }

    /// The axis of a page's [`Span`] at `now_ms`: a fixed range keeps its clock labels.
    pub fn of(span: Span, now_ms: u64) -> Self {
        match span {
            Span::Between(from_ms, to_ms) => TimeWindow::between(from_ms, to_ms),
            other => TimeWindow::last(other.secs() * 1000, now_ms),
        }
    }

    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }

    pub fn end_ms(&self) -> u64 {
        self.end_ms
    }

    /// Length in seconds (the x axis runs from `-secs()` to 0).
    pub fn secs(&self) -> f64 {
        (self.end_ms - self.start_ms) as f64 / 1000.0
    }

    /// Seconds before the end (<= 0) of `at_ms`, or `None` outside the span.
    pub(crate) fn x_of(&self, at_ms: u64) -> Option<f64> {
        (self.start_ms..=self.end_ms)
            .contains(&at_ms)
            .then(|| -((self.end_ms - at_ms) as f64) / 1000.0)
    }

    /// Width in seconds of one thinning column (see [`super::series::thin`]).
    pub(crate) fn column_secs(&self) -> f64 {
        self.secs() / COLUMNS
    }

    /// The points inside the span as `(x_secs, point)`, oldest first.
    pub(crate) fn select<T: Copy>(&self, points: &[T], at_ms: impl Fn(&T) -> u64) -> Vec<(f64, T)> {
        let mut chosen: Vec<(f64, T)> =
            points.iter().filter_map(|p| self.x_of(at_ms(p)).map(|x| (x, *p))).collect();
        chosen.sort_by(|a, b| a.0.total_cmp(&b.0));
        chosen
    }

    /// The step between ticks, in whole seconds: at most about six intervals.
    fn step_secs(&self) -> u64 {
        let secs = self.secs();
        STEPS_SECS.iter().copied().find(|s| secs / *s as f64 <= 6.0 + 1e-9).unwrap_or_else(|| {
            let days = (secs / DAY_SECS as f64 / 6.0).ceil().max(1.0) as u64;
            days.saturating_mul(DAY_SECS)
        })
    }

    /// Tick positions (x, ascending) and their labels.
    pub(crate) fn ticks(&self) -> Vec<(f64, String)> {
        let step = self.step_secs();
        if self.ends_now {
            let count = (self.secs() / step as f64 + 1e-9).floor() as u64;
            (0..=count.min(100))
                .rev()
                .map(|i| {
                    let x = -((i * step) as f64);
                    (x, relative_label(x, step))
                })
                .collect()
        } else {
            // Whole steps of UTC clock time inside the span.
            let step_ms = step * 1000;
            let first = self.start_ms.div_ceil(step_ms) * step_ms;
            (first..=self.end_ms)
                .step_by(step_ms as usize)
                .take(100)
                .filter_map(|at| Some((self.x_of(at)?, clock_label(at, step, self.secs()))))
                .collect()
        }
    }

    /// The ticks as an axis wants them: positions, and a label for each position.
    pub(crate) fn axis(&self) -> (Vec<f64>, impl Fn(&f64) -> String) {
        let ticks = self.ticks();
        let xs = ticks.iter().map(|(x, _)| *x).collect();
        let label = move |x: &f64| {
            let nearest = ticks.iter().min_by(|a, b| (a.0 - x).abs().total_cmp(&(b.0 - x).abs()));
            nearest.map(|(_, l)| l.clone()).unwrap_or_default()
        };
        (xs, label)
    }

    /// "over the last 60 s", or "from Dec 2 10:00 to Dec 2 12:00 UTC", for descriptions.
    pub(crate) fn describe(&self) -> String {
        if self.ends_now {
            format!("over the last {}", span_words(self.secs()))
        } else {
            format!(
                "from {} to {} UTC",
                clock_label(self.start_ms, 60, f64::INFINITY),
                clock_label(self.end_ms, 60, f64::INFINITY)
            )
        }
    }
}

/// "60 s", "5 min", "2 h", "7 d" for descriptions.
pub fn span_words(secs: f64) -> String {
    let day = DAY_SECS as f64;
    if secs >= 2.0 * day && secs % day == 0.0 {
        format!("{} d", secs / day)
    } else if secs >= 3600.0 && secs % 3600.0 == 0.0 {
        format!("{} h", secs / 3600.0)
    } else if secs >= 120.0 && secs % 60.0 == 0.0 {
        format!("{} min", secs / 60.0)
    } else {
        format!("{} s", trim(secs, 1))
    }
}

/// Label of a tick `secs` (<= 0) before now on an axis whose ticks are `step_secs` apart:
/// "now", "-30s", "-5m", "-2h", "-3d".
pub(crate) fn relative_label(secs: f64, step_secs: u64) -> String {
    let ago = (-secs).round();
    if !ago.is_finite() || ago < 0.5 {
        return "now".to_owned();
    }
    if step_secs.is_multiple_of(DAY_SECS) {
        format!("-{}d", trim(ago / DAY_SECS as f64, 1))
    } else if step_secs.is_multiple_of(3600) {
        format!("-{}h", trim(ago / 3600.0, 1))
    } else if step_secs.is_multiple_of(60) {
        format!("-{}m", trim(ago / 60.0, 1))
    } else {
        format!("-{ago}s")
    }
}

/// UTC clock label of `at_ms` on an axis with ticks `step_secs` apart over `span_secs`:
/// "14:05:30" under a minute, "14:05" within a day, "Dec 2 14:00" across days, "Dec 2" for
/// whole days.
pub(crate) fn clock_label(at_ms: u64, step_secs: u64, span_secs: f64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp((at_ms / 1000).min(i64::MAX as u64) as i64)
    else {
        return String::new();
    };
    let date = format!("{} {}", &format!("{}", t.month())[..3], t.day());
    let clock = if step_secs < 60 {
        format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
    } else {
        format!("{:02}:{:02}", t.hour(), t.minute())
    };
    if step_secs.is_multiple_of(DAY_SECS) {
        date
    } else if span_secs > DAY_SECS as f64 {
        format!("{date} {clock}")
    } else {
        clock
    }
}

/// `at_ms` as RFC 3339 in UTC to the second ("2026-12-02T10:00:00Z"), as the API reads it.
pub fn rfc3339_utc(at_ms: u64) -> String {
    let secs = (at_ms / 1000).min(i64::MAX as u64) as i64;
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => at_ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-02 10:00:00 UTC.
    const T: u64 = 1_796_205_600_000;

    #[test]
    fn a_window_keeps_only_points_between_its_start_and_end() {
        let w = TimeWindow::last(60_000, 100_000);
        assert_eq!(w.x_of(100_000), Some(0.0));
        assert_eq!(w.x_of(40_000), Some(-60.0));
        assert_eq!(w.x_of(39_999), None);
        assert_eq!(w.x_of(100_001), None);
        let early = TimeWindow::last(60_000, 5_000);
        assert_eq!((early.x_of(0), early.secs()), (Some(-5.0), 5.0));
        let picked = w.select(&[(99_000u64, 1), (20_000, 2), (98_000, 3)], |p| p.0);
        assert_eq!(picked, vec![(-2.0, (98_000, 3)), (-1.0, (99_000, 1))]);
        assert_eq!(TimeWindow::between(200_000, 100_000), TimeWindow::between(100_000, 200_000));
        let month = TimeWindow::last(30 * DAY_SECS * 1000, T);
        assert_eq!(month.secs(), 30.0 * DAY_SECS as f64, "30 days are not cut");
    }

    #[test]
    fn spans_ending_now_are_labelled_before_now() {
        let labels = |w: TimeWindow| w.ticks().into_iter().map(|(_, l)| l).collect::<Vec<_>>();
        assert_eq!(
            labels(TimeWindow::last(60_000, T)),
            ["-60s", "-50s", "-40s", "-30s", "-20s", "-10s", "now"]
        );
        assert_eq!(TimeWindow::last(300_000, T).step_secs(), 60);
        assert_eq!(TimeWindow::last(3_600_000, T).step_secs(), 600);
        assert_eq!(labels(TimeWindow::last(86_400_000, T))[0], "-24h");
        assert_eq!(
            labels(TimeWindow::last(30 * DAY_SECS * 1000, T)),
            ["-30d", "-25d", "-20d", "-15d", "-10d", "-5d", "now"]
        );
        assert_eq!(labels(TimeWindow::last(7 * DAY_SECS * 1000, T)), ["-6d", "-4d", "-2d", "now"]);
        assert_eq!(relative_label(-7200.0, 3600), "-2h");
        assert_eq!(relative_label(-3.0 * 86_400.0, 86_400), "-3d");
    }

    #[test]
    fn fixed_spans_are_labelled_with_utc_clock_times_on_whole_steps() {
        let w = TimeWindow::between(T - 7 * 60_000, T + 2 * 3_600_000 + 60_000);
        let ticks = w.ticks();
        let labels: Vec<&str> = ticks.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(labels, ["10:00", "10:30", "11:00", "11:30", "12:00"]);
        assert_eq!(ticks[0].0, -((2 * 3600 + 60) as f64), "x is seconds before the end");
        let days = TimeWindow::between(T, T + 10 * DAY_SECS * 1000);
        assert_eq!(days.ticks()[0].1, "Dec 3");
        let two_days = TimeWindow::between(T, T + 2 * DAY_SECS * 1000);
        assert_eq!(two_days.ticks()[0].1, "Dec 2 12:00");
        assert_eq!(clock_label(T + 5_000, 5, 60.0), "10:00:05");
        assert_eq!(w.describe(), "from Dec 2 09:53 to Dec 2 12:01 UTC");
        assert_eq!(TimeWindow::last(86_400_000, T).describe(), "over the last 24 h");
        assert_eq!(span_words(7.0 * 86_400.0), "7 d");
        assert_eq!(rfc3339_utc(T + 5_999), "2026-12-02T10:00:05Z");
    }
}
