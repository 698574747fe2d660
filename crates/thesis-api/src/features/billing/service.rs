use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use sea_orm::{IntoActiveModel, PaginatorTrait};
use thesis_db::entities::{MembershipStatus, SubscriptionPlan, membership, organization};

use super::dto::*;
use crate::billing::ledger::{self, Window};
use crate::billing::money::{cents_to_nanos, nanos_to_cents};
use crate::billing::period::{calendar_month, current_period};
use crate::billing::stripe_sync;
use crate::error::ApiError;
use crate::features::trial::trial_state;
use crate::integrations::stripe::StripeClient;
use crate::state::AppState;

pub fn mode(state: &AppState) -> BillingMode {
    if state.stripe.is_some() {
        BillingMode::Stripe
    } else {
        BillingMode::SelfHosted
    }
}

fn subscribed(org: &organization::Model) -> bool {
    org.stripe_subscription_id.is_some()
        && matches!(
            org.subscription_status.as_deref(),
            Some("active" | "trialing" | "past_due" | "unpaid" | "paused")
        )
}

pub async fn summary(
    state: &AppState,
    org: &organization::Model,
) -> Result<BillingSummaryDto, ApiError> {
    let now = thesis_db::now();
    let (start, end) = current_period(org, now);
    let (cost, covered) = ledger::cost_between(&state.db, org.id, start, end).await?;
    let billable = cost - covered;
    let seats = membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(org.id))
        .filter(membership::Column::Status.eq(MembershipStatus::Active))
        .count(&state.db)
        .await?;
    let estimated = match org.subscription_plan {
        SubscriptionPlan::Free => 0,
        SubscriptionPlan::PayAsYouGo => {
            let over = (billable - cents_to_nanos(org.usage_allowance_cents.unwrap_or(0))).max(0);
            cents_to_nanos(org.price_for_organization_cents.unwrap_or(0))
                + cents_to_nanos(org.price_per_seat_cents.unwrap_or(0)) * seats as i64
                + over
        }
    };
    Ok(BillingSummaryDto {
        plan: org.subscription_plan,
        billing_mode: mode(state),
        subscription_status: org.subscription_status.clone(),
        cancel_at_period_end: org.cancel_at_period_end,
        current_period_start: start,
        current_period_end: end,
        usage_this_period_cents: nanos_to_cents(cost),
        trial_covered_cents: nanos_to_cents(covered),
        billable_usage_cents: nanos_to_cents(billable),
        allowance_cents: org.usage_allowance_cents,
        limit_cents: org.usage_limit_cents,
        remaining_cents: org
            .usage_limit_cents
            .map(|l| nanos_to_cents((cents_to_nanos(l) - billable).max(0))),
        seats,
        estimated_charge_cents: nanos_to_cents(estimated),
        trial: trial_state(&state.db, org.id).await?,
    })
}

pub async fn rate_limit(
    state: &AppState,
    org: &organization::Model,
) -> Result<RateLimitDto, ApiError> {
    let now = thesis_db::now();
    let standing = ledger::standing(&state.db, org, state.free_daily_limit_cents(), now).await?;
    let trial_active = standing.trial.is_some() && standing.trial_remaining() > 0;
    let (limit_cents, used, resets_at, limit_nanos) = match &standing.window {
        Window::Daily {
            limit_nanos,
            used_nanos,
            resets_at,
        } => (
            Some(limit_nanos / crate::billing::money::NANOS_PER_CENT),
            *used_nanos,
            *resets_at,
            Some(*limit_nanos),
        ),
        Window::Period {
            limit_nanos,
            used_nanos,
            end,
            ..
        } => (org.usage_limit_cents, *used_nanos, *end, *limit_nanos),
    };
    Ok(RateLimitDto {
        plan: org.subscription_plan,
        limit_cents,
        used_cents: nanos_to_cents(used),
        remaining_cents: limit_nanos.map(|l| nanos_to_cents((l - used).max(0))),
        resets_at,
        limited: standing.limited(),
        trial_active,
    })
}

pub async fn set_usage_limit(
    state: &AppState,
    org: organization::Model,
    limit: Option<i64>,
) -> Result<organization::Model, ApiError> {
    let mut active = org.into_active_model();
    active.usage_limit_cents = Set(limit);
    active.updated_at = Set(thesis_db::now());
    Ok(active.update(&state.db).await?)
}

fn stripe(state: &AppState) -> Result<&StripeClient, ApiError> {
    state.stripe.as_deref().ok_or_else(|| {
        ApiError::ServiceUnavailable(
            "billing is self-hosted on this server (no THESIS_STRIPE_SECRET_KEY): there is no Stripe billing portal"
                .into(),
        )
    })
}

/// The organization's Stripe customer, created on first use (idempotently).
async fn ensure_customer(
    state: &AppState,
    client: &StripeClient,
    org: &organization::Model,
) -> Result<String, ApiError> {
    if let Some(c) = &org.stripe_customer_id {
        return Ok(c.clone());
    }
    let customer = client
        .create_customer(&org.id.to_string(), &org.name, &org.email)
        .await?;
    organization::Entity::update_many()
        .col_expr(
            organization::Column::StripeCustomerId,
            Expr::value(customer.clone()),
        )
        .filter(organization::Column::Id.eq(org.id))
        .filter(organization::Column::StripeCustomerId.is_null())
        .exec(&state.db)
        .await?;
    Ok(customer)
}

fn response(
    state: &AppState,
    org: &organization::Model,
    checkout: Option<(String, String)>,
) -> CheckoutResponse {
    let (url, id) = match checkout {
        Some((url, id)) => (Some(url), Some(id)),
        None => (None, None),
    };
    CheckoutResponse {
        plan: org.subscription_plan,
        billing_mode: mode(state),
        checkout_url: url,
        checkout_session_id: id,
        subscription_status: org.subscription_status.clone(),
    }
}

/// Changes the plan. Self-hosted: at once. With Stripe: a new subscriber gets a Checkout
/// session (the webhook switches the plan once paid); an existing subscriber going back to free
/// has its usage reported and its subscription cancelled now with a final invoice.
pub async fn change_plan(
    state: &AppState,
    org: organization::Model,
    plan: SubscriptionPlan,
) -> Result<CheckoutResponse, ApiError> {
    let Some(client) = state.stripe.as_deref() else {
        return change_plan_self_hosted(state, org, plan).await;
    };
    match plan {
        SubscriptionPlan::PayAsYouGo if subscribed(&org) => {
            let org = match (&org.stripe_subscription_id, org.cancel_at_period_end) {
                (Some(sub), true) => {
                    // going back to payAsYouGo withdraws a pending cancellation
                    let key = format!("reactivate-{sub}-{}", thesis_db::now().timestamp() / 3600);
                    let s = client.set_cancel_at_period_end(sub, false, &key).await?;
                    stripe_sync::apply_subscription(&state.db, &s, Some(org.id))
                        .await?
                        .unwrap_or(org)
                }
                _ => org,
            };
            Ok(response(state, &org, None))
        }
        SubscriptionPlan::PayAsYouGo => {
            let price = state.settings.stripe_price_id.clone().ok_or_else(|| {
                ApiError::ServiceUnavailable(
                    "THESIS_STRIPE_PRICE_ID is not configured: the payAsYouGo plan cannot be sold"
                        .into(),
                )
            })?;
            let customer = ensure_customer(state, client, &org).await?;
            let billing = &state.settings.file.billing;
            let success = billing
                .checkout_success_url
                .clone()
                .unwrap_or_else(|| format!("{}/billing?checkout=success", state.public_url));
            let cancel = billing
                .checkout_cancel_url
                .clone()
                .unwrap_or_else(|| format!("{}/billing?checkout=cancel", state.public_url));
            // one session per organization and hour: a double click does not open two
            let key = format!(
                "checkout-{}-{}",
                org.id,
                thesis_db::now().timestamp() / 3600
            );
            let session = client
                .create_checkout_session(
                    &customer,
                    &org.id.to_string(),
                    &price,
                    &success,
                    &cancel,
                    &key,
                )
                .await?;
            Ok(response(state, &org, Some((session.url, session.id))))
        }
        SubscriptionPlan::Free => {
            let org = match (&org.stripe_subscription_id, subscribed(&org)) {
                (Some(sub), true) => {
                    // bill what was used before the subscription ends
                    stripe_sync::report_usage(state, org.id).await?;
                    let s = client.cancel_now(sub, &format!("cancel-now-{sub}")).await?;
                    stripe_sync::apply_subscription(&state.db, &s, Some(org.id))
                        .await?
                        .unwrap_or(org)
                }
                _ => {
                    let mut active = org.into_active_model();
                    active.subscription_plan = Set(SubscriptionPlan::Free);
                    active.updated_at = Set(thesis_db::now());
                    active.update(&state.db).await?
                }
            };
            Ok(response(state, &org, None))
        }
    }
}

async fn change_plan_self_hosted(
    state: &AppState,
    org: organization::Model,
    plan: SubscriptionPlan,
) -> Result<CheckoutResponse, ApiError> {
    if org.subscription_plan == plan {
        return Ok(response(state, &org, None));
    }
    let now = thesis_db::now();
    let mut active = org.clone().into_active_model();
    active.subscription_plan = Set(plan);
    active.cancel_at_period_end = Set(false);
    active.updated_at = Set(now);
    match plan {
        SubscriptionPlan::PayAsYouGo => {
            let (start, end) = calendar_month(now);
            active.subscription_status = Set(Some("active".into()));
            active.current_period_start = Set(Some(start));
            active.current_period_end = Set(Some(end));
            stripe_sync::upsert_period(&state.db, org.id, start, end, "self-hosted").await?;
        }
        SubscriptionPlan::Free => {
            active.subscription_status = Set(None);
            active.current_period_start = Set(None);
            active.current_period_end = Set(None);
        }
    }
    let updated = active.update(&state.db).await?;
    Ok(response(state, &updated, None))
}

pub async fn portal(state: &AppState, org: &organization::Model) -> Result<String, ApiError> {
    let client = stripe(state)?;
    let customer = org.stripe_customer_id.as_deref().ok_or_else(|| {
        ApiError::Conflict(
            "the organization has no Stripe customer yet: subscribe with POST /v1/organization/billing/checkout first"
                .into(),
        )
    })?;
    let return_url = state
        .settings
        .file
        .billing
        .portal_return_url
        .clone()
        .unwrap_or_else(|| format!("{}/billing", state.public_url));
    Ok(client.create_portal_session(customer, &return_url).await?)
}
