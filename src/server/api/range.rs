//! Time-range parameters of the history queries: `from`, `to` and `step`.
//!
//! A time is Unix milliseconds (`1767225600000`), RFC 3339 (`2026-12-01T10:00:00Z`), `now`, or
//! relative to now (`-24h`, `-15m`, `-7d`), no later than [`MAX_TIME_MS`] (the year 9999). A step
//! is a duration (`1m`, `5m`, `1h`) or milliseconds. `from` defaults to one hour before `to`, `to`
//! to now. Errors are 400 naming the parameter.

use std::collections::HashMap;
use std::time::UNIX_EPOCH;

use crate::model::MAX_TIME_MS;
use crate::server::error::ApiError;

/// Most points one series or host-history answer may hold.
pub const MAX_POINTS: u64 = 2_000;
/// Points a series has when no step is given (at most).
pub const DEFAULT_POINTS: u64 = 300;

/// A validated `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub from_ms: u64,
    pub to_ms: u64,
}

/// Whether the query asks for a stored range rather than a sliding window.
pub fn wants_range(query: &HashMap<String, String>) -> bool {
    query.contains_key("from") || query.contains_key("to")
}

/// Parses one time parameter; `None` when it is not a time or later than [`MAX_TIME_MS`].
pub fn parse_time(text: &str, now_ms: u64) -> Option<u64> {
    parse_any_time(text, now_ms).filter(|&ms| ms <= MAX_TIME_MS)
}

fn parse_any_time(text: &str, now_ms: u64) -> Option<u64> {
    let text = text.trim();
    if text == "now" {
        return Some(now_ms);
    }
    if let Some(ago) = text.strip_prefix('-') {
        let d = humantime::parse_duration(ago).ok()?;
        return Some(now_ms.saturating_sub(u64::try_from(d.as_millis()).ok()?));
    }
    if let Ok(ms) = text.parse::<u64>() {
        return Some(ms);
    }
    let at = humantime::parse_rfc3339_weak(text).ok()?;
    u64::try_from(at.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// `from` and `to` of `query`.
pub fn time_range(query: &HashMap<String, String>, now_ms: u64) -> Result<TimeRange, ApiError> {
    let param = |name: &'static str| -> Result<Option<u64>, ApiError> {
        query
            .get(name)
            .map(|v| {
                parse_time(v, now_ms).ok_or_else(|| {
                    ApiError::bad_field(
                        name,
                        format!(
                            "{name}: must be Unix ms, RFC 3339, now or relative like -24h, \
                             before the year 10000 (got {v})"
                        ),
                    )
                })
            })
            .transpose()
    };
    let to_ms = param("to")?.unwrap_or(now_ms);
    let from_ms = param("from")?.unwrap_or(to_ms.saturating_sub(3_600_000));
    if from_ms >= to_ms {
        return Err(ApiError::bad_field("from", "from: must be before to"));
    }
    Ok(TimeRange { from_ms, to_ms })
}

/// The `step` of `query` in ms, rounded up to a multiple of `unit_ms`; without one, the
/// smallest multiple of `unit_ms` giving at most [`DEFAULT_POINTS`]. A step that would give
/// more than [`MAX_POINTS`] is refused.
pub fn step(
    query: &HashMap<String, String>,
    range: TimeRange,
    unit_ms: u64,
) -> Result<u64, ApiError> {
    let span = range.to_ms - range.from_ms;
    let unit_ms = unit_ms.max(1);
    let asked = match query.get("step") {
        None => span.div_ceil(DEFAULT_POINTS),
        Some(text) => parse_step(text).ok_or_else(|| {
            ApiError::bad_field(
                "step",
                format!("step: must be a duration like 1m or 1h (got {text})"),
            )
        })?,
    };
    // A step longer than any range gives one point; capped so that rounding cannot overflow.
    let step = asked.clamp(1, MAX_TIME_MS).div_ceil(unit_ms) * unit_ms;
    if span.div_ceil(step) > MAX_POINTS {
        return Err(ApiError::bad_field(
            "step",
            format!("step: would return more than {MAX_POINTS} points; use a longer step"),
        ));
    }
    Ok(step)
}

fn parse_step(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<u64>() {
        return (ms > 0).then_some(ms);
    }
    let d = humantime::parse_duration(text).ok()?;
    u64::try_from(d.as_millis()).ok().filter(|&ms| ms > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_000_000_000;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn times_are_ms_rfc3339_now_or_relative() {
        assert_eq!(parse_time("1700000000000", NOW), Some(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z", NOW), Some(1_700_000_000_000));
        assert_eq!(parse_time("now", NOW), Some(NOW));
        assert_eq!(parse_time("-24h", NOW), Some(NOW - 86_400_000));
        assert_eq!(parse_time("-15m", NOW), Some(NOW - 900_000));
        assert_eq!(parse_time("yesterday", NOW), None);
    }

    #[test]
    fn bad_ranges_and_steps_name_their_parameter() {
        let err = time_range(&q(&[("from", "-1h"), ("to", "-2h")]), NOW).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("from"));
        let err = time_range(&q(&[("to", "soon")]), NOW).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("to"));
        let range = time_range(&q(&[("from", "-30d")]), NOW).unwrap();
        let err = step(&q(&[("step", "1m")]), range, 60_000).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("step"));
        assert!(step(&q(&[("step", "often")]), range, 60_000).is_err());
    }

    #[test]
    fn times_past_the_year_9999_are_refused_and_huge_steps_give_one_point() {
        assert_eq!(parse_time("253402300799999", NOW), Some(MAX_TIME_MS));
        assert_eq!(parse_time("253402300800000", NOW), None);
        assert_eq!(parse_time("18446744073709551615", NOW), None);
        let far = [("from", "18446744073709551000"), ("to", "18446744073709551615")];
        let err = time_range(&q(&far), NOW).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("to"));
        let range = time_range(&q(&[("from", "-1h")]), NOW).unwrap();
        let huge = q(&[("step", "18446744073709551615")]);
        assert_eq!(
            step(&huge, range, 86_400_000).unwrap(),
            MAX_TIME_MS.div_ceil(86_400_000) * 86_400_000
        );
    }

    #[test]
    fn steps_round_up_to_the_rows_width_and_default_to_about_300_points() {
        let range = time_range(&q(&[("from", "-24h")]), NOW).unwrap();
        assert_eq!(step(&q(&[("step", "90s")]), range, 60_000).unwrap(), 120_000);
        assert_eq!(step(&q(&[]), range, 60_000).unwrap(), 300_000);
        assert_eq!(step(&q(&[("step", "1h")]), range, 60_000).unwrap(), 3_600_000);
    }
}
