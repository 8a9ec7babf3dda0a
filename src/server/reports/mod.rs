//! Performance reports: the one owner of saved reports, their sections and the report cache.
//!
//! A report is asked for with a range, a scope and an optional baseline ([`ReportRequest`]);
//! it is saved in the store (`store::reports`). A range given relative to now (`from: "-1h"`,
//! no `to` or `to: "now"`) is *live*: each computation covers the last N, and its sections are
//! cached for the live TTL. A fixed range is *closed*: once its data has settled (its end more
//! than [`SETTLE_MS`] ago) its sections are computed once, saved with the report and cached
//! until evicted. Sections are computed one at a time (the page loads them as they scroll into
//! view), each from the store (`sections`), the alert history, the recommendations or the
//! comparison of the baseline with the range (`comparison`, judged by `compare`).

pub mod cache;
pub mod compare;
pub mod comparison;
pub mod export;
pub mod schedule;
pub mod sections;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::StatusCode;

use self::cache::{Kind, ReportCache, Value};
use self::comparison::SideSpec;
use self::sections::ScopeFilter;
use crate::model::history::Tier;
use crate::model::reports::{
    CompareRequest, Comparison, Created, HostSection, RangeArg, RecommendationsSection, Report,
    ReportInfo, ReportRequest, ReportSpec, Scope, Section, SectionBody, SectionId, TimeArg,
    DEFAULT_APDEX_T_MS, MAX_NAME_BYTES,
};
use crate::model::tags::MAX_SELECTED;
use crate::server::api::range::parse_time;
use crate::server::error::ApiError;
use crate::server::state::AppState;
use crate::server::stats::OperationRegistry;
use crate::server::store::reports::{ReportWrite, MAX_REPORTS};

/// A closed range's data is taken as final this long after its end (minute rows are written
/// as minutes close; late samples may still arrive for a minute or so).
pub const SETTLE_MS: u64 = 3 * 60_000;

/// The turn to compute one section: held while computing it, awaited by other requests.
type Turn = Arc<tokio::sync::Mutex<()>>;

/// A request's share of a [`Turn`]; the last one to drop removes the turn.
struct TurnGuard<'r> {
    reports: &'r Reports,
    key: (u64, SectionId),
    turn: Turn,
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        let mut turns = self.reports.turns.lock().unwrap_or_else(PoisonError::into_inner);
        // Held by the map and by this guard alone: nobody else waits for it.
        if Arc::strong_count(&self.turn) <= 2 {
            turns.remove(&self.key);
        }
    }
}

/// Saved reports and the cache of what was computed from them.
pub struct Reports {
    pub cache: ReportCache,
    /// The section computations under way, one turn per (report, section): see
    /// [`section`]. An entry lives only while someone holds or awaits its turn.
    turns: Mutex<HashMap<(u64, SectionId), Turn>>,
    /// Reports whose sections are being computed ahead of the page (see [`warm`]).
    warming: Mutex<HashSet<u64>>,
}

impl Reports {
    pub fn new(config: cache::CacheConfig) -> Self {
        Reports {
            cache: ReportCache::new(config),
            turns: Mutex::default(),
            warming: Mutex::default(),
        }
    }

    /// The turn to compute section `which` of report `id`, given back when the guard drops
    /// (also when the request is cancelled while it waits).
    fn turn(&self, id: u64, which: SectionId) -> TurnGuard<'_> {
        let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        let turn = Arc::clone(turns.entry((id, which)).or_default());
        TurnGuard { reports: self, key: (id, which), turn }
    }
}

fn store_failed(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "A report query failed.");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the report query failed")
}

/// Runs a blocking store job off the runtime's workers, under the query rate limit.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    state.limits.queries.check()?;
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(|_| crate::server::api::ops::internal())?
}

fn time_of(arg: &TimeArg, field: &'static str, now_ms: u64) -> Result<u64, ApiError> {
    let parsed = match arg {
        TimeArg::Ms(ms) => Some(*ms).filter(|&ms| ms <= crate::model::MAX_TIME_MS),
        TimeArg::Text(text) => parse_time(text, now_ms),
    };
    parsed.ok_or_else(|| {
        ApiError::bad_field(
            field,
            format!(
                "{field}: must be Unix ms, RFC 3339, now or relative like -24h, before the year \
                 10000"
            ),
        )
    })
}

/// `[from, to)` of a request's times (`to` defaults to now); names the field when wrong.
fn range_of(
    from: &TimeArg,
    to: Option<&TimeArg>,
    fields: (&'static str, &'static str),
    now_ms: u64,
) -> Result<(u64, u64), ApiError> {
    let from_ms = time_of(from, fields.0, now_ms)?;
    let to_ms = to.map(|t| time_of(t, fields.1, now_ms)).transpose()?.unwrap_or(now_ms);
    if from_ms >= to_ms {
        return Err(ApiError::bad_field(fields.0, format!("{}: must be before to", fields.0)));
    }
    Ok((from_ms, to_ms))
}

/// `"baseline": {"from": "before"}`: the period before the range, as long as it.
pub const BEFORE: &str = "before";

/// Whether a request's range moves with the clock: `from` relative, `to` absent or `now`.
fn live_ms(req: &ReportRequest, from_ms: u64, to_ms: u64) -> Option<u64> {
    let relative = matches!(&req.from, TimeArg::Text(t) if t.trim().starts_with('-'));
    let to_now = match &req.to {
        None => true,
        Some(TimeArg::Text(t)) => t.trim() == "now",
        Some(TimeArg::Ms(_)) => false,
    };
    (relative && to_now).then_some(to_ms - from_ms)
}

/// Most characters of a scope's glob, and of each tag key and value it requires: as many as a
/// name may have.
const MAX_SCOPE_CHARS: usize = crate::server::metrics::MAX_NAME_CHARS;

/// A request's scope compiled, or a 400 naming what is wrong with it.
fn scope_filter(scope: &Scope) -> Result<ScopeFilter, ApiError> {
    let fits =
        |text: &str| text.chars().count() <= MAX_SCOPE_CHARS && !text.chars().any(char::is_control);
    if !scope.operations.as_deref().is_none_or(fits) {
        let words = format!(
            "scope.operations: at most {MAX_SCOPE_CHARS} characters, no control characters"
        );
        return Err(ApiError::bad_field("scope.operations", words));
    }
    if scope.tags.len() > MAX_SELECTED || !scope.tags.iter().all(|(k, v)| fits(k) && fits(v)) {
        let words = format!(
            "scope.tags: at most {MAX_SELECTED}, each key and value of at most \
             {MAX_SCOPE_CHARS} characters, no control characters"
        );
        return Err(ApiError::bad_field("scope.tags", words));
    }
    ScopeFilter::new(scope)
        .map_err(|e| ApiError::bad_field("scope.operations", format!("scope.operations: {e}")))
}

/// Checks a request and resolves its times at `now_ms`.
pub fn spec_of(req: &ReportRequest, now_ms: u64) -> Result<ReportSpec, ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(ApiError::bad_field("name", format!("name: 1 to {MAX_NAME_BYTES} bytes")));
    }
    let (from_ms, to_ms) = range_of(&req.from, req.to.as_ref(), ("from", "to"), now_ms)?;
    scope_filter(&req.scope)?;
    let baseline = match &req.baseline {
        None => None,
        // "The period before": as long as the range, ending where it starts.
        Some(RangeArg { from: TimeArg::Text(t), to: None }) if t.trim() == BEFORE => {
            Some((from_ms.saturating_sub(to_ms - from_ms), from_ms))
        }
        Some(b) => {
            let (bf, bt) =
                range_of(&b.from, b.to.as_ref(), ("baseline.from", "baseline.to"), now_ms)?;
            if bf < to_ms && from_ms < bt {
                return Err(ApiError::bad_field(
                    "baseline",
                    "baseline: must not overlap the report's range (compare two periods)",
                ));
            }
            Some((bf, bt))
        }
    };
    let apdex_t_ms = req.apdex_t_ms.unwrap_or(DEFAULT_APDEX_T_MS);
    if !(apdex_t_ms.is_finite() && apdex_t_ms > 0.0) {
        return Err(ApiError::bad_field("apdex_t_ms", "apdex_t_ms: a number of ms above 0"));
    }
    Ok(ReportSpec {
        name: name.to_string(),
        from_ms,
        to_ms,
        live_ms: live_ms(req, from_ms, to_ms),
        scope: req.scope.clone(),
        baseline,
        apdex_t_ms,
    })
}

/// The URLs of a report.
pub fn urls(id: u64) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("page".to_string(), format!("/reports/{id}")),
        ("json".to_string(), format!("/api/v1/reports/{id}")),
        ("html".to_string(), format!("/api/v1/reports/{id}.html")),
        ("markdown".to_string(), format!("/api/v1/reports/{id}.md")),
    ])
}

/// Saves a new report.
pub async fn create(state: &AppState, req: ReportRequest) -> Result<Created, ApiError> {
    let spec = spec_of(&req, state.store.now_ms())?;
    let created_ms = crate::server::now_ms();
    let id = blocking(state, move |state| {
        state
            .store
            .write_report(ReportWrite::Insert { spec: Box::new(spec), created_ms })
            .map_err(store_failed)
    })
    .await?;
    if id == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{MAX_REPORTS} reports are kept already: delete one first"),
        ));
    }
    Ok(Created { id, urls: urls(id) })
}

pub async fn list(state: &AppState) -> Result<Vec<ReportInfo>, ApiError> {
    blocking(state, |state| {
        state.store.readers().with(crate::server::store::reports::list).map_err(store_failed)
    })
    .await
}

fn not_found(id: u64) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no report {id}")).with_field("id")
}

/// A report and the sections saved with it.
async fn load(state: &AppState, id: u64) -> Result<(ReportInfo, Vec<Section>), ApiError> {
    blocking(state, move |state| {
        state
            .store
            .readers()
            .with(|c| crate::server::store::reports::get(c, id))
            .map_err(store_failed)?
            .ok_or_else(|| not_found(id))
    })
    .await
}

pub async fn info(state: &AppState, id: u64) -> Result<ReportInfo, ApiError> {
    blocking(state, move |state| {
        state
            .store
            .readers()
            .with(|c| crate::server::store::reports::info(c, id))
            .map_err(store_failed)?
            .ok_or_else(|| not_found(id))
    })
    .await
}

pub async fn delete(state: &AppState, id: u64) -> Result<(), ApiError> {
    // Every turn of the report's sections, in one order: a section being computed (the warmer,
    // a page) finishes and is cached first, then forgotten below with the rest; one asked
    // after finds no report. Without this, a late section stayed cached under a deleted id.
    let turns: Vec<_> = SectionId::ALL.into_iter().map(|w| state.reports.turn(id, w)).collect();
    let mut held = Vec::with_capacity(turns.len());
    for t in &turns {
        held.push(t.turn.lock().await);
    }
    let deleted = blocking(state, move |state| {
        state.store.write_report(ReportWrite::Delete { id }).map_err(store_failed)
    })
    .await?;
    state.reports.cache.forget_report(id);
    drop(held);
    if deleted == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

/// The range a report covers now.
fn range_now(spec: &ReportSpec, now_ms: u64) -> (u64, u64) {
    match spec.live_ms {
        Some(span) => (now_ms.saturating_sub(span), now_ms),
        None => (spec.from_ms, spec.to_ms),
    }
}

/// Whether a report's sections are final (and so saved and cached without a TTL).
fn settled(spec: &ReportSpec, now_ms: u64) -> bool {
    spec.live_ms.is_none() && spec.to_ms.saturating_add(SETTLE_MS) <= now_ms
}

/// One section of report `id`: from the cache, the report's saved sections, or computed.
/// A section is computed once at a time: a request for a section being computed (by another
/// request, or ahead of the page by [`warm`]) waits for that computation and takes its result
/// from the cache.
pub async fn section(
    state: &AppState,
    id: u64,
    which: SectionId,
) -> Result<Arc<Section>, ApiError> {
    let key = cache::Key::Section { report: id, section: which };
    if let Some(Value::Section(s)) = state.reports.cache.lookup(&key) {
        return Ok(s);
    }
    let turn = state.reports.turn(id, which);
    let _mine = turn.turn.lock().await;
    if let Some(Value::Section(s)) = state.reports.cache.lookup(&key) {
        return Ok(s);
    }
    let (info, saved) = load(state, id).await?;
    section_of(state, &info, saved, which).await
}

/// Computes every section of report `id` but the Summary ahead of the page, in page order, in
/// the background. The report page renders the Summary on the server and loads the other
/// sections as they scroll into view; the expensive ones (Operations, the Comparison) took
/// longer than the 100 ms a section may take to appear when they were computed only then.
/// Each is computed once (cached, and saved with a closed report), so scrolling to it later
/// only reads it; a section the page asks for meanwhile waits for this computation (see
/// [`section`]). One warm-up per report at a time; it stops at the first refusal (the report
/// deleted, the query rate limit).
pub fn warm(state: &AppState, id: u64) {
    {
        let mut warming = state.reports.warming.lock().unwrap_or_else(PoisonError::into_inner);
        if warming.len() >= MAX_WARMING || !warming.insert(id) {
            return;
        }
    }
    let state = state.clone();
    tokio::spawn(async move {
        for which in SectionId::ALL.into_iter().filter(|s| *s != SectionId::Summary) {
            if section(&state, id, which).await.is_err() {
                break;
            }
        }
        state.reports.warming.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    });
}

/// Most reports warmed at once (each warm-up computes its sections one after another).
const MAX_WARMING: usize = 4;

async fn section_of(
    state: &AppState,
    info: &ReportInfo,
    saved: Vec<Section>,
    which: SectionId,
) -> Result<Arc<Section>, ApiError> {
    let now_ms = state.store.now_ms();
    let closed = settled(&info.spec, now_ms);
    let kind = if closed { Kind::Closed } else { Kind::Live };
    let key = cache::Key::Section { report: info.id, section: which };
    if let Some(Value::Section(s)) = state.reports.cache.get(&key, kind) {
        return Ok(s);
    }
    let from_store = saved.iter().find(|s| s.id == which).cloned();
    let computed = match from_store {
        Some(s) => Arc::new(s),
        None => {
            let s = Arc::new(compute(state, &info.spec, which, now_ms).await?);
            if closed {
                let (id, section) = (info.id, Box::new((*s).clone()));
                blocking(state, move |state| {
                    state
                        .store
                        .write_report(ReportWrite::SaveSection { id, section })
                        .map_err(store_failed)
                })
                .await?;
            }
            s
        }
    };
    let bytes = serde_json::to_vec(&*computed).map_or(0, |b| b.len());
    state.reports.cache.insert(key, kind, Value::Section(Arc::clone(&computed)), bytes);
    Ok(computed)
}

/// Every section of report `id`, in page order: cached ones without reading the saved
/// sections, the others computed (or read back) as [`section`] does.
pub async fn report(state: &AppState, id: u64) -> Result<Report, ApiError> {
    let mut info = None;
    let mut saved: Option<Vec<Section>> = None;
    let mut sections = Vec::with_capacity(SectionId::ALL.len());
    for which in SectionId::ALL {
        let key = cache::Key::Section { report: id, section: which };
        if let Some(Value::Section(s)) = state.reports.cache.lookup(&key) {
            sections.push((*s).clone());
            continue;
        }
        // Computed under the section's turn, as [`section`] does: a delete waits for it.
        let turn = state.reports.turn(id, which);
        let _mine = turn.turn.lock().await;
        if let Some(Value::Section(s)) = state.reports.cache.lookup(&key) {
            sections.push((*s).clone());
            continue;
        }
        if saved.is_none() {
            let (i, s) = load(state, id).await?;
            (info, saved) = (Some(i), Some(s));
        }
        let (Some(i), Some(all)) = (&info, &mut saved) else { continue };
        let s = section_of(state, i, all.clone(), which).await?;
        all.retain(|x| x.id != which);
        all.push((*s).clone());
        sections.push((*s).clone());
    }
    let info = match info {
        Some(i) => i,
        None => self::info(state, id).await?,
    };
    Ok(Report { info, sections })
}

/// Computes one section of `spec` at `now_ms`.
async fn compute(
    state: &AppState,
    spec: &ReportSpec,
    which: SectionId,
    now_ms: u64,
) -> Result<Section, ApiError> {
    let (from_ms, to_ms) = range_now(spec, now_ms);
    let blank = |tier: Tier| Section {
        id: which,
        from_ms,
        to_ms,
        tier,
        relative_error: OperationRegistry::RELATIVE_ERROR,
        computed_ms: now_ms,
        empty: None,
        body: SectionBody::NotAsked,
    };
    match which {
        SectionId::Host => {
            let step = (to_ms - from_ms).div_ceil(120).max(1000);
            let fields = ["cpu_pct", "memory_pct", "load_avg_1", "self_cpu_pct"]
                .iter()
                .filter_map(|f| crate::server::store::host::field_index(f))
                .collect();
            let range = crate::server::api::range::TimeRange { from_ms, to_ms };
            let host =
                crate::server::api::history::host_history(state, range, step, fields).await?;
            let mut s = blank(host.tier);
            s.from_ms = host.from_ms;
            if host.points.is_empty() {
                s.empty = Some("no host samples are stored for this range".into());
            }
            s.body = SectionBody::Host(HostSection {
                step_ms: host.step_ms,
                fields: host.fields,
                points: host.points,
            });
            Ok(s)
        }
        SectionId::Recommendations => {
            let recs = crate::server::api::alerts::compute_recommendations(state).await?;
            let mut s = blank(Tier::Raw);
            (s.from_ms, s.to_ms) = (recs.baseline_from_ms, recs.now_ms);
            if recs.items.is_empty() {
                s.empty = Some("nothing to recommend from the data held now".into());
            }
            s.body = SectionBody::Recommendations(RecommendationsSection { items: recs.items });
            Ok(s)
        }
        SectionId::Comparison => {
            let Some((bf, bt)) = spec.baseline else {
                let mut s = blank(Tier::Minute);
                s.empty = Some("no baseline was set for this report".into());
                return Ok(s);
            };
            let scope = spec.scope.clone();
            let comparison = blocking(state, move |state| {
                let scope = ScopeFilter::new(&scope).map_err(store_failed)?;
                let before = SideSpec { from_ms: bf, to_ms: bt, scope: &scope, tag: None };
                let after = SideSpec { from_ms, to_ms, scope: &scope, tag: None };
                let retention = state.store.retention();
                state
                    .store
                    .readers()
                    .with(|c| comparison::compare_sides(c, &before, &after, now_ms, &retention))
                    .map_err(store_failed)
            })
            .await?;
            let mut s = blank(Tier::Minute);
            if comparison.rows.is_empty() {
                s.empty = Some("no operation of this scope has samples on both sides".into());
            }
            s.body = SectionBody::Comparison(Box::new(comparison));
            Ok(s)
        }
        _ => {
            let spec = spec.clone();
            let rules: Vec<_> = state.alerts.rules().into_iter().filter(|r| r.enabled).collect();
            blocking(state, move |state| {
                let scope = ScopeFilter::new(&spec.scope).map_err(store_failed)?;
                let thresholds = state.app.thresholds();
                let retention = state.store.retention();
                state
                    .store
                    .readers()
                    .with(|conn| {
                        let input = sections::Input {
                            conn,
                            readers: state.store.readers(),
                            from_ms,
                            to_ms,
                            now_ms,
                            retention,
                            scope: &scope,
                            thresholds,
                            apdex_t_ms: spec.apdex_t_ms,
                        };
                        sections::compute(&input, which, &rules)
                    })
                    .map_err(store_failed)
            })
            .await
        }
    }
}

/// One side of a comparison request resolved: range, scope and tag.
struct Resolved {
    from_ms: u64,
    to_ms: u64,
    scope: crate::model::reports::Scope,
    tag: Option<(String, String)>,
}

async fn resolve_side(
    state: &AppState,
    value: &serde_json::Value,
    field: &'static str,
    shared: (u64, u64),
    scope: &crate::model::reports::Scope,
    now_ms: u64,
) -> Result<Resolved, ApiError> {
    let wrong = || {
        ApiError::bad_field(
            field,
            format!("{field}: give {{\"from\", \"to\"}}, {{\"report\": id}} or {{\"tag\": \"key:value\"}}"),
        )
    };
    let obj = value.as_object().ok_or_else(wrong)?;
    if let Some(id) = obj.get("report") {
        let id = id.as_u64().ok_or_else(wrong)?;
        let info = info(state, id).await?;
        let (from_ms, to_ms) = range_now(&info.spec, now_ms);
        return Ok(Resolved { from_ms, to_ms, scope: info.spec.scope, tag: None });
    }
    if let Some(tag) = obj.get("tag") {
        let text = tag.as_str().ok_or_else(wrong)?;
        let parsed = crate::model::tags::Tag::parse(text)
            .map_err(|e| ApiError::bad_field(field, format!("{field}.tag: {e}")))?;
        return Ok(Resolved {
            from_ms: shared.0,
            to_ms: shared.1,
            scope: scope.clone(),
            tag: Some((parsed.key, parsed.value)),
        });
    }
    let range: crate::model::reports::RangeArg =
        serde_json::from_value(value.clone()).map_err(|_| wrong())?;
    let names =
        if field == "before" { ("before.from", "before.to") } else { ("after.from", "after.to") };
    let (from_ms, to_ms) = range_of(&range.from, range.to.as_ref(), names, now_ms)?;
    Ok(Resolved { from_ms, to_ms, scope: scope.clone(), tag: None })
}

/// `POST /api/v1/compare`.
pub async fn compare(state: &AppState, req: CompareRequest) -> Result<Arc<Comparison>, ApiError> {
    let now_ms = state.store.now_ms();
    let shared = match &req.from {
        Some(from) => range_of(from, req.to.as_ref(), ("from", "to"), now_ms)?,
        None => (now_ms.saturating_sub(3_600_000), now_ms),
    };
    scope_filter(&req.scope)?;
    let before = resolve_side(state, &req.before, "before", shared, &req.scope, now_ms).await?;
    let after = resolve_side(state, &req.after, "after", shared, &req.scope, now_ms).await?;
    let canonical = serde_json::to_string(&(
        (before.from_ms, before.to_ms, &before.scope, &before.tag),
        (after.from_ms, after.to_ms, &after.scope, &after.tag),
    ))
    .map_err(store_failed)?;
    let key = cache::Key::Comparison(canonical);
    if let Some(Value::Comparison(c)) = state.reports.cache.get(&key, Kind::Comparison) {
        return Ok(c);
    }
    let comparison = blocking(state, move |state| {
        let (bs, as_) = (
            ScopeFilter::new(&before.scope).map_err(store_failed)?,
            ScopeFilter::new(&after.scope).map_err(store_failed)?,
        );
        let b =
            SideSpec { from_ms: before.from_ms, to_ms: before.to_ms, scope: &bs, tag: before.tag };
        let a =
            SideSpec { from_ms: after.from_ms, to_ms: after.to_ms, scope: &as_, tag: after.tag };
        let retention = state.store.retention();
        state
            .store
            .readers()
            .with(|c| comparison::compare_sides(c, &b, &a, now_ms, &retention))
            .map_err(store_failed)
    })
    .await?;
    let comparison = Arc::new(comparison);
    let bytes = serde_json::to_vec(&*comparison).map_or(0, |b| b.len());
    state.reports.cache.insert(
        key,
        Kind::Comparison,
        Value::Comparison(Arc::clone(&comparison)),
        bytes,
    );
    Ok(comparison)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns_held(reports: &Reports) -> usize {
        reports.turns.lock().unwrap().len()
    }

    /// A turn lives while a request holds or awaits it, and goes with the last one, also when
    /// that request is cancelled while waiting.
    #[tokio::test]
    async fn a_turn_goes_with_its_last_holder_even_a_cancelled_one() {
        let reports = Reports::new(Default::default());
        let first = reports.turn(1, SectionId::Operations);
        let held = first.turn.lock().await;
        let second = reports.turn(1, SectionId::Operations);
        let other = reports.turn(1, SectionId::Comparison);
        assert_eq!(turns_held(&reports), 2);
        // The second request waits, then is cancelled.
        let waited = tokio::time::timeout(std::time::Duration::ZERO, second.turn.lock()).await;
        assert!(waited.is_err(), "the turn is taken");
        drop(waited);
        drop(second);
        assert_eq!(turns_held(&reports), 2, "the first still holds its turn");
        drop(held);
        drop(first);
        assert_eq!(turns_held(&reports), 1);
        drop(other);
        assert_eq!(turns_held(&reports), 0);
    }

    /// A section whose computation began before its report was deleted is not left cached
    /// under the deleted id: the delete waits for it, then forgets it with the rest.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_section_computed_while_its_report_is_deleted_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::server::config::ServeConfig {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let state = crate::server::build_state(config, Default::default()).unwrap();
        let req: ReportRequest = serde_json::from_str(r#"{"name":"gone","from":"-1h"}"#).unwrap();
        let id = create(&state, req).await.unwrap().id;
        // A computation of its Errors section under way: it holds the section's turn.
        let computing = state.reports.turn(id, SectionId::Errors);
        let held = computing.turn.lock().await;
        let (info, saved) = load(&state, id).await.unwrap();
        let deleting = tokio::spawn({
            let state = state.clone();
            async move { delete(&state, id).await }
        });
        section_of(&state, &info, saved, SectionId::Errors).await.unwrap();
        drop(held);
        deleting.await.unwrap().unwrap();
        let key = cache::Key::Section { report: id, section: SectionId::Errors };
        assert!(state.reports.cache.lookup(&key).is_none(), "a deleted report's section cached");
    }
}
