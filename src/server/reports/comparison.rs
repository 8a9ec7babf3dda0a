//! Gathering the two sides of a before/after comparison from the store and judging each
//! operation with [`super::compare`]: per operation name (tags merged) the side's overall
//! quantiles from its range (minute and hour rows), and one entry per stored minute (the
//! windows that are the unit of replication; minute rows only, so a side older than the
//! minute retention has none and reads "need more data").

use std::collections::HashMap;

use super::compare::{self, Side, WindowQuantiles};
use super::sections::{ScopeFilter, MINUTE_MS};
use crate::model::reports::{Comparison, ComparisonRow, SideInfo, MAX_COMPARED};
use crate::server::metrics::tags;
use crate::server::stats::{OperationRegistry, RangeStats};
use crate::server::store::query::{self, Plan};
use crate::server::store::{Retention, SeriesKind};

/// Most windows one operation's side holds (two days of minutes); later ones are left out.
const MAX_WINDOWS: usize = 2_880;

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

/// The side's operations (by name) over its range, with their minute windows for the names
/// `wanted` keeps. Windows are merged across tag sets minute by minute (rows come oldest
/// first), so only one minute of bins is held at a time.
fn gather(
    conn: &rusqlite::Connection,
    side: &SideSpec<'_>,
    now_ms: u64,
    retention: &Retention,
    wanted: Option<&[String]>,
) -> rusqlite::Result<HashMap<String, Gathered>> {
    let plan = query::plan_now(conn, side.from_ms, side.to_ms, now_ms, retention, None)?;
    let mut out: HashMap<String, Gathered> = HashMap::new();
    for (key, stats) in query::range_stats(conn, SeriesKind::Operation, &plan)? {
        if side.keeps(&key) {
            out.entry(tags::name_of(&key).to_string()).or_default().stats.merge(&stats);
        }
    }
    let Some(wanted) = wanted else { return Ok(out) };
    let minutes = Plan::minutes(side.from_ms, side.to_ms);
    let mut minute: Option<u64> = None;
    let mut open: HashMap<&str, RangeStats> = HashMap::new();
    let flush = |open: &mut HashMap<&str, RangeStats>, out: &mut HashMap<String, Gathered>| {
        for (name, s) in open.drain() {
            let Some(g) = out.get_mut(name) else { continue };
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
        let at_minute = at - at % MINUTE_MS;
        if minute != Some(at_minute) {
            flush(&mut open, &mut out);
            minute = Some(at_minute);
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
    let after_side = gather(conn, after, now_ms, retention, Some(&wanted))?;
    let before_side = gather(conn, before, now_ms, retention, Some(&wanted))?;
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
        window_ms: MINUTE_MS,
        method: compare::METHOD.to_string(),
        left_out,
    })
}
