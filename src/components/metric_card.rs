//! A metric card: a label, a value and a colour that says whether the value is healthy.

use leptos::prelude::*;

use crate::charts::fixed;

/// How healthy a value is; drives the card's colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Bad,
    /// No judgement (e.g. a count that is neither good nor bad).
    Neutral,
}

impl Level {
    /// Higher is worse: `Ok` below `warn`, `Warn` below `bad`, else `Bad`.
    pub fn rising(value: f64, warn: f64, bad: f64) -> Level {
        if value >= bad {
            Level::Bad
        } else if value >= warn {
            Level::Warn
        } else {
            Level::Ok
        }
    }

    /// Lower is worse: `Ok` at or above `ok`, `Warn` at or above `warn`, else `Bad`.
    pub fn falling(value: f64, ok: f64, warn: f64) -> Level {
        if value >= ok {
            Level::Ok
        } else if value >= warn {
            Level::Warn
        } else {
            Level::Bad
        }
    }

    pub const fn class(self) -> &'static str {
        match self {
            Level::Ok => "card level-ok",
            Level::Warn => "card level-warn",
            Level::Bad => "card level-bad",
            Level::Neutral => "card level-neutral",
        }
    }
}

/// One card. `value` and `level` are reactive; `detail` is a smaller second line.
#[component]
pub fn MetricCard(
    #[prop(into)] label: String,
    #[prop(into)] testid: String,
    #[prop(into)] value: Signal<String>,
    #[prop(into)] level: Signal<Level>,
    #[prop(optional, into)] detail: Option<Signal<String>>,
) -> impl IntoView {
    view! {
        <div class=move || level.get().class() data-testid=testid>
            <div class="card-label">{label}</div>
            <div class="card-value" data-role="value">{move || value.get()}</div>
            {detail.map(|d| view! { <div class="card-detail">{move || d.get()}</div> })}
        </div>
    }
}

/// Formats a byte count with binary units (e.g. `1.5 GiB`).
pub fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if !bytes.is_finite() || bytes <= 0.0 {
        return "0 B".to_string();
    }
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{} {}", fixed(value, 0), UNITS[unit])
    } else {
        format!("{} {}", fixed(value, 1), UNITS[unit])
    }
}

/// Formats a duration in milliseconds for people (`850 ms`, `2.4 s`).
pub fn format_ms(ms: f64) -> String {
    if !ms.is_finite() {
        "–".to_string()
    } else if ms < 10.0 {
        format!("{} ms", fixed(ms, 2))
    } else if ms < 1000.0 {
        format!("{} ms", fixed(ms, 0))
    } else {
        format!("{} s", fixed(ms / 1000.0, 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_thresholds() {
        assert_eq!(Level::rising(10.0, 70.0, 90.0), Level::Ok);
        assert_eq!(Level::rising(70.0, 70.0, 90.0), Level::Warn);
        assert_eq!(Level::rising(95.0, 70.0, 90.0), Level::Bad);
        assert_eq!(Level::falling(99.5, 99.0, 95.0), Level::Ok);
        assert_eq!(Level::falling(97.0, 99.0, 95.0), Level::Warn);
        assert_eq!(Level::falling(50.0, 99.0, 95.0), Level::Bad);
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format_bytes(0.0), "0 B");
        assert_eq!(format_bytes(512.0), "512 B");
        assert_eq!(format_bytes(1536.0), "1.5 KiB");
        assert_eq!(format_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
        assert_eq!(format_ms(4.5), "4.50 ms");
        assert_eq!(format_ms(250.0), "250 ms");
        assert_eq!(format_ms(2400.0), "2.40 s");
    }
}
