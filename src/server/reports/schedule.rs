//! `--report-every daily|weekly`: after each period (UTC days; weeks from Monday 00:00 UTC)
//! has settled, a report over it is saved like any other, written as self-contained HTML to
//! `DATA_DIR/reports/`, and posted to every configured webhook as JSON
//! (`{"kind": "report", "id", "name", "from_ms", "to_ms", "url", "html"}`).

use std::path::PathBuf;
use std::time::Duration;

use hyper::body::Bytes;
use tokio_util::sync::CancellationToken;

use super::SETTLE_MS;
use crate::model::reports::{ReportRequest, Scope, TimeArg};
use crate::server::alerts::notify::ReceiverKind;
use crate::server::state::AppState;

const DAY_MS: u64 = 86_400_000;
/// 1970-01-01 was a Thursday: Mondays start 4 days after the epoch, modulo 7.
const MONDAY_OFFSET_MS: u64 = 4 * DAY_MS;

/// How often a scheduled report is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    Daily,
    Weekly,
}

impl Every {
    pub fn parse(text: &str) -> Option<Every> {
        match text.trim() {
            "daily" => Some(Every::Daily),
            "weekly" => Some(Every::Weekly),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Every::Daily => "daily",
            Every::Weekly => "weekly",
        }
    }

    /// Start of the period holding `at_ms`.
    fn start_of(self, at_ms: u64) -> u64 {
        match self {
            Every::Daily => at_ms - at_ms % DAY_MS,
            Every::Weekly => {
                let shifted = at_ms.saturating_sub(MONDAY_OFFSET_MS);
                shifted - shifted % (7 * DAY_MS) + MONDAY_OFFSET_MS
            }
        }
    }

    fn length(self) -> u64 {
        match self {
            Every::Daily => DAY_MS,
            Every::Weekly => 7 * DAY_MS,
        }
    }

    /// The last whole period before `now_ms`: `[from, to)`.
    pub fn period_before(self, now_ms: u64) -> (u64, u64) {
        let to = self.start_of(now_ms);
        (to.saturating_sub(self.length()), to)
    }

    /// When the report of the period after the one holding `now_ms`'s start is due: the next
    /// period boundary plus the settling time.
    pub fn next_run(self, now_ms: u64) -> u64 {
        let due = self.start_of(now_ms) + SETTLE_MS;
        if due > now_ms {
            due
        } else {
            self.start_of(now_ms) + self.length() + SETTLE_MS
        }
    }
}

/// Writes the reports as their periods end, until shutdown.
pub async fn run(state: AppState, every: Every, shutdown: CancellationToken) {
    loop {
        let now = crate::server::now_ms();
        let wait = Duration::from_millis(every.next_run(now).saturating_sub(now));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let (from, to) = every.period_before(crate::server::now_ms());
        match write(&state, every, from, to).await {
            Ok(path) => {
                tracing::info!(path = %path.display(), "Wrote the {} report.", every.as_str())
            }
            Err(e) => {
                tracing::warn!(error = %e, "The {} report could not be written.", every.as_str())
            }
        }
    }
}

/// Saves a report over `[from, to)`, writes its HTML into the data directory and posts it to
/// the webhooks; the file written.
pub async fn write(state: &AppState, every: Every, from: u64, to: u64) -> Result<PathBuf, String> {
    let day = crate::charts::rfc3339_utc(from).chars().take(10).collect::<String>();
    let title = match every {
        Every::Daily => format!("Daily report {day}"),
        Every::Weekly => format!("Weekly report from {day}"),
    };
    let request = ReportRequest {
        name: title.clone(),
        from: TimeArg::Ms(from),
        to: Some(TimeArg::Ms(to)),
        scope: Scope::default(),
        baseline: Some(crate::model::reports::RangeArg {
            from: TimeArg::Ms(from.saturating_sub(to - from)),
            to: Some(TimeArg::Ms(from)),
        }),
        apdex_t_ms: None,
    };
    let created = super::create(state, request).await.map_err(|e| e.error)?;
    let report = super::report(state, created.id).await.map_err(|e| e.error)?;
    let html = super::export::html(&report);
    let dir = state.config.data_dir.join("reports");
    let path = dir.join(format!("vitals-{}-{day}.html", every.as_str()));
    let (dir_w, path_w, html_w) = (dir.clone(), path.clone(), html.clone());
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir_w)?;
        std::fs::write(&path_w, html_w)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| {
        format!("cannot write {}: {}", path.display(), crate::server::config::io_reason(&e))
    })?;
    let body = serde_json::json!({
        "kind": "report",
        "id": created.id,
        "name": title,
        "from_ms": from,
        "to_ms": to,
        "url": format!("/reports/{}", created.id),
        "html": html,
    });
    let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    for receiver in state.config.alerts.receivers.iter().filter(|r| r.kind == ReceiverKind::Webhook)
    {
        let sent = crate::server::outbound::post_json(
            &receiver.endpoint,
            body.clone(),
            receiver.token.as_ref(),
            receiver.timeout.max(Duration::from_secs(10)),
        )
        .await;
        if let Err(e) = sent {
            tracing::warn!(url = %receiver.endpoint.shown(), error = %e, "The report could not be posted.");
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-03T10:00:00Z, a Thursday.
    const THURSDAY_10H: u64 = 1_796_292_000_000;

    #[test]
    fn periods_are_utc_days_and_weeks_from_monday() {
        let midnight = THURSDAY_10H - 10 * 3_600_000;
        assert_eq!(Every::Daily.period_before(THURSDAY_10H), (midnight - DAY_MS, midnight));
        // Monday 2026-11-30 00:00 UTC starts the week holding that Thursday.
        let monday = midnight - 3 * DAY_MS;
        assert_eq!(crate::charts::rfc3339_utc(monday), "2026-11-30T00:00:00Z");
        assert_eq!(Every::Weekly.period_before(THURSDAY_10H), (monday - 7 * DAY_MS, monday));
        // Due three minutes after the next boundary; right after a boundary, the same day.
        assert_eq!(Every::Daily.next_run(THURSDAY_10H), midnight + DAY_MS + SETTLE_MS);
        assert_eq!(Every::Daily.next_run(midnight + 1000), midnight + SETTLE_MS);
        assert_eq!(Every::Weekly.next_run(THURSDAY_10H), monday + 7 * DAY_MS + SETTLE_MS);
        assert_eq!(Every::parse("weekly"), Some(Every::Weekly));
        assert_eq!(Every::parse("hourly"), None);
    }
}
