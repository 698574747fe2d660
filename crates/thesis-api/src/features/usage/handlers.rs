use axum::Json;
use axum::extract::State;

use super::dto::*;
use super::service;
use crate::billing::period::current_period;
use crate::billing::recordings::Settled;
use crate::error::{ApiError, ErrorBody};
use crate::pagination::{PageQuery, parse_count, parse_range};
use crate::state::AppState;

fn query<T: serde::de::DeserializeOwned>(
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|axum::extract::Query(v)| v)
        .map_err(|e| ApiError::Validation(vec![e.body_text()]))
}

/// List usage records
///
/// The current organization's usage records, newest first.
#[utoipa::path(get, path = "/usage-record", tag = "Token Usage Record",
    params(UsageRecordQuery),
    responses((status = 200, body = Vec<UsageRecordDto>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_usage_records(
    State(state): State<AppState>,
    Settled(ctx): Settled,
    q: Result<axum::extract::Query<UsageRecordQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<UsageRecordDto>>, ApiError> {
    let q = query(q)?;
    let mut errors = vec![];
    let limit = parse_count("limit", q.limit.as_deref(), 20, 1, 100, &mut errors);
    let (start, end) = parse_range(q.start_date.as_deref(), q.end_date.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let page = PageQuery {
        limit,
        offset: 0,
        start,
        end,
    };
    let (rows, _) = service::page(
        &state.db,
        service::records_query(Some(ctx.org_id()), start, end, None),
        &page,
    )
    .await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// Get usage summary
///
/// Totals and per-model figures for a range (default: the current billing period so far).
#[utoipa::path(get, path = "/usage-record/summary", tag = "Token Usage Record",
    params(UsageSummaryQuery),
    responses((status = 200, body = UsageSummaryDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn usage_summary(
    State(state): State<AppState>,
    Settled(ctx): Settled,
    q: Result<axum::extract::Query<UsageSummaryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UsageSummaryDto>, ApiError> {
    let q = query(q)?;
    let mut errors = vec![];
    let (start, end) = parse_range(q.start_date.as_deref(), q.end_date.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let now = thesis_db::now();
    let start = start.unwrap_or_else(|| current_period(&ctx.organization, now).0);
    let end = end.unwrap_or(now + chrono::Duration::microseconds(1));
    if end <= start {
        return Err(ApiError::Validation(vec![
            "endDate: must not be before startDate".into(),
        ]));
    }
    Ok(Json(
        service::summary(&state.db, ctx.org_id(), start, end).await?,
    ))
}
