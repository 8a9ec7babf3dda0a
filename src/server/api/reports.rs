//! Reports, comparisons and the report cache over HTTP (the owner is `server::reports`):
//! `POST/GET /api/v1/reports`, `GET/DELETE /api/v1/reports/{id}`,
//! `GET /api/v1/reports/{id}/sections/{section}`, `POST /api/v1/compare`,
//! `GET /api/v1/cache/stats` and `POST /api/v1/cache/clear`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::model::reports::{CacheStats, ReportList, SectionId};
use crate::server::error::{decode_json, ApiError};
use crate::server::reports::{self, cache::Kind};
use crate::server::state::AppState;

fn report_id(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .map_err(|_| ApiError::bad_field("id", format!("id: a report number (got {text})")))
}

/// `POST /api/v1/reports`: 201 with the id and its URLs.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = decode_json(&headers, &body, "the report")?;
    let created = reports::create(&state, request).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// `GET /api/v1/reports`: newest first.
pub async fn list(State(state): State<AppState>) -> Result<Json<ReportList>, ApiError> {
    Ok(Json(ReportList { reports: reports::list(&state).await? }))
}

/// `GET /api/v1/reports/{id}`: every section as JSON; `{id}.json`, `{id}.md` and `{id}.html`
/// are the same report as a download (self-contained HTML, Markdown tables).
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (number, format) = id.split_once('.').unwrap_or((&id, ""));
    let id = report_id(number)?;
    if !matches!(format, "" | "json" | "md" | "html") {
        return Err(ApiError::bad_field(
            "format",
            format!("format: .json, .md or .html (got .{format})"),
        ));
    }
    let report = reports::report(&state, id).await?;
    let download = |kind: &'static str, ext: &str, body: String| {
        let name = format!("attachment; filename=\"vitals-report-{id}.{ext}\"");
        (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("attachment")),
                ),
            ],
            body,
        )
            .into_response()
    };
    Ok(match format {
        "md" => download("text/markdown; charset=utf-8", "md", reports::export::markdown(&report)),
        "html" => download("text/html; charset=utf-8", "html", reports::export::html(&report)),
        "json" => download(
            "application/json",
            "json",
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        ),
        _ => Json(report).into_response(),
    })
}

/// `GET /api/v1/reports/{id}/sections/{section}`.
pub async fn section(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = report_id(&id)?;
    let which = SectionId::parse(&name).ok_or_else(|| {
        let known: Vec<&str> = SectionId::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::bad_field(
            "section",
            format!("section: unknown '{name}' (known: {})", known.join(", ")),
        )
    })?;
    Ok(Json(reports::section(&state, id, which).await?.as_ref().clone()).into_response())
}

/// `DELETE /api/v1/reports/{id}`: 204.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    reports::delete(&state, report_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/compare`.
pub async fn compare(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = decode_json(&headers, &body, "the comparison")?;
    Ok(Json(reports::compare(&state, request).await?.as_ref().clone()).into_response())
}

/// `GET /api/v1/cache/stats`.
pub async fn cache_stats(State(state): State<AppState>) -> Json<CacheStats> {
    Json(state.reports.cache.stats())
}

/// `POST /api/v1/cache/clear?kind=live|closed|comparison` (every kind without `kind`):
/// answers how many entries were dropped.
pub async fn cache_clear(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let kind = match query.get("kind") {
        None => None,
        Some(text) => Some(Kind::parse(text).ok_or_else(|| {
            ApiError::bad_field("kind", format!("kind: live, closed or comparison (got {text})"))
        })?),
    };
    let cleared = state.reports.cache.clear(kind);
    Ok(Json(serde_json::json!({ "cleared": cleared })))
}
