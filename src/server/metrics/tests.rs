use super::*;

const NOW: u64 = 1_700_000_000_000;

fn store(max_series: usize) -> Arc<AppMetrics> {
    let limits = Limits { max_series, ..Limits::default() };
    AppMetrics::new(limits, LatencyThresholds::default(), NOW - 3_600_000)
}

#[test]
fn names_are_checked() {
    assert!(validate_name("api.checkout").is_ok());
    assert!(validate_name("").is_err());
    assert!(validate_name(&"x".repeat(201)).is_err());
    assert!(validate_name(&"é".repeat(200)).is_ok());
    assert!(validate_name("bad\nname").is_err());
}

#[test]
fn one_series_budget_spans_every_kind() {
    let metrics = store(3);
    let mut m = metrics.lock();
    assert_eq!(m.gauge(Protocol::Statsd, "a", 1.0, false, NOW), Outcome::Accepted);
    assert_eq!(m.counter(Protocol::Statsd, "b", 1.0, NOW), Outcome::Accepted);
    assert_eq!(
        m.timing(Protocol::Statsd, Timing::operation("c", 1.0, NOW), NOW),
        Outcome::Accepted
    );
    // The budget of 3 is spent across kinds: every new series of any kind is dropped.
    assert_eq!(m.set_member(Protocol::Statsd, "d", "x", NOW), Outcome::DroppedByCap);
    assert_eq!(
        m.timing(Protocol::Statsd, Timing::event("e", 1.0, NOW), NOW),
        Outcome::DroppedByCap
    );
    assert_eq!(m.gauge(Protocol::Statsd, "f", 1.0, false, NOW), Outcome::DroppedByCap);
    assert_eq!(m.counter(Protocol::Statsd, "g", 1.0, NOW), Outcome::DroppedByCap);
    assert_eq!(
        m.timing(Protocol::Statsd, Timing::operation("h", 1.0, NOW), NOW),
        Outcome::DroppedByCap
    );
    // Existing series keep working.
    assert_eq!(m.gauge(Protocol::Statsd, "a", 2.0, true, NOW), Outcome::Accepted);
    assert_eq!(m.counts.statsd.dropped_by_cap, 5);
    assert_eq!(m.counts.statsd.accepted, 4);
    assert_eq!(m.series_by_kind().total(), 3);
}

#[test]
fn non_finite_results_are_refused_and_the_reason_kept() {
    let metrics = store(10);
    {
        let mut m = metrics.lock();
        m.gauge(Protocol::Statsd, "g", f64::MAX, false, NOW);
        assert_eq!(m.gauge(Protocol::Statsd, "g", f64::MAX, true, NOW), Outcome::Malformed);
        m.counter(Protocol::Statsd, "c", f64::MAX, NOW);
        assert_eq!(m.counter(Protocol::Statsd, "c", f64::MAX, NOW), Outcome::Malformed);
        assert_eq!(m.gauge(Protocol::Http, "h", f64::NAN, false, NOW), Outcome::Malformed);
        assert_eq!(m.counter(Protocol::Http, "i", f64::INFINITY, NOW), Outcome::Malformed);
    }
    let other = metrics.other_metrics(NOW);
    assert_eq!(other.gauges, vec![("g".to_string(), f64::MAX)]);
    assert_eq!(other.counters[0].1.total, f64::MAX);
    assert!(other.counters.iter().all(|(_, c)| c.total.is_finite()));
    let stats = metrics.ingest_stats();
    assert_eq!((stats.statsd.malformed, stats.http.malformed), (2, 2));
    assert_eq!(stats.last_malformed.len(), 4);
    assert!(stats.last_malformed.iter().any(|m| m.reason.contains("non-finite")), "{stats:?}");
    // The refused counter never entered the budget.
    assert_eq!(stats.series, 2);
}

#[test]
fn counters_and_sets_roll_over_by_minute() {
    let metrics = store(10);
    {
        let mut m = metrics.lock();
        m.counter(Protocol::Statsd, "hits", 5.0, NOW);
        m.counter(Protocol::Statsd, "hits", 10.0, NOW);
        for user in ["a", "b", "a", "c"] {
            m.set_member(Protocol::Statsd, "users", user, NOW);
        }
    }
    let later = NOW + 60_000;
    let other = metrics.other_metrics(later);
    assert_eq!(other.counters[0].1.total, 15.0);
    assert_eq!(other.counters[0].1.last_minute, 15.0);
    assert_eq!(other.sets[0], SetReading { name: "users".into(), unique: 3, lower_bound: false });
    let much_later = metrics.other_metrics(NOW + 10 * 60_000);
    assert_eq!(much_later.counters[0].1.last_minute, 0.0);
    assert_eq!(much_later.sets[0].unique, 0);
}

#[test]
fn set_members_are_bounded_per_set_and_in_total_bytes() {
    let limits =
        Limits { max_series: 100, max_set_members: 5, max_set_bytes: 1_000, ..Limits::default() };
    let metrics = AppMetrics::new(limits, LatencyThresholds::default(), NOW);
    {
        let mut m = metrics.lock();
        for i in 0..50 {
            m.set_member(Protocol::Statsd, "small", &format!("member-{i}"), NOW);
        }
        for i in 0..500 {
            m.set_member(Protocol::Statsd, &format!("set-{}", i % 20), &format!("{i:050}"), NOW);
        }
    }
    let stats = metrics.ingest_stats();
    assert!(stats.set_bytes <= 1_000, "{stats:?}");
    assert!(stats.statsd.set_members_dropped > 0);
    let other = metrics.other_metrics(NOW);
    let small = other.sets.iter().find(|s| s.name == "small").unwrap();
    assert_eq!((small.unique, small.lower_bound), (5, true));
    // A new minute frees the bytes: members are stored again.
    metrics.lock().set_member(Protocol::Statsd, "small", "fresh", NOW + 60_000);
    let stats = metrics.ingest_stats();
    assert!(stats.set_bytes < 1_000, "{stats:?}");
}

#[test]
fn idle_series_are_pruned_and_free_the_budget() {
    let metrics = store(2);
    {
        let mut m = metrics.lock();
        m.gauge(Protocol::Statsd, "old", 1.0, false, NOW);
        m.set_member(Protocol::Statsd, "old-set", "x", NOW);
    }
    metrics.prune(NOW + IDLE_MS - 1);
    assert_eq!(metrics.ingest_stats().series, 2);
    metrics.prune(NOW + IDLE_MS);
    let stats = metrics.ingest_stats();
    assert_eq!((stats.series, stats.set_bytes), (0, 0));
    let later = NOW + IDLE_MS + 1;
    assert_eq!(metrics.lock().gauge(Protocol::Statsd, "new", 1.0, false, later), Outcome::Accepted);
}

#[test]
fn kept_strings_are_bounded() {
    let metrics = store(10);
    {
        let mut m = metrics.lock();
        m.set_current_action(Some(&"a".repeat(10_000)));
        m.note_malformed(Protocol::Statsd, &"x".repeat(100_000), &"r".repeat(10_000), NOW);
        assert_eq!(m.current_action().map(|a| a.chars().count()), Some(MAX_ACTION_CHARS));
    }
    let stats = metrics.ingest_stats();
    assert_eq!(stats.last_malformed[0].input.len(), counts::MALFORMED_INPUT_CHARS);
    assert!(stats.last_malformed[0].reason.len() <= 200);
}

#[test]
fn malformed_inputs_are_kept_newest_first_and_bounded() {
    let metrics = store(10);
    {
        let mut m = metrics.lock();
        for i in 0..30 {
            m.note_malformed(Protocol::Statsd, &format!("line {i}"), "bad", NOW);
        }
    }
    let stats = metrics.ingest_stats();
    assert_eq!(stats.statsd.malformed, 30);
    assert_eq!(stats.last_malformed.len(), counts::KEEP_MALFORMED);
    assert_eq!(stats.last_malformed[0].input, "line 29");
}

fn tagged(name: &str, pairs: &[(&str, &str)]) -> String {
    let (mut key, mut scratch) = (String::new(), Vec::new());
    tags::series_key(&mut key, &mut scratch, name, pairs.iter().copied());
    key
}

#[test]
fn tag_sets_are_series_that_merge_per_name_filter_and_group() {
    let metrics = store(100);
    {
        let mut m = metrics.lock();
        for (region, n) in [("eu", 3), ("us", 5)] {
            let key = tagged("checkout", &[("region", region), ("v", "2")]);
            for _ in 0..n {
                m.timing(Protocol::Http, Timing::operation(&key, 10.0, NOW), NOW);
            }
        }
        m.timing(Protocol::Http, Timing::operation("checkout", 10.0, NOW), NOW);
    }
    let per_name = metrics.summaries(Window::M5, NOW);
    assert_eq!(per_name.len(), 1);
    assert_eq!((per_name[0].name.as_str(), per_name[0].count), ("checkout", 9));
    let eu = tags::Selection::parse(["region:eu"], None).unwrap();
    let only_eu = metrics.summaries_selected(TimingKind::Operation, Window::M5, NOW, &eu);
    assert_eq!(only_eu[0].count, 3);
    let by = tags::Selection::parse([], Some("region")).unwrap();
    let mut grouped = metrics.summaries_selected(TimingKind::Operation, Window::M5, NOW, &by);
    grouped.sort_by_key(|s| s.count);
    let rows: Vec<(u64, Option<&str>)> =
        grouped.iter().map(|s| (s.count, s.tags.get("region").map(String::as_str))).collect();
    assert_eq!(rows, vec![(1, None), (3, Some("eu")), (5, Some("us"))]);
    let detail =
        metrics.detail_of(TimingKind::Operation, "checkout", Window::M5, NOW, &eu).unwrap();
    assert_eq!(detail.summary.count, 3);
    assert_eq!(metrics.ingest_stats().series_by_kind.operations, 3);
}

#[test]
fn tag_sets_beyond_the_bound_per_name_go_to_its_overflow_set() {
    let limits = Limits { max_tag_sets: 2, ..Limits::default() };
    let metrics = AppMetrics::new(limits, LatencyThresholds::default(), NOW - 3_600_000);
    {
        let mut m = metrics.lock();
        for user in 0..5 {
            let key = tagged("login", &[("user", &user.to_string())]);
            assert_eq!(
                m.timing(Protocol::Statsd, Timing::operation(&key, 1.0, NOW), NOW),
                Outcome::Accepted
            );
        }
    }
    let by = tags::Selection::parse([], Some("user,_overflow")).unwrap();
    let rows = metrics.summaries_selected(TimingKind::Operation, Window::M5, NOW, &by);
    assert_eq!(rows.len(), 3, "two tag sets and the overflow set: {rows:?}");
    let overflow = rows.iter().find(|r| r.tags.contains_key("_overflow")).unwrap();
    assert_eq!(overflow.count, 3);
    assert_eq!(metrics.summaries(Window::M5, NOW)[0].count, 5, "totals per name stay whole");
    assert_eq!(metrics.tag_sets_overflowed(), (3, 2));
    // Once the hour has passed the sets are pruned and their places free again.
    metrics.prune(NOW + 2 * 3_600_000);
    let later = NOW + 2 * 3_600_000;
    let key = tagged("login", &[("user", "new")]);
    metrics.lock().timing(Protocol::Statsd, Timing::operation(&key, 1.0, later), later);
    let rows = metrics.summaries_selected(TimingKind::Operation, Window::M5, later, &by);
    assert_eq!(rows[0].tags.get("user").map(String::as_str), Some("new"));
}

#[test]
fn restored_tag_sets_stay_within_the_bound_per_name() {
    let limits = Limits { max_tag_sets: 2, ..Limits::default() };
    let metrics = AppMetrics::new(limits, LatencyThresholds::default(), NOW - 3_600_000);
    let mut minute = crate::server::stats::RollupRecorder::default();
    minute.record(5.0, 2, true);
    let minute = minute.finish();
    let at = NOW - NOW % 60_000 - 120_000;
    for user in 0..4 {
        let key = tagged("login", &[("user", &user.to_string())]);
        metrics.lock().restore_minute(TimingKind::Operation, &key, at, &minute, NOW);
    }
    let by = tags::Selection::parse([], Some("user,_overflow")).unwrap();
    let rows = metrics.summaries_selected(TimingKind::Operation, Window::M5, NOW, &by);
    assert_eq!(rows.len(), 3, "two tag sets and the overflow set: {rows:?}");
    let overflow = rows.iter().find(|r| r.tags.contains_key("_overflow")).unwrap();
    assert_eq!(overflow.count, 4, "the last two sets' minutes, merged");
}

fn with_statistics_budget(max_statistics_bytes: usize) -> Arc<AppMetrics> {
    let limits = Limits { max_statistics_bytes, ..Limits::default() };
    AppMetrics::new(limits, LatencyThresholds::default(), NOW - 3_600_000)
}

/// Samples of `name` at second `sec` after NOW, with `spread` distinct durations (1 % bins).
fn spread(m: &mut Inner, name: &str, at_ms: u64, spread: u32) -> Outcome {
    let mut last = Outcome::Accepted;
    for i in 0..spread {
        let duration_ms = 1.0 * 1.03f64.powi(i as i32);
        last = m.timing(Protocol::Statsd, Timing::operation(name, duration_ms, at_ms), at_ms);
    }
    last
}

#[test]
fn the_statistics_budget_refuses_new_series_and_keeps_counting_known_ones() {
    const BUDGET: usize = 32 * 1024;
    let metrics = with_statistics_budget(BUDGET);
    let mut m = metrics.lock();
    let names: Vec<String> = (0..10_000).map(|i| format!("op.{i}")).collect();
    let refused = names
        .iter()
        .position(|n| spread(&mut m, n, NOW, 4) == Outcome::DroppedByMemory)
        .expect("the budget refuses new series at some point");
    assert!(refused > 10, "{refused} series fit 32 KiB");
    assert!(m.statistics_bytes() >= BUDGET);
    assert!(m.statistics_bytes() < BUDGET + 4 * 1024, "{}", m.statistics_bytes());
    assert!(!m.operations.contains(&names[refused]));
    // Known series keep counting; events share the budget.
    assert_eq!(spread(&mut m, &names[0], NOW, 1), Outcome::Accepted);
    let event = m.timing(Protocol::Http, Timing::event("new.event", 1.0, NOW), NOW);
    assert_eq!(event, Outcome::DroppedByMemory);
    assert_eq!(Outcome::DroppedByMemory.reason(), "statistics_budget");
    assert_eq!((m.counts.statsd.dropped_by_memory, m.counts.http.dropped_by_memory), (4, 1));
    assert_eq!(m.counts.statsd.dropped_by_cap, 0, "the series budget is not what refused");
    drop(m);
    let stats = metrics.ingest_stats();
    assert_eq!((stats.max_statistics_bytes, stats.statistics_evicted), (BUDGET, 0));
}

#[test]
fn over_the_statistics_budget_the_series_idle_longest_leave_memory() {
    const BUDGET: usize = 64 * 1024;
    let metrics = with_statistics_budget(BUDGET);
    let start = NOW - 600_000;
    let mut m = metrics.lock();
    spread(&mut m, "idle.longest", start, 30);
    spread(&mut m, "idle.tagged\u{1f}region\u{1e}eu", start + 1_000, 30);
    let mut i = 0;
    while m.statistics_room() && i < 10_000 {
        spread(&mut m, &format!("busy.{i}"), start + 60_000, 2);
        i += 1;
    }
    assert!(!m.statistics_room(), "the budget fills");
    // Known series grow, second by second, past the budget.
    for sec in 0..40 {
        spread(&mut m, "busy.0", start + 61_000 + sec * 1_000, 60);
    }
    drop(m);
    let now = start + 101_000;
    let counted = metrics.lock().operations.approx_memory_bytes();
    assert!(counted > BUDGET, "the test must grow past the budget ({counted})");
    metrics.prune(now);
    let mut m = metrics.lock();
    let held = m.operations.approx_memory_bytes();
    assert!(held <= BUDGET - BUDGET / 10, "{held} bytes held after the prune");
    assert_eq!(m.statistics_bytes(), held);
    assert!(!m.operations.contains("idle.longest"), "the series idle longest went first");
    assert!(!m.operations.contains("idle.tagged\u{1f}region\u{1e}eu"));
    assert!(m.operations.contains("busy.0"), "the busiest, newest series stays");
    assert!(m.tag_sets[0].is_empty(), "the evicted tag set is uncounted");
    let evicted = m.statistics_evicted;
    assert!(evicted >= 2);
    // There is room again, and an evicted series starts afresh.
    assert_eq!(spread(&mut m, "idle.longest", now, 1), Outcome::Accepted);
    drop(m);
    assert_eq!(metrics.ingest_stats().statistics_evicted, evicted);
}

#[test]
fn every_accepted_timing_reaches_the_store_once_whichever_way_it_goes() {
    let metrics = store(100);
    let mut m = metrics.lock();
    m.attach_store(24 * 3_600_000);
    let accept = |m: &mut Inner, t: Timing<'_>, now: u64| {
        assert_eq!(m.timing(Protocol::Http, t, now), Outcome::Accepted);
    };
    let totals = |batch: Batch| {
        let mut counts = std::collections::BTreeMap::<(String, bool), u64>::new();
        for row in batch.timings {
            let key = (row.name.to_string(), row.kind == SeriesKind::Event);
            *counts.entry(key).or_default() += row.rollup.count;
        }
        counts
    };
    // Two samples of this second: handed over from their bucket once the second is over.
    accept(&mut m, Timing::operation("api", 5.0, NOW), NOW);
    accept(&mut m, Timing::operation("api", 6.0, NOW), NOW);
    let first = totals(m.take_for_store(NOW + 1_500, false));
    assert_eq!(first, [(("api".to_string(), false), 2)].into());
    // A late sample of that second, a backfilled one older than the hour, and an event of
    // the current second (handed over at shutdown).
    accept(&mut m, Timing::operation("api", 7.0, NOW + 100), NOW + 1_600);
    accept(&mut m, Timing::operation("old", 3.0, NOW - 7_200_000), NOW + 1_600);
    accept(&mut m, Timing::event("mail", 1.0, NOW + 1_700), NOW + 1_700);
    let rest = totals(m.take_for_store(NOW + 1_800, true));
    let want = [
        (("api".to_string(), false), 1),
        (("mail".to_string(), true), 1),
        (("old".to_string(), false), 1),
    ];
    assert_eq!(rest, want.into());
    assert!(m.take_for_store(NOW + 5_000, true).timings.is_empty(), "each once");
}

/// A whole minute, so that `MINUTE + 59_000` and `MINUTE + 60_200` fall either side of a
/// minute boundary.
const MINUTE: u64 = NOW - NOW % 60_000;

/// A store with a history store attached at `MINUTE`.
fn attached() -> Arc<AppMetrics> {
    let metrics = store(100);
    metrics.lock().attach_store(24 * 3_600_000);
    metrics
}

/// The value rows of a batch as (name, minute start, value), in order of name then minute.
fn stored_values(batch: Batch) -> Vec<(String, u64, f64)> {
    let mut rows: Vec<(String, u64, f64)> = batch
        .values
        .into_iter()
        .map(|row| (row.name.to_string(), row.at_ms - row.at_ms % 60_000, row.value))
        .collect();
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    rows
}

#[test]
fn a_counters_stored_minute_ends_with_its_full_value() {
    let metrics = attached();
    let mut m = metrics.lock();
    m.counter(Protocol::Statsd, "hits", 1.0, MINUTE + 59_000);
    let first = stored_values(m.take_for_store(MINUTE + 59_100, false));
    assert_eq!(first, vec![("hits".to_string(), MINUTE, 1.0)]);
    m.counter(Protocol::Statsd, "hits", 1.0, MINUTE + 59_500);
    m.counter(Protocol::Statsd, "hits", 1.0, MINUTE + 60_200);
    // The increment at 59.5 s rolled out of the current minute before this flush: its
    // minute's row is written again with it.
    let second = stored_values(m.take_for_store(MINUTE + 60_400, false));
    let want = vec![("hits".to_string(), MINUTE, 2.0), ("hits".to_string(), MINUTE + 60_000, 1.0)];
    assert_eq!(second, want);
    assert!(m.take_for_store(MINUTE + 61_000, false).values.is_empty(), "nothing changed since");
}

#[test]
fn a_sets_stored_minute_ends_with_its_full_value() {
    let metrics = attached();
    let mut m = metrics.lock();
    m.set_member(Protocol::Statsd, "users", "a", MINUTE + 59_000);
    let first = stored_values(m.take_for_store(MINUTE + 59_100, false));
    assert_eq!(first, vec![("users".to_string(), MINUTE, 1.0)]);
    m.set_member(Protocol::Statsd, "users", "b", MINUTE + 59_500);
    m.set_member(Protocol::Statsd, "users", "c", MINUTE + 60_200);
    let second = stored_values(m.take_for_store(MINUTE + 60_400, false));
    let want =
        vec![("users".to_string(), MINUTE, 2.0), ("users".to_string(), MINUTE + 60_000, 1.0)];
    assert_eq!(second, want);
    // A set rolled over by the pruning, without a member in the new minute, still gets its
    // finished minute's count stored, and nothing for the empty new minute.
    m.set_member(Protocol::Statsd, "users", "d", MINUTE + 60_500);
    m.set_member(Protocol::Statsd, "users", "e", MINUTE + 119_500);
    assert_eq!(m.take_for_store(MINUTE + 119_600, false).values.len(), 1);
    m.set_member(Protocol::Statsd, "users", "f", MINUTE + 119_800);
    m.prune(MINUTE + 120_100);
    let rolled = stored_values(m.take_for_store(MINUTE + 120_400, false));
    assert_eq!(rolled, vec![("users".to_string(), MINUTE + 60_000, 4.0)]);
}

#[test]
fn a_gauges_stored_minute_ends_with_its_last_value() {
    let metrics = attached();
    let mut m = metrics.lock();
    m.gauge(Protocol::Statsd, "queue", 1.0, false, MINUTE + 59_000);
    let first = stored_values(m.take_for_store(MINUTE + 59_100, false));
    assert_eq!(first, vec![("queue".to_string(), MINUTE, 1.0)]);
    m.gauge(Protocol::Statsd, "queue", 2.0, false, MINUTE + 59_500);
    m.gauge(Protocol::Statsd, "queue", 3.0, false, MINUTE + 60_200);
    let second = stored_values(m.take_for_store(MINUTE + 60_400, false));
    let want =
        vec![("queue".to_string(), MINUTE, 2.0), ("queue".to_string(), MINUTE + 60_000, 3.0)];
    assert_eq!(second, want);
}

#[test]
fn an_update_stamped_before_a_flush_but_applied_after_it_is_in_the_next_batch() {
    let metrics = attached();
    let mut m = metrics.lock();
    m.counter(Protocol::Statsd, "hits", 1.0, MINUTE + 1_000);
    m.gauge(Protocol::Statsd, "queue", 1.0, false, MINUTE + 1_000);
    m.set_member(Protocol::Statsd, "users", "a", MINUTE + 1_000);
    assert_eq!(m.take_for_store(MINUTE + 2_000, false).values.len(), 3);
    // Stamped at 1.5 s by an ingestion thread that then waited for the lock the flush at 2 s
    // held.
    m.counter(Protocol::Statsd, "hits", 1.0, MINUTE + 1_500);
    m.gauge(Protocol::Statsd, "queue", 5.0, false, MINUTE + 1_500);
    m.set_member(Protocol::Statsd, "users", "b", MINUTE + 1_500);
    let next = stored_values(m.take_for_store(MINUTE + 3_000, false));
    let want = vec![
        ("hits".to_string(), MINUTE, 2.0),
        ("queue".to_string(), MINUTE, 5.0),
        ("users".to_string(), MINUTE, 2.0),
    ];
    assert_eq!(next, want);
}

#[test]
fn a_clock_step_back_across_a_minute_does_not_shrink_the_stored_minute() {
    let metrics = attached();
    let mut m = metrics.lock();
    for (at_ms, member) in [(30_000, "a"), (59_000, "b")] {
        m.counter(Protocol::Statsd, "hits", 1.0, MINUTE + at_ms);
        m.set_member(Protocol::Statsd, "users", member, MINUTE + at_ms);
    }
    let first = stored_values(m.take_for_store(MINUTE + 59_100, false));
    let want = vec![("hits".to_string(), MINUTE, 2.0), ("users".to_string(), MINUTE, 2.0)];
    assert_eq!(first, want);
    m.counter(Protocol::Statsd, "hits", 1.0, MINUTE + 60_500);
    m.set_member(Protocol::Statsd, "users", "c", MINUTE + 60_500);
    // The clock steps back into the minute before: these updates count in the current minute.
    m.counter(Protocol::Statsd, "hits", 1.0, MINUTE + 59_800);
    m.set_member(Protocol::Statsd, "users", "d", MINUTE + 59_800);
    m.prune(MINUTE + 59_850);
    let after = stored_values(m.take_for_store(MINUTE + 59_900, false));
    let want = vec![
        ("hits".to_string(), MINUTE + 60_000, 2.0),
        ("users".to_string(), MINUTE + 60_000, 2.0),
    ];
    assert_eq!(after, want);
    drop(m);
    let other = metrics.other_metrics(MINUTE + 60_900);
    assert_eq!(other.counters[0].1.total, 4.0);
    assert_eq!(other.sets[0].unique, 2);
}
