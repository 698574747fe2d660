//! Stripe subscription management for one organization.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sea_orm::QueryOrder;
use sea_orm::prelude::*;
use serde::Serialize;
use thesis_db::entities::{SubscriptionPlan, organization, stripe_usage_report};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::load_org;
use crate::auth::PlatformAdmin;
use crate::billing::stripe_sync;
use crate::error::{ApiError, ApiPath, ErrorBody};
use crate::features::billing::dto::BillingMode;
use crate::features::billing::service::mode;
use crate::integrations::stripe::{StripeClient, Subscription};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_stripe))
        .routes(routes!(cancel))
        .routes(routes!(cancel_immediately))
        .routes(routes!(reactivate))
        .routes(routes!(bill_now))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveSubscriptionDto {
    pub id: String,
    pub customer: String,
    pub status: String,
    pub cancel_at_period_end: bool,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
}

impl From<Subscription> for LiveSubscriptionDto {
    fn from(s: Subscription) -> Self {
        LiveSubscriptionDto {
            id: s.id,
            customer: s.customer,
            status: s.status,
            cancel_at_period_end: s.cancel_at_period_end,
            current_period_start: s.current_period_start,
            current_period_end: s.current_period_end,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageReportDto {
    pub identifier: String,
    pub period_start: DateTime<Utc>,
    pub cents: i64,
    pub cumulative_cents: i64,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StripeInfoDto {
    pub organization_id: Uuid,
    pub billing_mode: BillingMode,
    pub plan: SubscriptionPlan,
    pub customer_id: Option<String>,
    pub subscription_id: Option<String>,
    pub subscription_status: Option<String>,
    pub cancel_at_period_end: bool,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    /// The subscription as Stripe has it now.
    pub live: Option<LiveSubscriptionDto>,
    /// The latest usage reports sent to Stripe.
    pub usage_reports: Vec<UsageReportDto>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillNowDto {
    /// Usage reports sent before invoicing.
    pub reports: usize,
    pub reported_cents: i64,
    pub stripe: StripeInfoDto,
}

async fn info(
    state: &AppState,
    org: organization::Model,
    live: Option<Subscription>,
) -> Result<StripeInfoDto, ApiError> {
    let reports = stripe_usage_report::Entity::find()
        .filter(stripe_usage_report::Column::OrganizationId.eq(org.id))
        .order_by_desc(stripe_usage_report::Column::CreatedAt)
        .all(&state.db)
        .await?;
    Ok(StripeInfoDto {
        organization_id: org.id,
        billing_mode: mode(state),
        plan: org.subscription_plan,
        customer_id: org.stripe_customer_id,
        subscription_id: org.stripe_subscription_id,
        subscription_status: org.subscription_status,
        cancel_at_period_end: org.cancel_at_period_end,
        current_period_start: org.current_period_start,
        current_period_end: org.current_period_end,
        live: live.map(Into::into),
        usage_reports: reports
            .into_iter()
            .take(50)
            .map(|r| UsageReportDto {
                identifier: r.identifier,
                period_start: r.period_start,
                cents: r.cents,
                cumulative_cents: r.cumulative_cents,
                status: r.status,
                created_at: r.created_at,
                sent_at: r.sent_at,
                error: r.error,
            })
            .collect(),
    })
}

fn client(state: &AppState) -> Result<&StripeClient, ApiError> {
    state.stripe.as_deref().ok_or_else(|| {
        ApiError::ServiceUnavailable(
            "billing is self-hosted on this server (no THESIS_STRIPE_SECRET_KEY): there is no Stripe subscription to manage"
                .into(),
        )
    })
}

fn subscription_id(org: &organization::Model) -> Result<String, ApiError> {
    org.stripe_subscription_id
        .clone()
        .ok_or_else(|| ApiError::Conflict("the organization has no Stripe subscription".into()))
}

/// Applies what Stripe answered and describes the result.
async fn applied(
    state: &AppState,
    org: organization::Model,
    sub: Subscription,
) -> Result<StripeInfoDto, ApiError> {
    let org = stripe_sync::apply_subscription(&state.db, &sub, Some(org.id))
        .await?
        .unwrap_or(org);
    info(state, org, Some(sub)).await
}

/// Get Stripe subscription info for an organization
#[utoipa::path(get, path = "/admin/organizations/{id}/stripe", tag = "Admin",
    params(("id" = Uuid, Path, description = "Organization ID")),
    responses((status = 200, body = StripeInfoDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn get_stripe(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<StripeInfoDto>, ApiError> {
    let org = load_org(&state.db, id).await?;
    let live = match (state.stripe.as_deref(), &org.stripe_subscription_id) {
        (Some(c), Some(sub)) => Some(c.get_subscription(sub).await?),
        _ => None,
    };
    Ok(Json(info(&state, org, live).await?))
}

/// Cancel subscription at end of billing period
#[utoipa::path(post, path = "/admin/organizations/{id}/stripe/cancel", tag = "Admin",
    params(("id" = Uuid, Path, description = "Organization ID")),
    responses((status = 201, body = StripeInfoDto), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<StripeInfoDto>), ApiError> {
    let c = client(&state)?;
    let org = load_org(&state.db, id).await?;
    let sub = subscription_id(&org)?;
    let period = org.current_period_start.map(|t| t.timestamp()).unwrap_or(0);
    let s = c
        .set_cancel_at_period_end(&sub, true, &format!("cancel-{sub}-{period}"))
        .await?;
    Ok((StatusCode::CREATED, Json(applied(&state, org, s).await?)))
}

/// Cancel subscription immediately
///
/// Reports the usage so far, then cancels with a final invoice.
#[utoipa::path(post, path = "/admin/organizations/{id}/stripe/cancel-immediately", tag = "Admin",
    params(("id" = Uuid, Path, description = "Organization ID")),
    responses((status = 201, body = StripeInfoDto), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn cancel_immediately(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<StripeInfoDto>), ApiError> {
    let c = client(&state)?;
    let org = load_org(&state.db, id).await?;
    let sub = subscription_id(&org)?;
    stripe_sync::report_usage(&state, org.id).await?;
    let s = c.cancel_now(&sub, &format!("cancel-now-{sub}")).await?;
    Ok((StatusCode::CREATED, Json(applied(&state, org, s).await?)))
}

/// Reactivate a subscription pending cancellation
#[utoipa::path(post, path = "/admin/organizations/{id}/stripe/reactivate", tag = "Admin",
    params(("id" = Uuid, Path, description = "Organization ID")),
    responses((status = 201, body = StripeInfoDto), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn reactivate(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<StripeInfoDto>), ApiError> {
    let c = client(&state)?;
    let org = load_org(&state.db, id).await?;
    let sub = subscription_id(&org)?;
    if org.subscription_status.as_deref() == Some("canceled") {
        return Err(ApiError::Conflict(
            "the subscription has ended; the organization must check out again".into(),
        ));
    }
    if !org.cancel_at_period_end {
        return Err(ApiError::Conflict(
            "the subscription is not pending cancellation".into(),
        ));
    }
    let key = format!("reactivate-{sub}-{}", thesis_db::now().timestamp() / 3600);
    let s = c.set_cancel_at_period_end(&sub, false, &key).await?;
    Ok((StatusCode::CREATED, Json(applied(&state, org, s).await?)))
}

/// Bill organization immediately for pending usage
///
/// Reports unreported usage, then ends the billing period now so Stripe invoices it. The
/// request is idempotent per period: a second call for the same period never charges twice.
#[utoipa::path(post, path = "/admin/organizations/{id}/stripe/bill-now", tag = "Admin",
    params(("id" = Uuid, Path, description = "Organization ID")),
    responses((status = 201, body = BillNowDto), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn bill_now(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<(StatusCode, Json<BillNowDto>), ApiError> {
    let c = client(&state)?;
    let org = load_org(&state.db, id).await?;
    let sub = subscription_id(&org)?;
    let (reports, reported_cents) = stripe_sync::report_usage(&state, org.id).await?;
    let period = org.current_period_start.map(|t| t.timestamp()).unwrap_or(0);
    let s = c
        .reset_billing_cycle(&sub, &format!("bill-now-{sub}-{period}"))
        .await?;
    let stripe = applied(&state, org, s).await?;
    Ok((
        StatusCode::CREATED,
        Json(BillNowDto {
            reports,
            reported_cents,
            stripe,
        }),
    ))
}
