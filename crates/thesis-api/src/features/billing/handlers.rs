use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use thesis_db::entities::MetricType;

use super::dto::*;
use super::service;
use crate::auth::{Admin, OrgCtx};
use crate::billing::recordings::Settled;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::features::usage::dto::UsageRecordDto;
use crate::features::usage::service as usage;
use crate::pagination::{Page, Pagination, RawPageQuery};
use crate::state::AppState;

/// Get billing summary
///
/// Plan, subscription, current period, usage this period, allowance, limit, remaining,
/// estimated charge and trial of the current organization.
#[utoipa::path(get, path = "/organization/billing", tag = "Organization V0",
    responses((status = 200, body = BillingSummaryDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_billing(
    State(state): State<AppState>,
    Settled(ctx): Settled,
) -> Result<Json<BillingSummaryDto>, ApiError> {
    Ok(Json(service::summary(&state, &ctx.organization).await?))
}

async fn history(
    state: &AppState,
    ctx: &OrgCtx,
    Pagination(page): Pagination,
    metric: Option<MetricType>,
) -> Result<Json<Page<UsageRecordDto>>, ApiError> {
    let (rows, total) = usage::page(
        &state.db,
        usage::records_query(Some(ctx.org_id()), page.start, page.end, metric),
        &page,
    )
    .await?;
    Ok(Json(Page {
        data: rows.into_iter().map(Into::into).collect(),
        total,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// Get paginated usage history
///
/// Usage records of every kind, newest first.
#[utoipa::path(get, path = "/organization/billing/usage-history", tag = "Organization V0",
    params(RawPageQuery),
    responses((status = 200, body = Page<UsageRecordDto>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn usage_history(
    State(state): State<AppState>,
    Settled(ctx): Settled,
    page: Pagination,
) -> Result<Json<Page<UsageRecordDto>>, ApiError> {
    history(&state, &ctx, page, None).await
}

/// Get paginated storage usage history
#[utoipa::path(get, path = "/organization/billing/storage-usage-history", tag = "Organization V0",
    params(RawPageQuery),
    responses((status = 200, body = Page<UsageRecordDto>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn storage_usage_history(
    State(state): State<AppState>,
    Settled(ctx): Settled,
    page: Pagination,
) -> Result<Json<Page<UsageRecordDto>>, ApiError> {
    history(&state, &ctx, page, Some(MetricType::Storage)).await
}

/// Get paginated compute usage history
#[utoipa::path(get, path = "/organization/billing/compute-usage-history", tag = "Organization V0",
    params(RawPageQuery),
    responses((status = 200, body = Page<UsageRecordDto>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn compute_usage_history(
    State(state): State<AppState>,
    Settled(ctx): Settled,
    page: Pagination,
) -> Result<Json<Page<UsageRecordDto>>, ApiError> {
    history(&state, &ctx, page, Some(MetricType::Compute)).await
}

/// Change subscription plan (checkout for new subscribers, instant update for existing)
///
/// Needs the admin role. With Stripe, a new payAsYouGo subscriber gets `checkoutUrl`; the plan
/// changes when Stripe confirms the payment. Self-hosted, the plan changes at once.
#[utoipa::path(post, path = "/organization/billing/checkout", tag = "Organization V0",
    request_body = CheckoutRequest,
    responses((status = 201, body = CheckoutResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 502, body = ErrorBody, description = "Stripe failed"),
        (status = 503, body = ErrorBody, description = "Stripe price not configured")))]
pub async fn checkout(
    State(state): State<AppState>,
    Settled(ctx): Settled<Admin>,
    ApiJson(body): ApiJson<CheckoutRequest>,
) -> Result<(StatusCode, Json<CheckoutResponse>), ApiError> {
    let res = service::change_plan(&state, ctx.organization, body.plan).await?;
    Ok((StatusCode::CREATED, Json(res)))
}

/// Create billing portal session
///
/// Needs the admin role and a Stripe customer. Self-hosted billing has no portal (503).
#[utoipa::path(post, path = "/organization/billing/portal", tag = "Organization V0",
    responses((status = 201, body = PortalResponse), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "Self-hosted billing")))]
pub async fn portal(
    State(state): State<AppState>,
    Settled(ctx): Settled<Admin>,
) -> Result<(StatusCode, Json<PortalResponse>), ApiError> {
    let url = service::portal(&state, &ctx.organization).await?;
    Ok((StatusCode::CREATED, Json(PortalResponse { url })))
}

/// Update usage limit
///
/// Needs the admin role. `limit` is cents of billable usage per period, or null for none.
#[utoipa::path(put, path = "/organization/billing/usage-limit", tag = "Organization V0",
    request_body = UsageLimitRequest,
    responses((status = 200, body = BillingSummaryDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn set_usage_limit(
    State(state): State<AppState>,
    Settled(ctx): Settled<Admin>,
    ApiJson(body): ApiJson<UsageLimitRequest>,
) -> Result<Json<BillingSummaryDto>, ApiError> {
    let limit = body.limit.into_update().flatten();
    let org = service::set_usage_limit(&state, ctx.organization, limit).await?;
    Ok(Json(service::summary(&state, &org).await?))
}

/// Get daily usage limit status for free tier
///
/// Free plan: today's usage against the daily limit. payAsYouGo: the period's usage against
/// the usage limit.
#[utoipa::path(get, path = "/organization/rate-limit", tag = "Organization V0",
    responses((status = 200, body = RateLimitDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rate_limit(
    State(state): State<AppState>,
    Settled(ctx): Settled,
) -> Result<Json<RateLimitDto>, ApiError> {
    Ok(Json(service::rate_limit(&state, &ctx.organization).await?))
}
