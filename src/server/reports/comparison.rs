//! Gathering the two sides of a before/after comparison from the store and judging each
//! operation with [`super::compare`]: per operation name (tags merged) the side's overall
//! quantiles from its range (minute and hour rows), and one entry per window of stored minutes
//! (the windows that are the unit of replication; minute rows only, so a side older than the
//! minute retention has none and reads "need more data"). Windows are a minute wide, or wider
//! when the longer side would need more than [`MAX_WINDOWS`]: every minute of both ranges is
//! tested, as every minute is in the overall quantiles.

use std::collections::HashMap;

use super::compare::{self, Side, WindowQuantiles, MAX_WINDOWS};
use super::sections::{ScopeFilter, MINUTE_MS};
use crate::model::reports::{Comparison, ComparisonRow, SideInfo, MAX_COMPARED};
use crate::server::metrics::tags;
use crate::server::stats::{OperationRegistry, RangeStats};
use crate::server::store::query::{self, Plan};
use crate::server::store::{Retention, SeriesKind};

/// One side as asked: a range, the scope, and for a tag comparison the tag it requires.
pub struct SideSpec<'a> {
    pub from_ms: u64,
    pub to_ms: u64,
    pub scope: &'a ScopeFilter,
    /// `(key, value)` the series must also have.
    pub tag: Option<(String, String)>,
}

impl SideSpec<'_> {
    fn keeps(&self, key: &str) -> bool {
        self.scope.keeps(key)
            && self
                .tag
                .as_ref()
                .is_none_or(|(k, v)| tags::tags_of(key).any(|(tk, tv)| tk == k && tv == v))
    }

    fn info(&self) -> SideInfo {
        SideInfo {
            from_ms: self.from_ms,
            to_ms: self.to_ms,
            tag: self.tag.as_ref().map(|(k, v)| format!("{k}={v}")),
        }
    }
}

/// One operation on one side.
#[derive(Default)]
struct Gathered {
    stats: RangeStats,
    windows: Vec<WindowQuantiles>,
}

/// Width of the windows both sides are cut into, ms: the fewest whole minutes that fit the
/// longer side in [`MAX_WINDOWS`] windows. The same on both sides, since their per-window
/// quantiles are compared and a wider window's vary less.
fn window_ms(before: &SideSpec<'_>, after: &SideSpec<'_>) -> u64 {
    let minutes = |s: &SideSpec<'_>| s.to_ms.saturating_sub(origin(s)).div_ceil(MINUTE_MS);
    let longest = minutes(before).max(minutes(after));
    longest.div_ceil(MAX_WINDOWS as u64).max(1) * MINUTE_MS
}

/// Where a side's first window starts: the minute its range starts in.
fn origin(side: &SideSpec<'_>) -> u64 {
    side.from_ms - side.from_ms % MINUTE_MS
}

/// The side's operations (by name) over its range, with their windows of `window_ms` (whole
/// minutes, from [`window_ms`]) for the names `wanted` keeps. A window merges its minutes
/// across tag sets (rows come oldest first), so only one window of bins is held at a time.
fn gather(
    conn: &rusqlite::Connection,
    side: &SideSpec<'_>,
    now_ms: u64,
    retention: &Retention,
    wanted: Option<(&[String], u64)>,
) -> rusqlite::Result<HashMap<String, Gathered>> {
    let plan = query::plan_now(conn, side.from_ms, side.to_ms, now_ms, retention, None)?;
    let mut out: HashMap<String, Gathered> = HashMap::new();
    for (key, stats) in query::range_stats(conn, SeriesKind::Operation, &plan)? {
        if side.keeps(&key) {
            out.entry(tags::name_of(&key).to_string()).or_default().stats.merge(&stats);
        }
    }
    let Some((wanted, window_ms)) = wanted else { return Ok(out) };
    let minutes = Plan::minutes(side.from_ms, side.to_ms);
    let origin = origin(side);
    let mut window: Option<u64> = None;
    let mut open: HashMap<&str, RangeStats> = HashMap::new();
    let flush = |open: &mut HashMap<&str, RangeStats>, out: &mut HashMap<String, Gathered>| {
        for (name, s) in open.drain() {
            let Some(g) = out.get_mut(name) else { continue };
            // `window_ms` fits the range in MAX_WINDOWS: the bound only guards the memory.
            if g.windows.len() < MAX_WINDOWS && s.count() > 0 {
                let [p50_ms, p95_ms, p99_ms] = s.quantiles();
                g.windows.push(WindowQuantiles { count: s.count(), p50_ms, p95_ms, p99_ms });
            }
        }
    };
    query::scan_timings(conn, SeriesKind::Operation, &minutes, |at, key, rollup| {
        if !side.keeps(key) {
            return;
        }
        let name = tags::name_of(key);
        let Some(name) = wanted.iter().find(|w| w.as_str() == name) else { return };
        let at_window = at.saturating_sub(origin) / window_ms.max(MINUTE_MS);
        if window != Some(at_window) {
            flush(&mut open, &mut out);
            window = Some(at_window);
        }
        open.entry(name.as_str()).or_default().add(rollup);
    })?;
    flush(&mut open, &mut out);
    Ok(out)
}

/// Compares `before` with `after`: every operation of the after side (the busiest
/// [`MAX_COMPARED`]) that the before side also has.
pub fn compare_sides(
    conn: &rusqlite::Connection,
    before: &SideSpec<'_>,
    after: &SideSpec<'_>,
    now_ms: u64,
    retention: &Retention,
) -> rusqlite::Result<Comparison> {
    let after_all = gather(conn, after, now_ms, retention, None)?;
    let before_all = gather(conn, before, now_ms, retention, None)?;
    let mut names: Vec<(&String, u64)> = after_all
        .iter()
        .filter(|(name, _)| before_all.contains_key(*name))
        .map(|(name, g)| (name, g.stats.count()))
        .collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let left_out = names.len().saturating_sub(MAX_COMPARED);
    let wanted: Vec<String> =
        names.into_iter().take(MAX_COMPARED).map(|(n, _)| n.clone()).collect();
    let window_ms = window_ms(before, after);
    let after_side = gather(conn, after, now_ms, retention, Some((&wanted, window_ms)))?;
    let before_side = gather(conn, before, now_ms, retention, Some((&wanted, window_ms)))?;
    let side = |g: &Gathered| -> ([f64; 3], u64) { (g.stats.quantiles(), g.stats.count()) };
    let mut rows = Vec::new();
    for name in &wanted {
        let (Some(b), Some(a)) = (before_side.get(name), after_side.get(name)) else { continue };
        let ((bq, bc), (aq, ac)) = (side(b), side(a));
        let judged = compare::compare(
            &Side { windows: &b.windows, p50_ms: bq[0], p95_ms: bq[1], p99_ms: bq[2], count: bc },
            &Side { windows: &a.windows, p50_ms: aq[0], p95_ms: aq[1], p99_ms: aq[2], count: ac },
            OperationRegistry::RELATIVE_ERROR,
        );
        rows.push(ComparisonRow {
            name: name.clone(),
            before_count: bc,
            after_count: ac,
            p50: judged.p50,
            p95: judged.p95,
            p99: judged.p99,
            windows_before: judged.windows_before,
            windows_after: judged.windows_after,
        });
    }
    let geomean =
        |pick: fn(&ComparisonRow) -> (f64, f64)| compare::geomean_change_pct(rows.iter().map(pick));
    Ok(Comparison {
        before: before.info(),
        after: after.info(),
        geomean_p50_pct: geomean(|r| (r.p50.before_ms, r.p50.after_ms)),
        geomean_p95_pct: geomean(|r| (r.p95.before_ms, r.p95.after_ms)),
        geomean_p99_pct: geomean(|r| (r.p99.before_ms, r.p99.after_ms)),
        rows,
        window_ms,
        method: compare::method(window_ms),
        left_out,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::model::reports::{Scope, Verdict};
    use crate::server::stats::Rollup;
    use crate::server::store::{Batch, Store, StoreConfig, TimingRow};

    /// 2026-11-30 00:00:00 UTC.
    const T0: u64 = 1_764_460_800_000;
    const DAY_MS: u64 = 86_400_000;
    const PER_MINUTE: u64 = 40;

    /// A store over a temporary directory whose clock stands at `now_ms`.
    fn store(dir: &tempfile::TempDir, now_ms: u64) -> Store {
        let config =
            StoreConfig { clock: Arc::new(move || now_ms), ..StoreConfig::new(dir.path()) };
        Store::open(config).unwrap()
    }

    /// Writes `days` days of minutes of `name` from `start`, `PER_MINUTE` samples a minute of
    /// 20–60 ms, times `scale(day)`.
    fn backfill(store: &Store, name: &str, start: u64, days: u64, scale: impl Fn(u64) -> f64) {
        for day in 0..days {
            let mut batch = Batch::default();
            for minute in day * 1440..(day + 1) * 1440 {
                let mut rollup = Rollup::default();
                for i in 0..PER_MINUTE {
                    let spread = ((minute * 7 + i * 13) % 41) as f64;
                    rollup.record((20.0 + spread) * scale(day), 1, true);
                }
                let at_ms = start + minute * MINUTE_MS;
                let kind = SeriesKind::Operation;
                batch.timings.push(TimingRow { kind, name: name.into(), at_ms, rollup });
            }
            assert!(store.write(batch));
        }
        assert!(store.flush(Duration::from_secs(60)));
    }

    #[test]
    fn a_week_that_slows_down_from_its_third_day_is_a_regression() {
        let (before_from, after_from) = (T0, T0 + 7 * DAY_MS);
        let now_ms = after_from + 7 * DAY_MS + 10 * MINUTE_MS;
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir, now_ms);
        backfill(&store, "api.checkout", before_from, 7, |_| 1.0);
        backfill(&store, "api.checkout", after_from, 7, |day| if day >= 2 { 1.3 } else { 1.0 });
        let scope = ScopeFilter::new(&Scope::default()).unwrap();
        let side =
            |from_ms| SideSpec { from_ms, to_ms: from_ms + 7 * DAY_MS, scope: &scope, tag: None };
        let (before, after) = (side(before_from), side(after_from));
        let retention = store.retention();
        let c = store
            .readers()
            .with(|conn| compare_sides(conn, &before, &after, now_ms, &retention))
            .unwrap();
        let row = &c.rows[0];
        assert_eq!(row.name, "api.checkout");
        assert_eq!(row.p95.verdict, Verdict::Regressed, "{row:?}");
        let (lo, hi) = row.p95.interval_pct.unwrap();
        assert!(lo > 0.0 && hi >= lo, "the interval excludes no change: {row:?}");
        // The whole week on each side is tested, in windows of the width the answer states.
        let minutes: u64 = 7 * 1440;
        assert_eq!(c.window_ms, minutes.div_ceil(MAX_WINDOWS as u64) * MINUTE_MS);
        let windows = (7 * DAY_MS / c.window_ms) as usize;
        assert_eq!((row.windows_before, row.windows_after), (windows, windows), "{row:?}");
        let width = format!("{}-minute windows", c.window_ms / MINUTE_MS);
        assert!(c.method.contains(&width), "{}", c.method);
    }
}
