//! Axis arithmetic for the charts: value cleaning, "nice" tick positions and compact labels.
//! Pure functions of numbers to numbers or strings, table-tested below.

/// Largest value a chart plots; anything above is drawn at this height (labels stay short).
pub(crate) const MAX_VALUE: f64 = 1e15;

/// A plottable value: `None` for NaN and infinities, otherwise clamped into `0.0..=MAX_VALUE`.
pub(crate) fn clean(value: f64) -> Option<f64> {
    value.is_finite().then(|| value.clamp(0.0, MAX_VALUE))
}

/// Evenly spaced ticks from 0 up to the first multiple of a 1-2-2.5-5 step at or above
/// `max.max(min_top)`, with at most about five intervals. `integer` keeps the step whole (counts).
/// Always returns at least two ticks, the first 0 and the last above 0.
pub(crate) fn value_ticks(max: f64, min_top: f64, integer: bool) -> Vec<f64> {
    let min_top = if min_top.is_finite() && min_top > 0.0 { min_top } else { 1.0 };
    let target = match clean(max) {
        Some(m) if m > min_top => m,
        _ => min_top,
    };
    let raw = target / 4.0;
    let mut magnitude = 10f64.powf(raw.log10().floor());
    if integer && magnitude < 1.0 {
        magnitude = 1.0;
    }
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .filter(|s| !integer || s.fract() == 0.0)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude);
    let intervals = ((target / step) - 1e-9).ceil().clamp(1.0, 10.0) as usize;
    (0..=intervals).map(|i| i as f64 * step).collect()
}

/// `intervals + 1` evenly spaced ticks from 0 whose top covers `max.max(min_top)`, with the
/// smallest step of the form {1, 1.5, 2, 2.5, 3, 4, 5, 6, 8} × 10^k that does. For a second axis
/// whose labels must line up with the first axis' grid lines.
pub(crate) fn aligned_ticks(max: f64, min_top: f64, intervals: usize) -> Vec<f64> {
    let intervals = intervals.clamp(1, 10);
    let min_top = if min_top.is_finite() && min_top > 0.0 { min_top } else { 1.0 };
    let target = match clean(max) {
        Some(m) if m > min_top => m,
        _ => min_top,
    };
    let raw = target / intervals as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude);
    (0..=intervals).map(|i| i as f64 * step).collect()
}

/// The step between consecutive ticks (1 when there is only one).
pub(crate) fn tick_step(ticks: &[f64]) -> f64 {
    match ticks {
        [a, b, ..] if b > a => b - a,
        _ => 1.0,
    }
}

/// Decimals needed to print multiples of `step` exactly (0 for whole steps, at most 3).
fn decimals_for(step: f64) -> usize {
    if !(step.is_finite() && step > 0.0) {
        return 0;
    }
    (0..=3).find(|d| (step * 10f64.powi(*d as i32)).fract().abs() < 1e-6).unwrap_or(3)
}

/// `value` with `decimals` decimals (at most 6), as `format!("{value:.2}")` writes it, by whole
/// numbers: the exact float formatting would add its code to the bundle's first part. The value
/// is scaled, then rounded half away from zero, so a value a hair below a half (0.0385, which
/// is 0.03849… in binary) may end one digit higher than `format!` writes it. Values too large
/// for that (|value| × 10^decimals ≥ 9e15) are written by `{}` with the decimals' zeros; NaN
/// and the infinities as `{}` writes them; no "-0".
pub fn fixed(value: f64, decimals: u32) -> String {
    let decimals = decimals.min(6);
    let scale = 10u64.pow(decimals);
    let scaled = (value.abs() * scale as f64).round();
    if !scaled.is_finite() || scaled >= 9.0e15 {
        let text = format!("{value}");
        return if decimals > 0 && value.is_finite() && !text.contains('.') {
            format!("{text}.{}", "0".repeat(decimals as usize))
        } else {
            text
        };
    }
    let n = scaled as u64;
    let sign = if value < 0.0 && n > 0 { "-" } else { "" };
    match decimals {
        0 => format!("{sign}{n}"),
        d => format!("{sign}{}.{:0width$}", n / scale, n % scale, width = d as usize),
    }
}

/// `value` with `decimals` decimals and its sign always written ("+1.5", "-0.3"), as `{:+.1}`.
pub fn signed(value: f64, decimals: u32) -> String {
    let text = fixed(value, decimals);
    if text.starts_with('-') || value.is_nan() {
        text
    } else {
        format!("+{text}")
    }
}

/// A number as tables and alert messages show it: at most three decimals, no trailing zeros
/// ("512", "0.123", "0", "10000000000000").
pub fn number(value: f64) -> String {
    trim(value, 3)
}

/// `value` with at most `decimals` decimals and no trailing zeros ("2.5", "3", "0.05").
pub(crate) fn trim(value: f64, decimals: usize) -> String {
    let text = fixed(value, decimals as u32);
    if text.contains('.') {
        let text = text.trim_end_matches('0').trim_end_matches('.');
        if text == "-0" {
            "0".to_owned()
        } else {
            text.to_owned()
        }
    } else {
        text
    }
}

/// Label of a tick `value` on a plain axis with ticks `step` apart: "250", "1.5k", "2M".
pub(crate) fn count_label(value: f64, step: f64) -> String {
    const UNITS: [(f64, &str); 5] = [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    if value == 0.0 {
        return "0".to_owned();
    }
    for (scale, suffix) in UNITS {
        if value.abs() >= scale {
            return format!("{}{suffix}", trim(value / scale, decimals_for(step / scale)));
        }
    }
    trim(value, decimals_for(step))
}

/// Label of a tick `value_ms` on a duration axis with ticks `step_ms` apart: "250ms", "1.5s".
pub(crate) fn duration_label(value_ms: f64, step_ms: f64) -> String {
    if value_ms == 0.0 {
        "0".to_owned()
    } else if value_ms >= 1000.0 {
        let secs = value_ms / 1000.0;
        if secs >= 1000.0 {
            format!("{}s", count_label(secs, step_ms / 1000.0))
        } else {
            format!("{}s", trim(secs, decimals_for(step_ms / 1000.0)))
        }
    } else {
        format!("{}ms", trim(value_ms, decimals_for(step_ms)))
    }
}

/// A duration with about two significant digits, for bin edges: "0.12ms", "3.4ms", "120ms",
/// "1.2s", "45s". Non-finite values print as "?".
pub(crate) fn short_duration(ms: f64) -> String {
    if !ms.is_finite() {
        return "?".to_owned();
    }
    let (value, unit) = if ms >= 1000.0 { (ms / 1000.0, "s") } else { (ms, "ms") };
    let decimals = match value.abs() {
        v if v >= 10.0 => 0,
        v if v >= 1.0 => 1,
        v if v >= 0.1 => 2,
        _ => 3,
    };
    if value >= 100_000.0 {
        return format!("{}{unit}", count_label(value, value));
    }
    format!("{}{unit}", trim(value, decimals))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_drops_non_finite_and_clamps() {
        assert_eq!(clean(f64::NAN), None);
        assert_eq!(clean(f64::INFINITY), None);
        assert_eq!(clean(-3.0), Some(0.0));
        assert_eq!(clean(1e300), Some(MAX_VALUE));
        assert_eq!(clean(42.5), Some(42.5));
    }

    #[test]
    fn fixed_writes_what_the_float_formatting_writes() {
        for (value, decimals) in [
            (0.0, 2),
            (12.0, 1),
            (45.678, 1),
            (45.678, 0),
            (0.005, 2),
            (-2.4567, 2),
            (1999.999, 2),
            (123_456_789.125, 3),
            (7.0, 6),
            (0.1, 1),
            (99.95001, 1),
        ] {
            let want = format!("{value:.*}", decimals as usize);
            assert_eq!(fixed(value, decimals), want, "{value} to {decimals}");
        }
        // No "-0"; halves away from zero; too large, NaN and infinities in full.
        assert_eq!(fixed(-0.001, 1), "0.0");
        assert_eq!(fixed(0.25, 1), "0.3");
        assert_eq!(fixed(1e13, 3), format!("{:.3}", 1e13));
        assert_eq!(fixed(-2e16, 1), "-20000000000000000.0");
        assert_eq!(fixed(1e300, 2), format!("{}.00", 1e300));
        assert_eq!(fixed(1e300, 0), 1e300.to_string());
        assert_eq!(fixed(f64::NAN, 1), "NaN");
        assert_eq!(fixed(f64::NEG_INFINITY, 0), "-inf");
    }

    #[test]
    fn numbers_keep_their_whole_part_and_signs_are_written() {
        assert_eq!(number(512.0), "512");
        assert_eq!(number(0.12345), "0.123");
        assert_eq!(number(-0.0001), "0");
        assert_eq!(number(1e13), "10000000000000");
        assert_eq!(number(2e15), "2000000000000000");
        assert_eq!(number(-3e16), "-30000000000000000");
        assert_eq!(number(9.5e12 + 0.25), "9500000000000.25");
        assert_eq!(signed(1.26, 1), "+1.3");
        assert_eq!(signed(-0.3, 1), "-0.3");
        assert_eq!(signed(0.0, 1), "+0.0");
        assert_eq!(signed(f64::NAN, 1), "NaN");
    }

    #[test]
    fn value_ticks_are_nice_and_cover_the_maximum() {
        let cases: &[(f64, f64, bool, &[f64])] = &[
            (100.0, 1.0, false, &[0.0, 25.0, 50.0, 75.0, 100.0]),
            (0.0, 4.0, true, &[0.0, 1.0, 2.0, 3.0, 4.0]),
            (7.0, 4.0, true, &[0.0, 2.0, 4.0, 6.0, 8.0]),
            (9.0, 4.0, true, &[0.0, 5.0, 10.0]),
            (1.0, 4.0, true, &[0.0, 1.0, 2.0, 3.0, 4.0]),
            (0.3, 0.1, false, &[0.0, 0.1, 0.2, 0.30000000000000004]),
            (f64::NAN, 10.0, false, &[0.0, 2.5, 5.0, 7.5, 10.0]),
            (1234.0, 1.0, false, &[0.0, 500.0, 1000.0, 1500.0]),
        ];
        for (max, min_top, integer, want) in cases {
            assert_eq!(value_ticks(*max, *min_top, *integer), want.to_vec(), "{max} {min_top}");
        }
        for max in [0.5, 3.3, 17.0, 99.9, 12345.0, 1e14, 1e300, -5.0] {
            let ticks = value_ticks(max, 1.0, false);
            let top = *ticks.last().unwrap_or(&0.0);
            assert!(ticks.len() >= 2 && ticks.len() <= 11, "{max}: {ticks:?}");
            assert!(top >= clean(max).unwrap_or(0.0).min(MAX_VALUE) && top.is_finite(), "{max}");
        }
    }

    #[test]
    fn aligned_ticks_have_the_requested_count() {
        assert_eq!(aligned_ticks(270.0, 4.0, 4), vec![0.0, 80.0, 160.0, 240.0, 320.0]);
        assert_eq!(aligned_ticks(0.0, 4.0, 2), vec![0.0, 2.0, 4.0]);
        assert_eq!(aligned_ticks(f64::NAN, 1.0, 1), vec![0.0, 1.0]);
        for max in [0.01, 7.0, 999.0, 1e14, 1e300] {
            let ticks = aligned_ticks(max, 1.0, 3);
            assert_eq!(ticks.len(), 4);
            assert!(ticks[3] >= clean(max).unwrap_or(0.0) && ticks[3].is_finite(), "{max}");
        }
    }

    #[test]
    fn labels_are_compact_and_carry_units() {
        assert_eq!(count_label(0.0, 0.5), "0");
        assert_eq!(count_label(2.5, 2.5), "2.5");
        assert_eq!(count_label(0.05, 0.05), "0.05");
        assert_eq!(count_label(1500.0, 500.0), "1.5k");
        assert_eq!(count_label(2e6, 1e6), "2M");
        assert_eq!(count_label(1e15, 1e15), "1P");
        assert_eq!(duration_label(250.0, 250.0), "250ms");
        assert_eq!(duration_label(1500.0, 500.0), "1.5s");
        assert_eq!(duration_label(0.5, 0.25), "0.5ms");
        assert_eq!(short_duration(0.123), "0.12ms");
        assert_eq!(short_duration(3.44), "3.4ms");
        assert_eq!(short_duration(120.4), "120ms");
        assert_eq!(short_duration(1234.0), "1.2s");
        assert_eq!(short_duration(f64::NAN), "?");
    }
}
