//! The alert engine against a real store and metrics: rules in force and who wins, evaluation
//! of operation rules per series, history, silences, acknowledgements, and state restored
//! after a restart.

use std::time::Duration;

use super::*;
use crate::model::alerts::{Matcher, OpStat, Silence, Target, Threshold};
use crate::model::ops::{LatencyThresholds, Window};
use crate::server::metrics::{Limits, Protocol, Timing};
use crate::server::store::StoreConfig;

struct Fixture {
    alerts: Arc<Alerts>,
    app: Arc<AppMetrics>,
    store: Store,
    _dir: tempfile::TempDir,
}

fn open(dir: tempfile::TempDir, config: AlertsConfig) -> Fixture {
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    let app = AppMetrics::new(Limits::default(), LatencyThresholds::default(), now() - 600_000);
    let hub = Hub::new(1000, 10, 10);
    let alerts = Alerts::new(
        config,
        store.clone(),
        hub,
        Arc::clone(&app),
        Arc::new(crate::server::reports::Reports::new(Default::default())),
        CancellationToken::new(),
    );
    Fixture { alerts, app, store, _dir: dir }
}

fn now() -> u64 {
    crate::server::now_ms()
}

fn slow_rule() -> Rule {
    let mut r =
        Rule::new("checkout slow", Target::operation("api.checkout*", OpStat::P95, Window::M1));
    r.warning = Some(Threshold::above(500.0, 400.0));
    r.critical = Some(Threshold::above(2000.0, 1500.0));
    r.min_count = 5;
    r.labels.insert("team".into(), "web".into());
    r.summary = "{{series}} p95 {{value}} ms".into();
    r
}

fn record(app: &AppMetrics, name: &str, ms: f64, n: usize, at: u64) {
    let mut m = app.lock();
    for _ in 0..n {
        m.timing(Protocol::Http, Timing::operation(name, ms, at), at);
    }
}

/// A silence of the operations `glob` names, for an hour from `t`.
fn silence_for_an_hour(glob: &str, t: u64) -> Silence {
    Silence {
        id: 0,
        matchers: vec![Matcher { label: "operation".into(), value: glob.into() }],
        starts_ms: 0,
        ends_ms: t + 3_600_000,
        comment: "deploy".into(),
        created_by: "ops".into(),
    }
}

fn no_defaults() -> AlertsConfig {
    AlertsConfig { default_rules: false, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operation_rule_fires_per_series_is_stored_and_restored_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    f.alerts.put_rule(slow_rule(), true).unwrap();
    let t = now();
    record(&f.app, "api.checkout", 3000.0, 10, t - 1000);
    record(&f.app, "api.checkout.v2", 100.0, 10, t - 1000);
    record(&f.app, "db.query", 9000.0, 10, t - 1000);
    let system = SystemMetrics::default();
    f.alerts.evaluate(&system, t);
    let view = f.alerts.now(t);
    assert_eq!(view.alerts.len(), 1, "{:?}", view.alerts);
    let alert = &view.alerts[0];
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!(alert.severity, Some(Severity::Critical));
    assert_eq!(alert.labels["operation"], "api.checkout");
    assert_eq!(alert.labels["team"], "web");
    assert_eq!(alert.labels["alertname"], "checkout slow");
    assert!(alert.summary.starts_with("api.checkout p95 "), "{}", alert.summary);
    assert_eq!(view.counts.critical, 1);
    assert!(f.store.flush(Duration::from_secs(10)));
    let filter = crate::server::store::alerts::HistoryFilter {
        from_ms: 0,
        to_ms: u64::MAX / 2,
        limit: 10,
        ..Default::default()
    };
    let (events, _) =
        f.store.readers().with(|c| crate::server::store::alerts::history(c, &filter)).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].from, events[0].to, events[0].note.as_str()),
        (AlertState::Inactive, AlertState::Firing, "fired")
    );
    // The history names the alert as the live list does.
    assert_eq!(events[0].labels, alert.labels);
    assert_eq!((&events[0].rule, &events[0].series), (&alert.rule, &alert.series));
    assert_eq!(events[0].instance, alert.id);
    // Still firing: its band has no end, and only its operation's charts draw it.
    let spans = |labels: &[(String, String)]| {
        f.store
            .readers()
            .with(|c| crate::server::store::alerts::spans(c, t - 1000, t + 5000, labels))
            .unwrap()
            .0
    };
    let of = |op: &str| vec![("operation".to_string(), op.to_string())];
    let ongoing = spans(&of("api.checkout"));
    assert_eq!(ongoing.len(), 1, "{ongoing:?}");
    assert_eq!((ongoing[0].from_ms, ongoing[0].to_ms), (t, None));
    assert_eq!(ongoing[0].severity, Severity::Critical);
    assert!(spans(&of("db.query")).is_empty());
    // Restart: the rule (made through the API) and the firing state come back.
    let Fixture { alerts, store, _dir, .. } = f;
    drop(alerts);
    store.close();
    drop(store);
    let f = open(_dir, no_defaults());
    assert!(f.alerts.rule("checkout slow").is_some());
    let view = f.alerts.now(t + 1000);
    assert_eq!(view.alerts.len(), 1);
    assert_eq!(view.alerts[0].state, AlertState::Firing);
    assert_eq!(view.alerts[0].active_since_ms, Some(t));
    // No new event ids collide with the stored one.
    assert_eq!(f.alerts.lock().next_event, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_stored_under_another_key_comes_back_under_this_builds_key() {
    // As an older build (its ids were FNV-1a) left it: a firing alert of "checkout slow".
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let store = Store::open(StoreConfig::new(dir.path())).unwrap();
    let st = InstanceState {
        state: AlertState::Firing,
        level: Some(Severity::Critical),
        severity: Some(Severity::Critical),
        since_ms: t,
        active_since_ms: Some(t),
        ..Default::default()
    };
    let old_id = "00000000000000ab".to_string();
    store.write_alerts(vec![AlertWrite::PutInstance {
        id: old_id.as_str().into(),
        rule: "checkout slow".into(),
        series: "api.checkout".into(),
        labels: r#"{"operation":"api.checkout"}"#.into(),
        state: serde_json::to_string(&st).unwrap().into(),
        at_ms: t,
    }]);
    assert!(store.flush(Duration::from_secs(10)));
    store.close();
    drop(store);
    let f = open(dir, AlertsConfig { rules: vec![slow_rule()], ..no_defaults() });
    let view = f.alerts.now(t + 1000);
    let id = instance_id("checkout slow", "api.checkout");
    assert_eq!(view.alerts.len(), 1, "{:?}", view.alerts);
    assert_eq!(
        (view.alerts[0].id.as_str(), view.alerts[0].state),
        (id.as_str(), AlertState::Firing)
    );
    // The stored row moved to the new key: the next restart finds it there, once.
    assert!(f.store.flush(Duration::from_secs(10)));
    let saved = f.store.readers().with(crate::server::store::alerts::load).unwrap();
    let ids: Vec<&str> = saved.instances.iter().map(|i| i.0.as_str()).collect();
    assert_eq!(ids, [id.as_str()]);
    // Judged again, it is the same alert, not a second one.
    record(&f.app, "api.checkout", 3000.0, 10, t + 1000);
    f.alerts.evaluate(&SystemMetrics::default(), t + 2000);
    let view = f.alerts.now(t + 2000);
    assert_eq!(view.alerts.len(), 1, "{:?}", view.alerts);
    assert_eq!(view.alerts[0].active_since_ms, Some(t));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_config_file_wins_over_the_api_and_deleted_defaults_stay_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AlertsConfig::default();
    let mut from_file = slow_rule();
    from_file.name = "file rule".into();
    config.rules = vec![from_file.clone()];
    let f = open(dir, config.clone());
    assert!(f.alerts.rules().iter().any(|r| r.source == RuleSource::Default));
    assert_eq!(
        f.alerts.put_rule(from_file.clone(), false),
        Err(RuleChangeError::FromConfig("file rule".into()))
    );
    assert_eq!(
        f.alerts.delete_rule("file rule"),
        Err(RuleChangeError::FromConfig("file rule".into()))
    );
    assert_eq!(
        f.alerts.put_rule(slow_rule(), false),
        Err(RuleChangeError::NotFound("checkout slow".into()))
    );
    f.alerts.put_rule(slow_rule(), true).unwrap();
    assert_eq!(
        f.alerts.put_rule(slow_rule(), true),
        Err(RuleChangeError::Exists("checkout slow".into()))
    );
    f.alerts.delete_rule("host cpu high").unwrap();
    let mut bad = slow_rule();
    bad.name = "bad".into();
    bad.warning = Some(Threshold::above(500.0, 600.0));
    assert!(
        matches!(f.alerts.put_rule(bad, true), Err(RuleChangeError::Invalid(e)) if e.field == "warning")
    );
    let Fixture { alerts, store, _dir, .. } = f;
    drop(alerts);
    store.close();
    drop(store);
    let f = open(_dir, config);
    let names: Vec<String> = f.alerts.rules().into_iter().map(|r| r.name).collect();
    assert!(!names.contains(&"host cpu high".to_string()), "{names:?}");
    assert!(
        names.contains(&"checkout slow".to_string()) && names.contains(&"file rule".to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn silences_mute_notifications_but_not_the_state_and_removed_rules_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    f.alerts.put_rule(slow_rule(), true).unwrap();
    let t = now();
    let silence = f.alerts.add_silence(silence_for_an_hour("api.*", t), t).unwrap();
    record(&f.app, "api.checkout", 700.0, 10, t - 1000);
    f.alerts.evaluate(&SystemMetrics::default(), t);
    let view = f.alerts.now(t);
    assert_eq!(view.alerts[0].state, AlertState::Firing);
    assert_eq!(view.alerts[0].silenced_by, Some(silence.id));
    assert_eq!(view.counts, AlertCounts::default(), "silenced alerts are not counted");
    let id = view.alerts[0].id.clone();
    assert!(f.alerts.acknowledge(&id, true));
    assert!(f.alerts.now(t).alerts[0].acknowledged);
    assert!(!f.alerts.acknowledge("nope", true));
    assert!(f.alerts.delete_silence(silence.id));
    assert_eq!(f.alerts.now(t).counts.warning, 1);
    // Deleting the rule resolves its alert at the next evaluation.
    f.alerts.delete_rule("checkout slow").unwrap();
    f.alerts.evaluate(&SystemMetrics::default(), t + 1000);
    let view = f.alerts.now(t + 1000);
    assert!(
        view.alerts.is_empty() || view.alerts[0].state == AlertState::Resolved,
        "{:?}",
        view.alerts
    );
    assert!(f.store.flush(Duration::from_secs(10)));
    let filter = crate::server::store::alerts::HistoryFilter {
        from_ms: 0,
        to_ms: u64::MAX / 2,
        q: Some("removed".into()),
        limit: 10,
        ..Default::default()
    };
    let (events, _) =
        f.store.readers().with(|c| crate::server::store::alerts::history(c, &filter)).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let filter = crate::server::store::alerts::HistoryFilter {
        from_ms: 0,
        to_ms: u64::MAX / 2,
        q: Some("fired".into()),
        limit: 10,
        ..Default::default()
    };
    let (events, _) =
        f.store.readers().with(|c| crate::server::store::alerts::history(c, &filter)).unwrap();
    assert_eq!(events[0].notifications.len(), 1);
    assert_eq!(events[0].notifications[0].outcome, "silenced");
}

#[tokio::test(flavor = "multi_thread")]
async fn host_rules_and_default_rules_evaluate_on_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, AlertsConfig::default());
    let mut rule = Rule::new("cpu", Target::host(crate::model::alerts::HostMetric::CpuPct));
    rule.warning = Some(Threshold::above(50.0, 40.0));
    rule.for_secs = 2;
    f.alerts.put_rule(rule, true).unwrap();
    let hot = SystemMetrics { cpu_pct: 95.0, ..Default::default() };
    let t = now();
    f.alerts.evaluate(&hot, t);
    let states = |f: &Fixture, at: u64| -> Vec<(String, AlertState)> {
        f.alerts.now(at).alerts.into_iter().map(|a| (a.rule, a.state)).collect()
    };
    assert!(states(&f, t).contains(&("cpu".into(), AlertState::Pending)));
    assert!(
        states(&f, t).contains(&("host cpu high".into(), AlertState::Pending)),
        "the default rule waits 5 m"
    );
    f.alerts.evaluate(&hot, t + 2000);
    assert!(states(&f, t + 2000).contains(&("cpu".into(), AlertState::Firing)));
    f.alerts.evaluate(&SystemMetrics::default(), t + 3000);
    assert!(states(&f, t + 3000).contains(&("cpu".into(), AlertState::Resolved)));
    // The charts' bands: when it fired, cut at the range's start, and not at all after it.
    assert!(f.store.flush(Duration::from_secs(10)));
    let spans = |from: u64, to: u64| {
        f.store
            .readers()
            .with(|c| crate::server::store::alerts::spans(c, from, to, &[]))
            .unwrap()
            .0
            .into_iter()
            .map(|s| (s.rule, s.series, s.severity, s.from_ms, s.to_ms))
            .collect::<Vec<_>>()
    };
    let cpu = |from_ms| {
        ("cpu".to_string(), "host".to_string(), Severity::Warning, from_ms, Some(t + 3000))
    };
    assert_eq!(spans(t, t + 10_000), vec![cpu(t + 2000)]);
    assert_eq!(spans(t + 2500, t + 10_000), vec![cpu(t + 2500)]);
    assert_eq!(spans(t + 3000, t + 10_000), vec![]);
    assert_eq!(spans(t, t + 2000), vec![]);
}

#[test]
fn series_text_and_numbers_read_well() {
    let (mut key, mut scratch) = (String::new(), Vec::new());
    tags::series_key(&mut key, &mut scratch, "api.x", [("region", "eu"), ("v", "2")]);
    assert_eq!(series_text(&key), "api.x{region=eu,v=2}");
    assert_eq!(series_text("api.y"), "api.y");
    for key in [0, 0xab, 0x0123_4567_89ab_cdef, u64::MAX] {
        assert_eq!(id_text(key), format!("{key:016x}"));
        assert_eq!(parse_id(&id_text(key)), Some(key));
    }
    assert_eq!(number_text(2500.0), "2500");
    assert_eq!(number_text(12.34567), "12.346");
    assert_eq!(instance_id("a", "b"), instance_id("a", "b"));
    assert_ne!(instance_id("a", "b"), instance_id("ab", ""));
}

/// A stored minute of operation `name` at `at_ms`: `count` successful samples of `ms`.
fn stored_minute(name: &str, at_ms: u64, ms: f64, count: u64) -> crate::server::store::TimingRow {
    let mut rollup = crate::server::stats::Rollup::default();
    rollup.record(ms, count, true);
    crate::server::store::TimingRow {
        kind: crate::server::store::SeriesKind::Operation,
        name: name.into(),
        at_ms,
        rollup,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn recommendations_explain_a_slow_operation_with_its_evidence() {
    use crate::server::store::Batch;
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    let t = now();
    let minute = |ago_min: u64| (t - ago_min * 60_000) / 60_000 * 60_000;
    // Baseline: two operations at 100 ms, one sample a minute, five to two hours ago.
    let mut batch = Batch::default();
    for ago in 120..300 {
        for name in ["api.report", "db.query"] {
            batch.timings.push(stored_minute(name, minute(ago), 100.0, 1));
        }
    }
    assert!(f.store.write(batch));
    assert!(f.store.flush(Duration::from_secs(10)));
    // Now: both slower, and busier.
    record(&f.app, "api.report", 3000.0, 100, t - 1000);
    record(&f.app, "db.query", 400.0, 100, t - 1000);
    let recs = recommend::compute(&f.alerts, &f.app, &f.store, t);
    let report =
        recs.items.iter().find(|r| r.subject == "api.report").expect("api.report is advised on");
    let text = report.findings.join(" ");
    assert!(text.contains("The median moved too"), "{text}");
    assert!(text.contains("Throughput rose"), "{text}");
    assert!(text.contains("db.query"), "the other operation that slowed: {text}");
    // The operation's charts over the six hours judged, fixed: a saved report's link shows them.
    assert_eq!(report.link, format!("/operations?op=api.report&from={}&to={t}", t - 6 * 3_600_000));
    assert!(report.data.ends_with(&format!("series?from={}&to={t}&step=1m", t - 6 * 3_600_000)));
    let p50 = report.evidence.iter().find(|e| e.label.starts_with("p50")).unwrap();
    assert_eq!(p50.compared_to, Some(100.0));
    assert!(
        report.suggestion.contains("shared") || report.suggestion.contains("Several"),
        "{}",
        report.suggestion
    );
    assert!(
        !recs.items.iter().any(|r| r.subject == "db.query"),
        "db.query stays under the good bound"
    );
}

/// A slowdown that began four hours ago is in its own baseline (six hours to one hour ago):
/// the advice says so rather than "already this slow before: not a regression".
#[tokio::test(flavor = "multi_thread")]
async fn a_slowdown_older_than_the_baseline_is_not_called_no_regression() {
    use crate::server::store::Batch;
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    let t = now();
    let minute = |ago_min: u64| (t - ago_min * 60_000) / 60_000 * 60_000;
    let mut batch = Batch::default();
    for ago in 1..240 {
        batch.timings.push(stored_minute("api.export", minute(ago), 3000.0, 1));
    }
    assert!(f.store.write(batch));
    assert!(f.store.flush(Duration::from_secs(10)));
    record(&f.app, "api.export", 3000.0, 10, t - 1000);
    let recs = recommend::compute(&f.alerts, &f.app, &f.store, t);
    let export = recs.items.iter().find(|r| r.subject == "api.export").expect("advised on");
    let text = export.findings.join(" ");
    assert!(text.contains("for about 24"), "began about four hours ago: {text}");
    assert!(text.contains("baseline holds part of the slowdown"), "{text}");
    assert!(!text.contains("not a regression"), "{text}");
}

/// The rule test replays a gauge as the live engine reads it: a gauge set every ten minutes
/// keeps its value between its updates (only minutes with an update are stored), so a rule
/// with `for` ten minutes fires; a counter's minute without increments reads 0.
#[tokio::test(flavor = "multi_thread")]
async fn the_rule_test_carries_a_gauge_between_its_stored_minutes() {
    use crate::server::store::{Batch, SeriesKind, ValueRow};
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    let t = now() / 60_000 * 60_000;
    let mut batch = Batch::default();
    for ago in (10..=60).step_by(10) {
        let row = |kind, name: &str, value| ValueRow {
            kind,
            name: name.into(),
            at_ms: t - ago * 60_000,
            value,
        };
        batch.values.push(row(SeriesKind::Gauge, "queue.depth", 500.0));
        batch.values.push(row(SeriesKind::Counter, "jobs.done", 30.0));
    }
    assert!(f.store.write(batch));
    assert!(f.store.flush(Duration::from_secs(10)));
    let mut rule = Rule::new("deep queue", Target::gauge_named("queue.depth"));
    rule.warning = Some(Threshold::above(100.0, 50.0));
    rule.for_secs = 600;
    let from = t - 65 * 60_000;
    let result = backtest::run(&rule, &f.store, &f.app, from, t, FlapSettings::default()).unwrap();
    let notes: Vec<&str> = result.events.iter().map(|e| e.note.as_str()).collect();
    assert!(notes.contains(&"fired"), "{notes:?}");
    // A counter at 30 a minute in its stored minutes and 0 between them: the rule "below 1"
    // sees the quiet minutes (live reads them as 0), not "no data".
    let mut quiet =
        Rule::new("no jobs", Target { counter: Some("jobs.done".into()), ..Default::default() });
    quiet.warning = Some(Threshold::below(1.0, 2.0));
    let result = backtest::run(&quiet, &f.store, &f.app, from, t, FlapSettings::default()).unwrap();
    assert!(result.events.iter().any(|e| e.note == "fired"), "{:?}", result.events);
}

/// The rule test counts "no data" as the live engine does: a one-minute window is judged
/// every second, so two minutes without samples resolve a firing alert (after 3 evaluations,
/// not 3 minutes); and a series at rest holds no instance, so a quiet series with
/// `no_data: alert` never fires "no data".
#[tokio::test(flavor = "multi_thread")]
async fn the_rule_test_counts_no_data_as_live_does() {
    use crate::server::store::Batch;
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    let t = now() / 60_000 * 60_000;
    let mut batch = Batch::default();
    let mut minute = |name: &str, ago: u64, ms: f64| {
        batch.timings.push(stored_minute(name, t - ago * 60_000, ms, 10));
    };
    for ago in (10..=30).filter(|ago| !(18..=19).contains(ago)) {
        minute("api.slow", ago, 3000.0);
    }
    for ago in (5..=50).step_by(5) {
        minute("api.quiet", ago, 10.0);
    }
    assert!(f.store.write(batch));
    assert!(f.store.flush(Duration::from_secs(10)));
    let mut rule = Rule::new("slow", Target::operation("api.*", OpStat::P95, Window::M1));
    rule.warning = Some(Threshold::above(2000.0, 1500.0));
    rule.no_data = crate::model::alerts::NoDataPolicy::Alert;
    let from = t - 60 * 60_000;
    let result = backtest::run(&rule, &f.store, &f.app, from, t, FlapSettings::default()).unwrap();
    let of = |name: &str| -> Vec<String> {
        result
            .events
            .iter()
            .filter(|e| e.labels.get("operation").map(String::as_str) == Some(name))
            .map(|e| format!("{}→{}", e.note, e.to.as_str()))
            .collect()
    };
    assert!(of("api.quiet").is_empty(), "a quiet, healthy series: {:?}", of("api.quiet"));
    let slow = of("api.slow");
    assert_eq!(slow.first().map(String::as_str), Some("fired→firing"), "{slow:?}");
    rule.no_data = crate::model::alerts::NoDataPolicy::Ok;
    let result = backtest::run(&rule, &f.store, &f.app, from, t, FlapSettings::default()).unwrap();
    let fired = result.events.iter().filter(|e| e.note == "fired").count();
    assert_eq!(
        fired, 2,
        "resolved in the two minutes without data, fired again: {:?}",
        result.events
    );
}

/// The rule test holds at most `MAX_SERIES` series' windows, whatever matches, and says so.
#[tokio::test(flavor = "multi_thread")]
async fn the_rule_test_replays_a_bounded_number_of_series() {
    use crate::server::store::Batch;
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    let t = now() / 60_000 * 60_000;
    let mut batch = Batch::default();
    for i in 0..=backtest::MAX_SERIES {
        batch.timings.push(stored_minute(&format!("api.n{i}"), t - 5 * 60_000, 3000.0, 10));
    }
    assert!(f.store.write(batch));
    assert!(f.store.flush(Duration::from_secs(10)));
    let mut rule = Rule::new("slow", Target::operation("api.*", OpStat::P95, Window::M1));
    rule.warning = Some(Threshold::above(2000.0, 1500.0));
    let result =
        backtest::run(&rule, &f.store, &f.app, t - 600_000, t, FlapSettings::default()).unwrap();
    assert_eq!(result.series, backtest::MAX_SERIES);
    assert!(result.note.as_deref().is_some_and(|n| n.contains("more than 1000")), "{result:?}");
    assert!(result.events.iter().any(|e| e.note == "fired"), "{result:?}");
}

/// A rule over 5 minutes judges each series every 5 s, spread over the ticks: a breach still
/// fires within 5 ticks, and a busy series is never taken for one without data between its
/// turns (with `no_data_after = 1` and `ok`, that would resolve it).
#[tokio::test(flavor = "multi_thread")]
async fn a_five_minute_rule_judges_each_series_at_its_cadence_without_false_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    let mut rule = Rule::new("slow 5m", Target::operation("api.*", OpStat::P95, Window::M5));
    rule.warning = Some(Threshold::above(500.0, 400.0));
    rule.no_data_after = 1;
    f.alerts.put_rule(rule, true).unwrap();
    let t = now() / 1000 * 1000;
    let ops: Vec<String> = (0..20).map(|i| format!("api.op{i}")).collect();
    for op in &ops {
        record(&f.app, op, 900.0, 10, t - 1000);
    }
    let system = SystemMetrics::default();
    let firing =
        |at: u64| f.alerts.now(at).alerts.iter().filter(|a| a.state == AlertState::Firing).count();
    f.alerts.evaluate(&system, t);
    assert_eq!(firing(t), 20, "the first evaluation judges every series");
    record(&f.app, "api.late", 900.0, 10, t);
    let mut fired_late_at = None;
    for tick in 1..=12u64 {
        let at = t + tick * 1000;
        f.alerts.evaluate(&system, at);
        let view = f.alerts.now(at);
        let late = view.alerts.iter().any(|a| {
            a.labels.get("operation").map(String::as_str) == Some("api.late")
                && a.state == AlertState::Firing
        });
        if late && fired_late_at.is_none() {
            fired_late_at = Some(tick);
        }
        let held = view
            .alerts
            .iter()
            .filter(|a| a.state == AlertState::Firing && a.labels["operation"] != "api.late")
            .count();
        assert_eq!(held, 20, "tick {tick}: a series between its turns is not without data");
    }
    let tick = fired_late_at.expect("the new slow series fired");
    assert!(tick <= 5, "fired after {tick} ticks; the cadence of 5m is 5 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_series_hold_nothing_and_a_cleared_alert_is_forgotten_when_its_flips_expire() {
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    let mut rule = slow_rule();
    rule.target = Target::operation("api.*", OpStat::P95, Window::M1);
    rule.for_secs = 60;
    f.alerts.put_rule(rule, true).unwrap();
    let t = now() / 1000 * 1000;
    for i in 0..1000 {
        record(&f.app, &format!("api.ok{i}"), 100.0, 10, t - 1000);
    }
    record(&f.app, "api.slow", 3000.0, 10, t - 1000);
    let system = SystemMetrics::default();
    let held = || f.alerts.lock().instances.len();
    let stored = || {
        assert!(f.store.flush(Duration::from_secs(10)));
        f.store.readers().with(crate::server::store::alerts::load).unwrap().instances.len()
    };
    f.alerts.evaluate(&system, t);
    assert_eq!(held(), 1, "only the breaching series is held; 1,000 healthy ones are not");
    assert_eq!(f.alerts.now(t).alerts[0].state, AlertState::Pending);
    assert_eq!(stored(), 1);
    // A minute later the slow samples have left the window: cleared, but its flip is
    // remembered (flap detection) for the flap window.
    let cleared = t + 61_000;
    record(&f.app, "api.slow", 100.0, 10, cleared - 1000);
    f.alerts.evaluate(&system, cleared);
    assert!(f.alerts.now(cleared).alerts.is_empty());
    assert_eq!(held(), 1);
    // Once the flip is older than the flap window, nothing is left to remember.
    let later = cleared + FlapSettings::default().window_ms;
    record(&f.app, "api.slow", 100.0, 10, later - 1000);
    f.alerts.evaluate(&system, later);
    assert_eq!(held(), 0);
    assert_eq!(stored(), 0, "the forgotten instance leaves the store too");
}

/// A log writer that keeps what is written, for reading back.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_storm_logs_twenty_changes_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    f.alerts.put_rule(slow_rule(), true).unwrap();
    let t = now();
    for i in 0..25 {
        record(&f.app, &format!("api.checkout.{i:02}"), 3000.0, 10, t - 1000);
    }
    let log = Captured::default();
    let writer = log.clone();
    let subscriber =
        tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    tracing::subscriber::with_default(subscriber, || {
        f.alerts.evaluate(&SystemMetrics::default(), t);
    });
    // All 25 fired; 20 have a line each, one more line counts the other 5. Each is counted.
    assert_eq!(f.alerts.now(t).counts.critical, 25);
    assert_eq!(f.alerts.stats.transitions.load(Ordering::Relaxed), 25);
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches("Alert changed.").count(), 20, "{text}");
    let summary: Vec<&str> = text.lines().filter(|l| l.contains("More alerts changed")).collect();
    assert_eq!(summary.len(), 1, "{text}");
    assert!(summary[0].contains("more=5"), "{text}");
    // Its duration and the CPU time it used (no more than the duration) are both kept.
    let wall = f.alerts.stats.last_eval_us.load(Ordering::Relaxed);
    let cpu = f.alerts.stats.last_eval_cpu_us.load(Ordering::Relaxed);
    assert!(cpu > 0 && cpu <= wall + 10, "CPU {cpu} µs of {wall} µs");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_list_and_the_page_name_how_many_alerts_there_are_beyond_the_listed() {
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    f.alerts.put_rule(slow_rule(), true).unwrap();
    let t = now();
    let breaching = crate::model::live::LIVE_ALERTS + 10;
    for i in 0..breaching {
        record(&f.app, &format!("api.checkout.{i:03}"), 3000.0, 10, t - 1000);
    }
    let mut live = f.alerts.hub.subscribe_alerts();
    // Nobody wants the list: the live stream hears only the counts.
    f.alerts.evaluate(&SystemMetrics::default(), t);
    let published = live.borrow_and_update().clone().expect("the alerts were published");
    assert!(published.list.is_none(), "a list made for nobody");
    let counts_only = published.counts.clone();
    // An Alerts page subscribes: the next evaluation publishes the list, though nothing changed.
    let _page = f.alerts.hub.list_client();
    f.alerts.evaluate(&SystemMetrics::default(), t + 1000);
    let page = f.alerts.now_limited(t, crate::model::live::LIVE_ALERTS);
    assert_eq!((page.alerts.len(), page.total), (crate::model::live::LIVE_ALERTS, breaching));
    assert_eq!(f.alerts.now(t).alerts.len(), breaching, "the API lists every one");
    // The live message comes in parts of a few KiB, which the page puts back together.
    let published = live.borrow_and_update().clone().expect("the alerts were published again");
    let parts = published.list.clone().expect("with the list, for the page that wants it");
    assert!(parts.len() > 1, "{} alerts in one message", crate::model::live::LIVE_ALERTS);
    let owner = leptos::prelude::Owner::new();
    owner.with(|| {
        use leptos::prelude::GetUntracked;
        let page = crate::components::live::provide_live();
        // The counts alone (while the page's charts are paused, too) move the header's badge
        // and say that the alerts changed.
        page.receive(counts_only.as_str(), false);
        assert_eq!(page.alert_counts.get_untracked().critical as usize, breaching);
        assert_eq!((page.alerts.get_untracked(), page.alerts_changed.get_untracked()), (None, 1));
        page.want_alert_list();
        for part in parts.iter() {
            let limit = crate::server::live::PART_BYTES + 1024;
            assert!(part.len() <= limit, "a part of {} B", part.len());
            page.receive(part.as_str(), true);
        }
        let (alerts, total) = page.alerts.get_untracked().unwrap();
        assert_eq!((alerts.len(), total), (crate::model::live::LIVE_ALERTS, breaching));
        let ids = |list: &[crate::model::alerts::AlertInstance]| {
            list.iter().map(|a| a.id.clone()).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(&alerts),
            ids(&f.alerts.now_limited(t, crate::model::live::LIVE_ALERTS).alerts)
        );
        assert_eq!(page.alert_counts.get_untracked().critical as usize, breaching);
        assert_eq!(
            page.alerts_changed.get_untracked(),
            1,
            "the list brought to a page that subscribed is no change"
        );
    });
}

/// The header's counts as the live clients were last sent them, and the total.
fn published_counts(alerts: &Alerts) -> (AlertCounts, usize) {
    let published = alerts.hub.latest_alerts().expect("published");
    match serde_json::from_str(published.counts.as_str()).unwrap() {
        crate::model::live::ServerMessage::AlertCounts(crate::model::live::AlertNews {
            counts,
            total,
            ..
        }) => (counts, total),
        other => panic!("{other:?}"),
    }
}

/// A silence that ends brings its alert back into the header's counts at the next
/// evaluation, though no alert changed state and no receiver is there to be told.
#[tokio::test(flavor = "multi_thread")]
async fn a_silence_that_ends_brings_its_alert_back_into_the_header_counts() {
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    f.alerts.put_rule(slow_rule(), true).unwrap();
    let t = now() / 1000 * 1000;
    let mut silence = silence_for_an_hour("api.*", t);
    silence.ends_ms = t + 2_000;
    f.alerts.add_silence(silence, t).unwrap();
    record(&f.app, "api.checkout", 700.0, 10, t - 1000);
    f.alerts.evaluate(&SystemMetrics::default(), t);
    assert_eq!(f.alerts.now(t).alerts[0].state, AlertState::Firing);
    assert_eq!(published_counts(&f.alerts), (AlertCounts::default(), 1), "silenced");
    f.alerts.evaluate(&SystemMetrics::default(), t + 3_000);
    assert_eq!(f.alerts.now(t + 3_000).alerts[0].state, AlertState::Firing, "no transition");
    let warning = AlertCounts { warning: 1, ..Default::default() };
    assert_eq!(published_counts(&f.alerts), (warning, 1), "the silence has ended");
}

/// An evaluation of a tick sampled before a silence was added counts the alerts as they were
/// then: not news, so the header does not flip back for a second; later ones agree with it.
#[tokio::test(flavor = "multi_thread")]
async fn an_evaluation_older_than_a_silence_does_not_undo_its_counts() {
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    f.alerts.put_rule(slow_rule(), true).unwrap();
    let t = now() / 1000 * 1000;
    record(&f.app, "api.checkout", 700.0, 10, t - 1000);
    f.alerts.evaluate(&SystemMetrics::default(), t);
    let warning = AlertCounts { warning: 1, ..Default::default() };
    assert_eq!(published_counts(&f.alerts), (warning, 1));
    f.alerts.add_silence(silence_for_an_hour("api.*", t), t + 1_500).unwrap();
    let silenced = f.alerts.hub.latest_alerts().map(|m| m.seq);
    assert_eq!(published_counts(&f.alerts), (AlertCounts::default(), 1), "silenced");
    for tick in [t + 1_000, t + 2_000] {
        f.alerts.evaluate(&SystemMetrics::default(), tick);
        assert_eq!(f.alerts.hub.latest_alerts().map(|m| m.seq), silenced, "at {}", tick - t);
    }
}

/// The header's counts, which an evaluation's sweep makes as it goes (and which every
/// evaluation in these tests also checks against a full count of the alerts held): firing by
/// severity, pending, not silenced ones, and a resolved alert of a live series in the total
/// until it leaves the list.
#[tokio::test(flavor = "multi_thread")]
async fn the_header_counts_every_state_as_an_evaluation_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = open(dir, no_defaults());
    f.alerts.put_rule(slow_rule(), true).unwrap();
    let mut pending = slow_rule();
    pending.name = "pending slow".into();
    pending.target = Target::operation("web.*", OpStat::P95, Window::M1);
    pending.for_secs = 600;
    f.alerts.put_rule(pending, true).unwrap();
    let t = now() / 1000 * 1000;
    f.alerts.add_silence(silence_for_an_hour("api.checkout.muted", t), t).unwrap();
    let header = |at: u64| {
        f.alerts.evaluate(&SystemMetrics::default(), at);
        let (counts, total) = published_counts(&f.alerts);
        (counts.critical, counts.warning, counts.pending, total)
    };
    let feed = |at: u64, slow_ms: f64| {
        record(&f.app, "api.checkout.warn", slow_ms.min(700.0), 10, at - 1000);
        record(&f.app, "api.checkout.crit", 3000.0, 10, at - 1000);
        record(&f.app, "api.checkout.muted", 3000.0, 10, at - 1000);
        record(&f.app, "web.page", 3000.0, 10, at - 1000);
    };
    feed(t, 700.0);
    // One critical, one warning, one pending; the silenced one only in the total.
    assert_eq!(header(t), (1, 1, 1, 4));
    // The warning's series is healthy a minute later: resolved, still listed (in the total).
    let cleared = t + 61_000;
    feed(cleared, 100.0);
    assert_eq!(header(cleared), (1, 0, 1, 4));
    assert_eq!(f.alerts.counts(), AlertCounts { critical: 1, warning: 0, pending: 1 });
    // Ten minutes on, the resolved alert leaves the list; the pending one has fired by then.
    let later = cleared + 600_000;
    feed(later, 100.0);
    assert_eq!(header(later), (2, 0, 0, 3));
}
