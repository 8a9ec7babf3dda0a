//! Notifications: webhooks and Prometheus Alertmanager. Each receiver is a task with a bounded
//! queue; the evaluation only queues (never waits), so a receiver that is down, slow or
//! answers garbage never delays it. A failed send is retried with backoff (1, 2, 4, 8 s), each
//! attempt is stored with the event it belongs to, and the receiver's counters are shown on
//! the Alerts page and in `/metrics`.
//!
//! - **Webhook** (`--webhook URL`, `[[alerts.webhooks]]`): one POST per notified transition,
//!   the JSON of [`WebhookPayload`] (documented in the README).
//! - **Alertmanager** (`--alertmanager URL`): `POST {URL}/api/v2/alerts` with the alert's
//!   labels, annotations, `startsAt`, `endsAt` and `generatorURL`; firing alerts are re-sent
//!   every [`RESEND_EVERY`] with `endsAt` four resends ahead, as Prometheus does, so an
//!   Alertmanager that restarted learns them again and one that stops hearing resolves them.
//!   A notice its full queue cannot take is not lost for it: the alert's latest state waits
//!   beside the queue (one per alert, at most [`OVERFLOW_CAPACITY`]) and is sent once the
//!   queue is empty, so an alert that resolved meanwhile is ended there, not re-sent firing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use hyper::body::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::alerts::{
    AlertEvent, AlertInstance, AlertState, NotificationAttempt, ReceiverStats,
};
use crate::server::config::Secret;
use crate::server::outbound::{post_json, Endpoint};
use crate::server::store::alerts::AlertWrite;
use crate::server::store::Store;

/// Notifications a receiver queues before new ones are dropped (and counted).
pub const QUEUE_CAPACITY: usize = 1_000;
/// Attempts per notification: the first and three retries.
pub const ATTEMPTS: u32 = 4;
/// Alerts whose latest state waits beside a full Alertmanager queue (see the module's docs).
pub const OVERFLOW_CAPACITY: usize = 10_000;
/// How often firing alerts are re-sent to Alertmanager.
pub const RESEND_EVERY: Duration = Duration::from_secs(60);
/// Default time a receiver has to answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A receiver as configured.
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    pub kind: ReceiverKind,
    pub endpoint: Endpoint,
    pub timeout: Duration,
    /// Sent as `Authorization: Bearer`; never logged.
    pub token: Option<Secret>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiverKind {
    Webhook,
    Alertmanager,
}

impl ReceiverConfig {
    /// How logs, the API and the alerts' history name it (its URL without the query).
    pub fn name(&self) -> String {
        match self.kind {
            ReceiverKind::Webhook => format!("webhook {}", self.endpoint.shown()),
            ReceiverKind::Alertmanager => format!("alertmanager {}", self.endpoint.shown()),
        }
    }
}

/// The webhook's JSON body: the transition, the alert as it is now, and the rule's texts.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookPayload {
    /// Payload version: 1.
    pub version: u32,
    /// `firing` or `resolved`.
    pub status: &'static str,
    /// The transition (its `notifications` are empty here).
    pub event: AlertEvent,
    pub alert: AlertInstance,
    pub runbook: String,
    /// Where the Alerts page shows it, when the server knows its own URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One alert as Alertmanager's v2 API takes it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AmAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "String::is_empty")]
    pub generator_url: String,
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The Alertmanager form of `alert` at `now_ms`: firing ones end four resends ahead (so they
/// expire if Vitals goes away), resolved ones end now.
pub fn am_alert(alert: &AlertInstance, runbook: &str, now_ms: u64, base_url: &str) -> AmAlert {
    let mut annotations = BTreeMap::new();
    if !alert.summary.is_empty() {
        annotations.insert("summary".to_string(), alert.summary.clone());
    }
    if !runbook.is_empty() {
        annotations.insert("runbook".to_string(), runbook.to_string());
    }
    if let Some(v) = alert.value {
        annotations.insert("value".to_string(), format!("{v}"));
    }
    let started = alert.active_since_ms.unwrap_or(alert.since_ms);
    let ends =
        if alert.state.is_active() { now_ms + 4 * RESEND_EVERY.as_millis() as u64 } else { now_ms };
    AmAlert {
        labels: alert.labels.clone(),
        annotations,
        starts_at: rfc3339(started),
        ends_at: rfc3339(ends.max(started)),
        generator_url: if base_url.is_empty() {
            String::new()
        } else {
            format!("{base_url}/alerts?rule={}", crate::model::percent_encode(&alert.rule))
        },
    }
}

/// A notification for the receivers.
#[derive(Clone, Debug)]
pub struct Notice {
    pub event: AlertEvent,
    pub alert: AlertInstance,
    pub runbook: String,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
    last_error: Mutex<Option<String>>,
}

struct Receiver {
    name: String,
    tx: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    /// Alertmanager: the latest state of each alert its full queue could not take.
    overflow: Option<Arc<Overflow>>,
}

/// The latest state (and runbook) of each alert whose notice a full Alertmanager queue could
/// not take, by alert id. The lock is held while a notice is queued, so an entry is always
/// newer than every queued notice of its alert, and the worker takes the entries only when
/// the queue is empty.
type Overflow = Mutex<HashMap<String, (AlertInstance, String)>>;

/// What a receiver's task is handed.
enum Job {
    Notice(Box<Notice>),
    /// The alerts still firing at start-up that receivers heard of before the restart: an
    /// Alertmanager is sent them again at once (it forgets an alert it is not re-sent); a
    /// webhook has heard of them already.
    Replay(Vec<(AlertInstance, String)>),
}

/// Every receiver; cheap to share.
#[derive(Clone, Default)]
pub struct Notifier {
    receivers: Arc<Vec<Receiver>>,
}

impl Notifier {
    /// Starts one task per receiver. `base_url` is the server's own URL for links (may be
    /// empty).
    pub fn start(
        configs: Vec<ReceiverConfig>,
        store: Store,
        base_url: String,
        shutdown: CancellationToken,
    ) -> Notifier {
        let receivers = configs
            .into_iter()
            .map(|config| {
                let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
                let counters = Arc::new(Counters::default());
                let name = config.name();
                let overflow = (config.kind == ReceiverKind::Alertmanager).then(Arc::default);
                let worker = Worker {
                    name: name.clone(),
                    config,
                    counters: Arc::clone(&counters),
                    store: store.clone(),
                    base_url: base_url.clone(),
                    active: BTreeMap::new(),
                    overflow: overflow.clone(),
                };
                tokio::spawn(worker.run(rx, shutdown.clone()));
                Receiver { name, tx, counters, overflow }
            })
            .collect();
        Notifier { receivers: Arc::new(receivers) }
    }

    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty()
    }

    /// Queues `notice` for every receiver; a full queue drops it for that receiver and
    /// records the drop (an Alertmanager keeps the alert's state beside its queue instead).
    /// Returns the attempts to record now (drops).
    pub fn send(&self, notice: &Notice, now_ms: u64) -> Vec<NotificationAttempt> {
        let mut dropped = Vec::new();
        for r in self.receivers.iter() {
            let mut overflow = r.overflow.as_ref().and_then(|o| o.lock().ok());
            let detail = match r.tx.try_send(Job::Notice(Box::new(notice.clone()))) {
                Ok(()) => {
                    r.counters.queued.fetch_add(1, Ordering::Relaxed);
                    // Queued after it: the waiting state is older now.
                    if let Some(waiting) = overflow.as_mut() {
                        waiting.remove(&notice.alert.id);
                    }
                    continue;
                }
                Err(_) => match overflow.as_mut() {
                    Some(waiting)
                        if waiting.len() < OVERFLOW_CAPACITY
                            || waiting.contains_key(&notice.alert.id) =>
                    {
                        let state = (notice.alert.clone(), notice.runbook.clone());
                        waiting.insert(notice.alert.id.clone(), state);
                        format!(
                            "the queue of {QUEUE_CAPACITY} is full: its state is sent when the \
                             queue is empty"
                        )
                    }
                    _ => format!("the queue of {QUEUE_CAPACITY} is full"),
                },
            };
            r.counters.dropped.fetch_add(1, Ordering::Relaxed);
            dropped.push(NotificationAttempt {
                at_ms: now_ms,
                receiver: r.name.clone(),
                attempt: 0,
                outcome: "dropped".to_string(),
                detail,
            });
        }
        dropped
    }

    /// Hands every Alertmanager the alerts (with their runbooks) that were firing, and
    /// notified, when Vitals stopped (see [`Job::Replay`]).
    pub fn replay(&self, firing: Vec<(AlertInstance, String)>) {
        if firing.is_empty() {
            return;
        }
        for r in self.receivers.iter() {
            // At start-up the queue is empty; a full one would re-send them within a minute.
            let _ = r.tx.try_send(Job::Replay(firing.clone()));
        }
    }

    /// Notifications that failed for good, over all receivers.
    pub fn failures(&self) -> u64 {
        self.receivers.iter().map(|r| r.counters.failed.load(Ordering::Relaxed)).sum()
    }

    pub fn stats(&self) -> Vec<ReceiverStats> {
        self.receivers
            .iter()
            .map(|r| {
                let c = &r.counters;
                ReceiverStats {
                    receiver: r.name.clone(),
                    sent: c.sent.load(Ordering::Relaxed),
                    retried: c.retried.load(Ordering::Relaxed),
                    failed: c.failed.load(Ordering::Relaxed),
                    dropped: c.dropped.load(Ordering::Relaxed),
                    queued: c.queued.load(Ordering::Relaxed),
                    last_error: c.last_error.lock().ok().and_then(|e| e.clone()),
                }
            })
            .collect()
    }
}

struct Worker {
    name: String,
    config: ReceiverConfig,
    counters: Arc<Counters>,
    store: Store,
    base_url: String,
    /// Alertmanager: the firing alerts, by instance id, re-sent every [`RESEND_EVERY`].
    active: BTreeMap<String, (AlertInstance, String)>,
    /// Alertmanager: what its full queue could not take.
    overflow: Option<Arc<Overflow>>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>, shutdown: CancellationToken) {
        let mut resend = tokio::time::interval(RESEND_EVERY);
        resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resend.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                job = rx.recv() => match job {
                    None => return,
                    Some(Job::Notice(notice)) => {
                        self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                        self.deliver(*notice, &shutdown).await;
                        self.send_overflow(&rx).await;
                    }
                    Some(Job::Replay(firing)) => {
                        if self.config.kind == ReceiverKind::Alertmanager {
                            self.active.extend(firing.into_iter().map(|(a, r)| (a.id.clone(), (a, r))));
                            self.resend().await;
                        }
                    }
                },
                _ = resend.tick(), if self.config.kind == ReceiverKind::Alertmanager => {
                    self.send_overflow(&rx).await;
                    self.resend().await;
                }
            }
        }
    }

    fn body(&mut self, notice: &Notice) -> Bytes {
        let now = crate::server::now_ms();
        let json = match self.config.kind {
            ReceiverKind::Webhook => {
                let mut event = notice.event.clone();
                event.notifications.clear();
                serde_json::to_vec(&WebhookPayload {
                    version: 1,
                    status: if notice.alert.state.is_active() { "firing" } else { "resolved" },
                    event,
                    alert: notice.alert.clone(),
                    runbook: notice.runbook.clone(),
                    url: (!self.base_url.is_empty()).then(|| {
                        format!(
                            "{}/alerts?rule={}",
                            self.base_url,
                            crate::model::percent_encode(&notice.alert.rule)
                        )
                    }),
                })
            }
            ReceiverKind::Alertmanager => {
                serde_json::to_vec(&self.am_alerts(&notice.alert, &notice.runbook, now))
            }
        };
        Bytes::from(json.unwrap_or_default())
    }

    /// Alertmanager: notes `alert` as sent (a firing one is re-sent from now on, another is
    /// not) and returns what to post: the alert, and, when its labels changed, the set it was
    /// sent firing with, ended. Alertmanager tells alerts apart by their labels: without the
    /// end (a new severity, a rule's labels edited or gone), the old set would stay firing
    /// there until it timed out.
    fn am_alerts(&mut self, alert: &AlertInstance, runbook: &str, now: u64) -> Vec<AmAlert> {
        let sent = if alert.state.is_active() {
            self.active.insert(alert.id.clone(), (alert.clone(), runbook.to_string()))
        } else {
            self.active.remove(&alert.id)
        };
        let mut alerts = vec![am_alert(alert, runbook, now, &self.base_url)];
        if let Some((old, runbook)) = sent.filter(|(old, _)| old.labels != alert.labels) {
            let ended = AlertInstance { state: AlertState::Resolved, ..old };
            alerts.push(am_alert(&ended, &runbook, now, &self.base_url));
        }
        alerts
    }

    async fn deliver(&mut self, notice: Notice, shutdown: &CancellationToken) {
        let body = self.body(&notice);
        for attempt in 1..=ATTEMPTS {
            let result = self.post(body.clone()).await;
            let last = attempt == ATTEMPTS;
            let outcome = match &result {
                Ok(()) => "sent",
                Err(_) if last => "failed",
                Err(_) => "retrying",
            };
            let detail = result.as_ref().err().cloned().unwrap_or_default();
            match &result {
                Ok(()) => self.counters.sent.fetch_add(1, Ordering::Relaxed),
                Err(_) if last => self.counters.failed.fetch_add(1, Ordering::Relaxed),
                Err(_) => self.counters.retried.fetch_add(1, Ordering::Relaxed),
            };
            if result.is_ok() {
                if let Ok(mut last_error) = self.counters.last_error.lock() {
                    *last_error = None;
                }
            }
            if let Err(e) = &result {
                tracing::warn!(receiver = %self.name, attempt, error = %e, "An alert notification failed.");
                if let Ok(mut last_error) = self.counters.last_error.lock() {
                    *last_error = Some(e.clone());
                }
            }
            self.store.write_alerts(vec![AlertWrite::Attempt {
                event: notice.event.id,
                attempt: NotificationAttempt {
                    at_ms: crate::server::now_ms(),
                    receiver: self.name.clone(),
                    attempt,
                    outcome: outcome.to_string(),
                    detail,
                },
            }]);
            if result.is_ok() || last {
                return;
            }
            let backoff = Duration::from_secs(1 << (attempt - 1));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
        }
    }

    async fn post(&self, body: Bytes) -> Result<(), String> {
        let endpoint = match self.config.kind {
            ReceiverKind::Webhook => self.config.endpoint.clone(),
            ReceiverKind::Alertmanager => self.config.endpoint.with_path("/api/v2/alerts"),
        };
        post_json(&endpoint, body, self.config.token.as_ref(), self.config.timeout).await
    }

    /// Once the queue is empty, sends the states that waited beside it (one request): the
    /// firing ones join those re-sent, the others are ended. A failure is counted; the firing
    /// ones go again with the next resend, and an ended one is no longer re-sent, so
    /// Alertmanager resolves it by itself when its `endsAt` passes.
    async fn send_overflow(&mut self, rx: &mpsc::Receiver<Job>) {
        let waiting = {
            let Some(Ok(mut overflow)) = self.overflow.as_ref().map(|o| o.lock()) else { return };
            // Under the lock no notice is being queued: an empty queue holds nothing older.
            if overflow.is_empty() || !rx.is_empty() {
                return;
            }
            std::mem::take(&mut *overflow)
        };
        let now = crate::server::now_ms();
        let mut alerts = Vec::with_capacity(waiting.len());
        for (alert, runbook) in waiting.into_values() {
            alerts.extend(self.am_alerts(&alert, &runbook, now));
        }
        let body = Bytes::from(serde_json::to_vec(&alerts).unwrap_or_default());
        match self.post(body).await {
            Ok(()) => self.counters.sent.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                tracing::warn!(receiver = %self.name, error = %e, "Sending alerts that waited failed.");
                self.counters.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    /// Re-sends every firing alert to Alertmanager (one request); failures are counted, the
    /// next resend tries again.
    async fn resend(&mut self) {
        if self.active.is_empty() {
            return;
        }
        let now = crate::server::now_ms();
        // An alert whose newer state waits beside the queue, no longer active, is not re-sent
        // firing meanwhile.
        let ended: std::collections::HashSet<String> = match self.overflow.as_ref() {
            Some(o) => o.lock().map_or_else(
                |_| Default::default(),
                |w| {
                    w.iter()
                        .filter(|(_, (a, _))| !a.state.is_active())
                        .map(|(id, _)| id.clone())
                        .collect()
                },
            ),
            None => Default::default(),
        };
        let alerts: Vec<AmAlert> = self
            .active
            .values()
            .filter(|(a, _)| a.state == AlertState::Firing || a.state == AlertState::Recovering)
            .filter(|(a, _)| !ended.contains(&a.id))
            .map(|(a, runbook)| am_alert(a, runbook, now, &self.base_url))
            .collect();
        let body = Bytes::from(serde_json::to_vec(&alerts).unwrap_or_default());
        if let Err(e) = self.post(body).await {
            self.counters.retried.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(receiver = %self.name, error = %e, "Re-sending firing alerts failed.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::alerts::Severity;

    fn alert(state: AlertState) -> AlertInstance {
        AlertInstance {
            id: "ab12".into(),
            rule: "checkout slow".into(),
            series: "api.checkout".into(),
            labels: BTreeMap::from([
                ("alertname".to_string(), "checkout slow".to_string()),
                ("severity".to_string(), "critical".to_string()),
                ("operation".to_string(), "api.checkout".to_string()),
            ]),
            state,
            severity: Some(Severity::Critical),
            value: Some(2500.0),
            threshold: Some(2000.0),
            since_ms: 1_700_000_060_000,
            active_since_ms: Some(1_700_000_000_000),
            flapping: false,
            acknowledged: false,
            silenced_by: None,
            summary: "p95 2500 ms".into(),
            unit: "ms".into(),
        }
    }

    #[test]
    fn alertmanager_alerts_carry_labels_annotations_and_times() {
        let now = 1_700_000_100_000;
        let firing = am_alert(&alert(AlertState::Firing), "https://wiki/run", now, "http://v:3000");
        let json = serde_json::to_value(&firing).unwrap();
        assert_eq!(json["labels"]["alertname"], "checkout slow");
        assert_eq!(json["annotations"]["summary"], "p95 2500 ms");
        assert_eq!(json["annotations"]["runbook"], "https://wiki/run");
        assert_eq!(json["startsAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(json["endsAt"], "2023-11-14T22:19:00.000Z", "four resends ahead");
        assert_eq!(json["generatorURL"], "http://v:3000/alerts?rule=checkout%20slow");
        let resolved = am_alert(&alert(AlertState::Resolved), "", now, "");
        assert_eq!(resolved.ends_at, rfc3339(now));
        let json = serde_json::to_value(&resolved).unwrap();
        assert!(json.get("generatorURL").is_none());
    }

    fn notice(id: &str, state: AlertState) -> Notice {
        let alert = AlertInstance {
            id: id.into(),
            labels: BTreeMap::from([("alertname".to_string(), id.to_string())]),
            ..alert(state)
        };
        let event = AlertEvent {
            id: 1,
            at_ms: alert.since_ms,
            rule: alert.rule.clone(),
            instance: alert.id.clone(),
            series: alert.series.clone(),
            labels: alert.labels.clone(),
            from: AlertState::Pending,
            to: state,
            severity: alert.severity,
            value: alert.value,
            threshold: alert.threshold,
            note: String::new(),
            notifications: Vec::new(),
        };
        Notice { event, alert, runbook: String::new() }
    }

    #[tokio::test]
    async fn an_end_a_full_queue_could_not_take_reaches_alertmanager_once_it_empties() {
        use axum::routing::post;
        // An Alertmanager that holds every request until the gate opens.
        let (gate, opened) = tokio::sync::watch::channel(false);
        let heard: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
        let log = Arc::clone(&heard);
        let app = axum::Router::new().route(
            "/api/v2/alerts",
            post(move |body: Bytes| {
                let (mut opened, log) = (opened.clone(), Arc::clone(&log));
                async move {
                    let _ = opened.wait_for(|open| *open).await;
                    let alerts: Vec<serde_json::Value> =
                        serde_json::from_slice(&body).unwrap_or_default();
                    log.lock().unwrap().extend(alerts);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(crate::server::store::StoreConfig::new(dir.path())).unwrap();
        let config = ReceiverConfig {
            kind: ReceiverKind::Alertmanager,
            endpoint: Endpoint::at(addr, "/"),
            timeout: Duration::from_secs(60),
            token: None,
        };
        let notifier = Notifier::start(vec![config], store, String::new(), Default::default());
        let now = crate::server::now_ms();
        assert!(notifier.send(&notice("checkout", AlertState::Firing), now).is_empty());
        // Other alerts fill the queue behind it.
        let mut filled = false;
        for i in 0..2 * QUEUE_CAPACITY {
            if !notifier.send(&notice(&format!("other {i}"), AlertState::Firing), now).is_empty() {
                filled = true;
                break;
            }
        }
        assert!(filled, "the queue never filled");
        // The alert resolves while the queue is full.
        let dropped = notifier.send(&notice("checkout", AlertState::Resolved), now);
        assert!(dropped[0].detail.contains("sent when the queue is empty"), "{dropped:?}");
        gate.send_replace(true);
        // Ended: its `endsAt` is now, not four resends ahead as a firing one's.
        let soon = rfc3339(now + RESEND_EVERY.as_millis() as u64);
        let ended = |heard: &[serde_json::Value]| {
            heard.iter().any(|a| {
                a["labels"]["alertname"] == "checkout"
                    && a["endsAt"].as_str().is_some_and(|t| t < soon.as_str())
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !ended(&heard.lock().unwrap()) {
            assert!(std::time::Instant::now() < deadline, "Alertmanager never heard the end");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
