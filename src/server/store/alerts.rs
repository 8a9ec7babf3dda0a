//! The alert tables: rules made through the API, instance states (restored after a restart),
//! the history of transitions with their notification attempts, and silences. Writes go
//! through the writer thread like every other write ([`AlertWrite`]); reads run on the read
//! connections. Rows are JSON where the shape is the wire contract's (`model::alerts`), so a
//! new optional field needs no migration.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use crate::model::alerts::{
    AlertEvent, AlertSpan, AlertState, NotificationAttempt, Rule, Severity, Silence, MAX_SPANS,
};

/// Events one history answer holds at most.
pub const MAX_HISTORY_EVENTS: usize = 1_000;
/// Notification attempts kept per event (retries beyond are counted, not stored).
pub const MAX_ATTEMPTS_PER_EVENT: i64 = 20;

/// One change to the alert tables.
#[derive(Clone, Debug)]
pub enum AlertWrite {
    /// A rule made or changed through the API (`None`: a deleted built-in rule, remembered so
    /// it does not come back).
    PutRule {
        name: String,
        rule: Option<Box<Rule>>,
        at_ms: u64,
    },
    DeleteRule {
        name: String,
    },
    /// An instance's state, stored as JSON, with what identifies it (shared with the engine's
    /// instance, which writes this at every change of state).
    PutInstance {
        id: Arc<str>,
        rule: Arc<str>,
        series: Arc<str>,
        labels: Arc<str>,
        state: Json,
        at_ms: u64,
    },
    DeleteInstance {
        id: String,
    },
    Event(Box<EventRow>),
    Attempt {
        event: u64,
        attempt: NotificationAttempt,
    },
    PutSilence(Box<Silence>),
    DeleteSilence {
        id: u64,
    },
}

/// JSON text the writer stores, made on the writer's thread ([`Json::of`]) or given made
/// (`From<&str>`, `From<String>`). An alert storm hands over hundreds of instance states and
/// label sets a second: serialising them is the writer's work, done off the evaluation whose
/// tick it would lengthen (it was a tenth of an evaluation's CPU in the storm's profile).
#[derive(Clone)]
pub struct Json(Stored);

#[derive(Clone)]
enum Stored {
    Text(Arc<str>),
    Value(Arc<dyn ToJson>),
}

/// A value that can be written as JSON, whatever its type.
trait ToJson: Send + Sync {
    fn to_json(&self) -> String;
}

impl<T: serde::Serialize + Send + Sync> ToJson for T {
    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Json {
    /// `value`, serialised when the writer stores it.
    pub fn of<T: serde::Serialize + Send + Sync + 'static>(value: T) -> Json {
        Json(Stored::Value(Arc::new(value)))
    }

    /// The JSON text.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match &self.0 {
            Stored::Text(text) => std::borrow::Cow::Borrowed(text),
            Stored::Value(value) => std::borrow::Cow::Owned(value.to_json()),
        }
    }
}

impl From<&str> for Json {
    fn from(text: &str) -> Json {
        Json(Stored::Text(text.into()))
    }
}

impl From<String> for Json {
    fn from(text: String) -> Json {
        Json(Stored::Text(text.into()))
    }
}

impl std::fmt::Debug for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        self.text() == other.text()
    }
}

/// A transition as the history keeps it: an [`AlertEvent`] without its notification attempts
/// (stored apart, [`AlertWrite::Attempt`]), with its labels serialised by the writer
/// ([`Json`]) and its names shared with the instance, so that an alert storm's hundreds of
/// transitions a second are handed over without copying a name or building a map for each.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub id: u64,
    pub at_ms: u64,
    pub rule: Arc<str>,
    /// The instance's id.
    pub instance: Arc<str>,
    /// The series as people read it.
    pub series: Arc<str>,
    /// JSON object, keys sorted.
    pub labels: Json,
    pub from: AlertState,
    pub to: AlertState,
    pub severity: Option<Severity>,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub note: &'static str,
}

impl EventRow {
    /// The event as the API and the receivers see it, with `labels` (what [`Self::labels`]
    /// holds as JSON).
    pub fn event(&self, labels: std::collections::BTreeMap<String, String>) -> AlertEvent {
        AlertEvent {
            id: self.id,
            at_ms: self.at_ms,
            rule: self.rule.to_string(),
            instance: self.instance.to_string(),
            series: self.series.to_string(),
            labels,
            from: self.from,
            to: self.to,
            severity: self.severity,
            value: self.value,
            threshold: self.threshold,
            note: self.note.to_string(),
            notifications: Vec::new(),
        }
    }
}

/// Applies `writes` in the writer's open transaction; the rows written.
pub(super) fn apply(conn: &Connection, writes: &[AlertWrite]) -> rusqlite::Result<usize> {
    let mut rows = 0;
    for write in writes {
        rows += match write {
            AlertWrite::PutRule { name, rule, at_ms } => {
                let body = match rule {
                    Some(rule) => serde_json::to_string(rule).unwrap_or_default(),
                    None => String::new(),
                };
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO alert_rule (name, body, deleted, updated_ms) \
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![name, body, rule.is_none(), *at_ms as i64])?
            }
            AlertWrite::DeleteRule { name } => conn
                .prepare_cached("DELETE FROM alert_rule WHERE name = ?1")?
                .execute([name])?,
            AlertWrite::PutInstance { id, rule, series, labels, state, at_ms } => conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO alert_instance \
                     (id, rule, series, labels, state, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![&**id, &**rule, &**series, &**labels, state.text(), *at_ms as i64])?,
            AlertWrite::DeleteInstance { id } => conn
                .prepare_cached("DELETE FROM alert_instance WHERE id = ?1")?
                .execute([id])?,
            AlertWrite::Event(e) => conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO alert_event (id, at_ms, rule, instance, series, labels, \
                     from_state, to_state, severity, value, threshold, note) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    e.id as i64,
                    e.at_ms as i64,
                    &*e.rule,
                    &*e.instance,
                    &*e.series,
                    e.labels.text(),
                    e.from.as_str(),
                    e.to.as_str(),
                    e.severity.map(|s| s.as_str()),
                    e.value,
                    e.threshold,
                    e.note,
                ])?,
            AlertWrite::Attempt { event, attempt } => {
                let held: i64 = conn
                    .prepare_cached("SELECT count(*) FROM alert_notification WHERE event = ?1")?
                    .query_row([*event as i64], |r| r.get(0))?;
                if held >= MAX_ATTEMPTS_PER_EVENT {
                    0
                } else {
                    conn.prepare_cached(
                        "INSERT INTO alert_notification \
                         (event, at_ms, receiver, attempt, outcome, detail) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        *event as i64,
                        attempt.at_ms as i64,
                        attempt.receiver,
                        attempt.attempt,
                        attempt.outcome,
                        attempt.detail,
                    ])?
                }
            }
            AlertWrite::PutSilence(s) => conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO alert_silence (id, body, ends_ms) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![
                    s.id as i64,
                    serde_json::to_string(s).unwrap_or_default(),
                    // Validated to fit; a larger one must not wrap to negative and expire.
                    i64::try_from(s.ends_ms).unwrap_or(i64::MAX)
                ])?,
            AlertWrite::DeleteSilence { id } => conn
                .prepare_cached("DELETE FROM alert_silence WHERE id = ?1")?
                .execute([*id as i64])?,
        };
    }
    Ok(rows)
}

/// Deletes history (events, their attempts) and silences that ended before `before_ms`, at
/// most `limit` rows per table; the rows deleted.
pub(super) fn expire(conn: &Connection, before_ms: u64, limit: u64) -> rusqlite::Result<u64> {
    let before = before_ms as i64;
    let limit = limit as i64;
    let mut n = conn
        .prepare_cached(
            "DELETE FROM alert_event WHERE id IN \
             (SELECT id FROM alert_event WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)",
        )?
        .execute(params![before, limit])?;
    n += conn
        .prepare_cached(
            "DELETE FROM alert_notification WHERE rowid IN \
             (SELECT rowid FROM alert_notification WHERE at_ms < ?1 LIMIT ?2)",
        )?
        .execute(params![before, limit])?;
    n += conn.prepare_cached("DELETE FROM alert_silence WHERE ends_ms < ?1")?.execute([before])?;
    Ok(n as u64)
}

/// What start-up restores.
#[derive(Debug, Default)]
pub struct Saved {
    /// Rules made or changed through the API; `None`: a deleted built-in rule.
    pub rules: Vec<(String, Option<Rule>)>,
    /// (id, rule, series, labels JSON, state JSON).
    pub instances: Vec<(String, String, String, String, String)>,
    pub silences: Vec<Silence>,
    pub last_event_id: u64,
}

/// Reads everything the alert engine restores.
pub fn load(conn: &Connection) -> rusqlite::Result<Saved> {
    let mut saved = Saved::default();
    let mut stmt = conn.prepare("SELECT name, body, deleted FROM alert_rule ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?))
    })?;
    for row in rows {
        let (name, body, deleted) = row?;
        if deleted {
            saved.rules.push((name, None));
        } else if let Ok(rule) = serde_json::from_str::<Rule>(&body) {
            saved.rules.push((name, Some(rule)));
        } else {
            tracing::warn!(rule = %name, "A stored alert rule cannot be read; it is ignored.");
        }
    }
    let mut stmt = conn.prepare("SELECT id, rule, series, labels, state FROM alert_instance")?;
    let rows =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
    for row in rows {
        saved.instances.push(row?);
    }
    let mut stmt = conn.prepare("SELECT body FROM alert_silence ORDER BY id")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    for row in rows {
        if let Ok(silence) = serde_json::from_str::<Silence>(&row?) {
            saved.silences.push(silence);
        }
    }
    saved.last_event_id = conn
        .query_row("SELECT max(id) FROM alert_event", [], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten()
        .unwrap_or(0)
        .max(0) as u64;
    Ok(saved)
}

/// Which events a history query keeps.
#[derive(Clone, Debug, Default)]
pub struct HistoryFilter {
    pub from_ms: u64,
    pub to_ms: u64,
    pub rule: Option<String>,
    pub severity: Option<String>,
    /// Free text found in the rule, the series, the labels or the note.
    pub q: Option<String>,
    pub limit: usize,
}

/// Events in `[from, to)` that `filter` keeps, newest first, with their notification
/// attempts; and whether more matched than `filter.limit`.
pub fn history(
    conn: &Connection,
    filter: &HistoryFilter,
) -> rusqlite::Result<(Vec<AlertEvent>, bool)> {
    let limit = filter.limit.clamp(1, MAX_HISTORY_EVENTS);
    let like = filter.q.as_ref().map(|q| {
        let escaped = q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        format!("%{escaped}%")
    });
    let mut stmt = conn.prepare_cached(
        "SELECT id, at_ms, rule, instance, series, labels, from_state, to_state, severity, value, \
         threshold, note FROM alert_event \
         WHERE at_ms >= ?1 AND at_ms < ?2 AND (?3 IS NULL OR rule = ?3) \
         AND (?4 IS NULL OR severity = ?4) \
         AND (?5 IS NULL OR rule LIKE ?5 ESCAPE '\\' OR series LIKE ?5 ESCAPE '\\' \
              OR labels LIKE ?5 ESCAPE '\\' OR note LIKE ?5 ESCAPE '\\') \
         ORDER BY at_ms DESC, id DESC LIMIT ?6",
    )?;
    let rows = stmt.query_map(
        params![
            filter.from_ms as i64,
            filter.to_ms.min(i64::MAX as u64) as i64,
            filter.rule,
            filter.severity,
            like,
            (limit + 1) as i64
        ],
        |r| {
            let state = |i: usize| -> rusqlite::Result<crate::model::alerts::AlertState> {
                let text: String = r.get(i)?;
                Ok(serde_json::from_value(serde_json::Value::String(text)).unwrap_or_default())
            };
            let severity: Option<String> = r.get(8)?;
            let labels: String = r.get(5)?;
            Ok(AlertEvent {
                id: r.get::<_, i64>(0)?.max(0) as u64,
                at_ms: r.get::<_, i64>(1)?.max(0) as u64,
                rule: r.get(2)?,
                instance: r.get(3)?,
                series: r.get(4)?,
                labels: serde_json::from_str(&labels).unwrap_or_default(),
                from: state(6)?,
                to: state(7)?,
                severity: severity.as_deref().and_then(crate::model::alerts::Severity::parse),
                value: r.get(9)?,
                threshold: r.get(10)?,
                note: r.get(11)?,
                notifications: Vec::new(),
            })
        },
    )?;
    let mut events = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let truncated = events.len() > limit;
    events.truncate(limit);
    let mut attempts = conn.prepare_cached(
        "SELECT at_ms, receiver, attempt, outcome, detail FROM alert_notification \
         WHERE event = ?1 ORDER BY at_ms, rowid",
    )?;
    for event in &mut events {
        let rows = attempts.query_map([event.id as i64], |r| {
            Ok(NotificationAttempt {
                at_ms: r.get::<_, i64>(0)?.max(0) as u64,
                receiver: r.get(1)?,
                attempt: r.get(2)?,
                outcome: r.get(3)?,
                detail: r.get(4)?,
            })
        })?;
        event.notifications = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok((events, truncated))
}

/// The firing spans of alert instances overlapping `[from_ms, to_ms)`, oldest first, of the
/// instances whose labels hold every `(label, value)` of `labels`: an instance firing at
/// `from_ms` starts its span there (its state is read from the last event before), one still
/// firing at `to_ms` has no end. At most [`MAX_SPANS`], the longest kept.
pub fn spans(
    conn: &Connection,
    from_ms: u64,
    to_ms: u64,
    labels: &[(String, String)],
) -> rusqlite::Result<(Vec<AlertSpan>, bool)> {
    struct Row {
        at_ms: u64,
        rule: String,
        instance: String,
        series: String,
        labels: String,
        to: AlertState,
        severity: Option<Severity>,
    }
    let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Row> {
        let state: String = r.get(5)?;
        let severity: Option<String> = r.get(6)?;
        Ok(Row {
            at_ms: r.get::<_, i64>(0)?.max(0) as u64,
            rule: r.get(1)?,
            instance: r.get(2)?,
            series: r.get(3)?,
            labels: r.get(4)?,
            to: serde_json::from_value(serde_json::Value::String(state)).unwrap_or_default(),
            severity: severity.as_deref().and_then(Severity::parse),
        })
    };
    let (from, to) = (from_ms.min(i64::MAX as u64) as i64, to_ms.min(i64::MAX as u64) as i64);
    // Each instance's state at `from` (SQLite takes the other columns from the MAX row).
    let mut before = conn.prepare_cached(
        "SELECT MAX(at_ms), rule, instance, series, labels, to_state, severity FROM alert_event \
         WHERE at_ms < ?1 GROUP BY instance",
    )?;
    let mut during = conn.prepare_cached(
        "SELECT at_ms, rule, instance, series, labels, to_state, severity FROM alert_event \
         WHERE at_ms >= ?1 AND at_ms < ?2 ORDER BY at_ms, id",
    )?;
    let keeps = |row: &Row| {
        labels.is_empty() || {
            let held: std::collections::BTreeMap<String, String> =
                serde_json::from_str(&row.labels).unwrap_or_default();
            labels.iter().all(|(k, v)| held.get(k) == Some(v))
        }
    };
    // Memory stays bounded whatever the range holds: open spans are at most one per
    // instance, and the ended ones are cut back to the longest MAX_SPANS whenever twice that
    // many have piled up.
    let length = |s: &AlertSpan| s.to_ms.unwrap_or(to_ms).saturating_sub(s.from_ms);
    let keep_longest = |spans: &mut Vec<AlertSpan>| {
        if spans.len() > MAX_SPANS {
            spans.sort_by_key(|s| std::cmp::Reverse(length(s)));
            spans.truncate(MAX_SPANS);
            true
        } else {
            false
        }
    };
    let mut truncated = false;
    let mut open: HashMap<String, AlertSpan> = HashMap::new();
    let mut done = Vec::new();
    let mut apply = |row: Row, at_ms: u64| {
        if row.to.is_active() {
            let severity = row.severity.unwrap_or(Severity::Warning);
            open.entry(row.instance)
                .and_modify(|s| s.severity = s.severity.max(severity))
                .or_insert(AlertSpan {
                    rule: row.rule,
                    series: row.series,
                    severity,
                    from_ms: at_ms,
                    to_ms: None,
                });
        } else if let Some(mut span) = open.remove(&row.instance) {
            // One that ended right at the range's start does not overlap it.
            if at_ms > span.from_ms {
                span.to_ms = Some(at_ms);
                done.push(span);
                if done.len() >= 2 * MAX_SPANS {
                    truncated |= keep_longest(&mut done);
                }
            }
        }
    };
    for row in before.query_map([from], read)? {
        let row = row?;
        if row.to.is_active() && keeps(&row) {
            apply(row, from_ms);
        }
    }
    for row in during.query_map([from, to], read)? {
        let row = row?;
        if keeps(&row) {
            let at_ms = row.at_ms;
            apply(row, at_ms);
        }
    }
    done.extend(open.into_values());
    truncated |= keep_longest(&mut done);
    done.sort_by(|a, b| (a.from_ms, &a.rule, &a.series).cmp(&(b.from_ms, &b.rule, &b.series)));
    Ok((done, truncated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64, at_ms: u64, instance: &str, to: AlertState) -> AlertWrite {
        AlertWrite::Event(Box::new(EventRow {
            id,
            at_ms,
            rule: "slow".into(),
            instance: instance.into(),
            series: instance.into(),
            labels: "{}".into(),
            from: AlertState::Inactive,
            to,
            severity: Some(Severity::Warning),
            value: None,
            threshold: None,
            note: "",
        }))
    }

    #[test]
    fn spans_keep_the_longest_when_the_range_holds_too_many() {
        let sql = super::super::schema::sql();
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrations(&sql).to_latest(&mut conn).unwrap();
        // 5 × MAX_SPANS spans of one instance each, instance i firing for i + 1 seconds, one
        // after another; then one still firing at the end of the range.
        let n = 5 * MAX_SPANS as u64;
        let mut writes = Vec::new();
        let mut at = 1_000_000;
        for i in 0..n {
            writes.push(event(2 * i, at, &format!("i{i}"), AlertState::Firing));
            at += (i + 1) * 1000;
            writes.push(event(2 * i + 1, at, &format!("i{i}"), AlertState::Resolved));
        }
        writes.push(event(2 * n, at, "open", AlertState::Firing));
        apply(&conn, &writes).unwrap();
        let to = at + 10_000_000;
        let (kept, truncated) = spans(&conn, 0, to, &[]).unwrap();
        assert!(truncated);
        assert_eq!(kept.len(), MAX_SPANS);
        // The open span is the longest; then the 199 longest closed ones.
        let mut lengths: Vec<u64> =
            kept.iter().map(|s| s.to_ms.unwrap_or(to) - s.from_ms).collect();
        lengths.sort_unstable();
        let shortest_kept = (n - MAX_SPANS as u64 + 2) * 1000;
        assert_eq!(lengths.first().copied(), Some(shortest_kept), "{lengths:?}");
        assert!(kept.iter().any(|s| s.series == "open" && s.to_ms.is_none()));
        assert!(kept.windows(2).all(|w| w[0].from_ms <= w[1].from_ms), "oldest first");
        // Few enough: all of them, not truncated.
        let (some, truncated) = spans(&conn, 0, 1_000_000 + 10_000, &[]).unwrap();
        assert!(!truncated);
        assert_eq!(some.len(), 4);
    }
}
