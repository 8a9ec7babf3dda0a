//! The Reports pages' server functions: the same owner (`server::reports`) as the REST routes.
//! Saving and deleting need sign-in when the server has a token.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use leptos::server_fn::error::ServerFnError;

use super::codec::Answer;

use crate::model::reports::{
    CompareRequest, Comparison, Created, Refused, ReportInfo, ReportList, ReportRequest, Section,
    SectionId,
};

#[cfg(feature = "ssr")]
fn refused(e: crate::server::error::ApiError) -> Refused {
    Refused { field: e.field, error: e.error }
}

/// Saved reports, newest first.
#[server(prefix = "/rpc", endpoint = "reports/list", output = Answer)]
pub async fn list_reports() -> Result<ReportList, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    let reports =
        crate::server::reports::list(&state).await.map_err(|e| ServerFnError::new(e.error))?;
    Ok(ReportList { reports })
}

/// Saves a new report; a refused request is an answer naming its field.
#[server(prefix = "/rpc", endpoint = "reports/create", input = Json, output = Answer)]
pub async fn create_report(
    request: ReportRequest,
) -> Result<Result<Created, Refused>, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    super::require_signed_in(&state).await?;
    Ok(crate::server::reports::create(&state, request).await.map_err(refused))
}

/// Deletes a report.
#[server(prefix = "/rpc", endpoint = "reports/delete", output = Answer)]
pub async fn delete_report(id: u64) -> Result<Result<(), Refused>, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    super::require_signed_in(&state).await?;
    Ok(crate::server::reports::delete(&state, id).await.map_err(refused))
}

/// A report's name, range and scope; `None` when there is no such report.
#[server(prefix = "/rpc", endpoint = "reports/info", output = Answer)]
pub async fn get_report_info(id: u64) -> Result<Option<ReportInfo>, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    match crate::server::reports::info(&state, id).await {
        Ok(info) => Ok(Some(info)),
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => Ok(None),
        Err(e) => Err(ServerFnError::new(e.error)),
    }
}

/// One section of a report (cached; see `server::reports`). The page asks for the Summary
/// first: that also starts computing the other sections ahead of it (`server::reports::warm`).
#[server(prefix = "/rpc", endpoint = "reports/section", input = Json, output = Answer)]
pub async fn get_report_section(id: u64, section: SectionId) -> Result<Section, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    let found = crate::server::reports::section(&state, id, section)
        .await
        .map(|s| s.as_ref().clone())
        .map_err(|e| ServerFnError::new(e.error))?;
    if section == SectionId::Summary {
        crate::server::reports::warm(&state, id);
    }
    Ok(found)
}

/// A comparison (`POST /api/v1/compare`'s owner): two tag values over one range, or two ranges;
/// a refused request is an answer naming its field.
#[server(prefix = "/rpc", endpoint = "reports/compare", input = Json, output = Answer)]
pub async fn compare(
    request: CompareRequest,
) -> Result<Result<Comparison, Refused>, ServerFnError> {
    let state = crate::server::state::expect_state()?;
    Ok(crate::server::reports::compare(&state, request)
        .await
        .map(|c| c.as_ref().clone())
        .map_err(refused))
}
