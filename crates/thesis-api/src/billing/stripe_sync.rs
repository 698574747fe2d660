//! Keeping organizations in step with Stripe: applying subscriptions, processing webhook events,
//! and reporting usage exactly once.

use chrono::{DateTime, Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::Condition;
use sea_orm::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{IntoActiveModel, QueryOrder, QuerySelect};
use serde_json::Value;
use thesis_db::entities::{SubscriptionPlan, billing_period, organization, stripe_usage_report};

use super::ledger::{billable_between, lock_organization};
use super::money::nanos_to_whole_cents;
use crate::error::ApiError;
use crate::integrations::stripe::{StripeClient, StripeError, Subscription};
use crate::state::AppState;

impl From<StripeError> for ApiError {
    fn from(e: StripeError) -> Self {
        // Stripe's own message is safe to show; the key never appears in it
        ApiError::BadGateway(e.to_string())
    }
}

/// The plan a subscription status means. `incomplete` (first payment pending) changes nothing.
fn plan_for(status: &str) -> Option<SubscriptionPlan> {
    match status {
        "active" | "trialing" | "past_due" | "unpaid" | "paused" => {
            Some(SubscriptionPlan::PayAsYouGo)
        }
        "canceled" | "incomplete_expired" => Some(SubscriptionPlan::Free),
        _ => None,
    }
}

/// Records a billing period (idempotent). An earlier period still open at `start` (a billing
/// cycle reset by "bill now") is cut to end there, so every usage record belongs to one period.
pub async fn upsert_period<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    source: &str,
) -> Result<(), ApiError> {
    billing_period::Entity::update_many()
        .col_expr(billing_period::Column::PeriodEnd, Expr::value(start))
        .filter(billing_period::Column::OrganizationId.eq(org_id))
        .filter(billing_period::Column::PeriodStart.lt(start))
        .filter(billing_period::Column::PeriodEnd.gt(start))
        .exec(conn)
        .await?;
    billing_period::Entity::insert(billing_period::ActiveModel {
        id: Set(thesis_db::new_id()),
        organization_id: Set(org_id),
        period_start: Set(start),
        period_end: Set(end),
        source: Set(source.to_string()),
        created_at: Set(thesis_db::now()),
    })
    .on_conflict(
        OnConflict::columns([
            billing_period::Column::OrganizationId,
            billing_period::Column::PeriodStart,
        ])
        .update_column(billing_period::Column::PeriodEnd)
        .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Applies the current state of a subscription (as just read from Stripe) to its organization:
/// found by `org_hint`, the subscription's metadata, or its ids. A canceled subscription that
/// is not the organization's current one (an old one whose events arrive late) changes nothing.
pub async fn apply_subscription(
    db: &DatabaseConnection,
    sub: &Subscription,
    org_hint: Option<Uuid>,
) -> Result<Option<organization::Model>, ApiError> {
    let by_meta = sub
        .organization_id
        .as_deref()
        .and_then(|s| Uuid::parse_str(s).ok());
    let org_id = match org_hint.or(by_meta) {
        Some(id) => Some(id),
        None => organization::Entity::find()
            .filter(
                Condition::any()
                    .add(organization::Column::StripeSubscriptionId.eq(sub.id.as_str()))
                    .add(organization::Column::StripeCustomerId.eq(sub.customer.as_str())),
            )
            .one(db)
            .await?
            .map(|o| o.id),
    };
    let Some(org_id) = org_id else {
        tracing::warn!(subscription = %sub.id, "a Stripe subscription matches no organization; ignored");
        return Ok(None);
    };
    let txn = thesis_db::begin_write(db).await?;
    let org = match lock_organization(&txn, org_id).await {
        Ok(o) => o,
        Err(ApiError::NotFound(_)) => {
            tracing::warn!(subscription = %sub.id, %org_id, "a Stripe subscription names an unknown organization; ignored");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let ended = plan_for(&sub.status) == Some(SubscriptionPlan::Free);
    if ended
        && org
            .stripe_subscription_id
            .as_deref()
            .is_some_and(|current| current != sub.id)
    {
        txn.commit().await?;
        return Ok(Some(org));
    }
    let mut active = org.clone().into_active_model();
    if org.stripe_customer_id.is_none() {
        active.stripe_customer_id = Set(Some(sub.customer.clone()));
    }
    active.stripe_subscription_id = Set(Some(sub.id.clone()));
    active.subscription_status = Set(Some(sub.status.clone()));
    active.cancel_at_period_end = Set(sub.cancel_at_period_end);
    if let Some(plan) = plan_for(&sub.status) {
        active.subscription_plan = Set(plan);
    }
    active.current_period_start = Set(sub.current_period_start);
    active.current_period_end = Set(sub.current_period_end);
    active.updated_at = Set(thesis_db::now());
    let updated = active.update(&txn).await?;
    if let (Some(start), Some(end)) = (sub.current_period_start, sub.current_period_end) {
        upsert_period(&txn, org_id, start, end, "stripe").await?;
    }
    txn.commit().await?;
    Ok(Some(updated))
}

fn stripe(state: &AppState) -> Result<&StripeClient, ApiError> {
    state.stripe.as_deref().ok_or_else(|| {
        ApiError::ServiceUnavailable(
            "Stripe is not configured (self-hosted billing): set THESIS_STRIPE_SECRET_KEY".into(),
        )
    })
}

fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(|i| i.as_str()).map(str::to_string),
        _ => None,
    }
}

/// Processes one verified webhook event. Subscription state is always re-read from Stripe, so
/// events delivered late or out of order leave the latest state in place.
pub async fn process_event(state: &AppState, event: &Value) -> Result<(), ApiError> {
    let kind = event["type"].as_str().unwrap_or_default();
    let object = &event["data"]["object"];
    let (subscription_id, org_hint) = match kind {
        "checkout.session.completed" => {
            let org = object["client_reference_id"]
                .as_str()
                .or_else(|| object["metadata"]["organization_id"].as_str())
                .and_then(|s| Uuid::parse_str(s).ok());
            if let (Some(org_id), Some(customer)) = (org, id_of(&object["customer"])) {
                organization::Entity::update_many()
                    .col_expr(
                        organization::Column::StripeCustomerId,
                        Expr::value(customer),
                    )
                    .filter(organization::Column::Id.eq(org_id))
                    .filter(organization::Column::StripeCustomerId.is_null())
                    .exec(&state.db)
                    .await?;
            }
            (id_of(&object["subscription"]), org)
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => (id_of(&object["id"]), None),
        "invoice.paid" | "invoice.payment_failed" => (
            id_of(&object["subscription"])
                .or_else(|| id_of(&object["parent"]["subscription_details"]["subscription"])),
            None,
        ),
        _ => (None, None),
    };
    if let Some(id) = subscription_id {
        let sub = stripe(state)?.get_subscription(&id).await?;
        apply_subscription(&state.db, &sub, org_hint).await?;
    }
    Ok(())
}

/// What one reporting pass did.
#[derive(Debug, Default)]
pub struct ReportOutcome {
    pub organizations: usize,
    pub reports: usize,
    pub reported_cents: i64,
    pub failures: Vec<String>,
}

async fn send_report(
    state: &AppState,
    client: &StripeClient,
    customer: &str,
    report: &stripe_usage_report::Model,
    period_end: DateTime<Utc>,
) -> Result<(), ApiError> {
    // a usage event belongs inside its period
    let at = thesis_db::now().min(period_end - Duration::seconds(1));
    let result = client
        .create_meter_event(
            &state.settings.file.billing.stripe_meter_event,
            customer,
            report.cents,
            &report.identifier,
            at,
        )
        .await;
    let mut active = report.clone().into_active_model();
    match result {
        Ok(()) => {
            active.status = Set("sent".into());
            active.sent_at = Set(Some(thesis_db::now()));
            active.error = Set(None);
            active.update(&state.db).await?;
            Ok(())
        }
        Err(e) => {
            active.error = Set(Some(e.to_string()));
            active.update(&state.db).await?;
            Err(e.into())
        }
    }
}

/// Reports an organization's unreported billable usage of its recent periods. Per period,
/// billable cents = whole cents of usage not covered by a trial, minus the included allowance.
/// The identifier of a report names the cumulative total it brings the period to, so resending
/// a pending report (after a crash or a failed call) is recognised by Stripe as the same event.
pub async fn report_usage(state: &AppState, org_id: Uuid) -> Result<(usize, i64), ApiError> {
    let client = stripe(state)?;
    // usage answered on this instance but still being recorded belongs in this report
    state.recordings.settled(org_id).await;
    let now = thesis_db::now();
    let org = organization::Entity::find_by_id(org_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    let Some(customer) = org.stripe_customer_id.clone() else {
        return Ok((0, 0));
    };
    if let (Some(start), Some(end)) = (org.current_period_start, org.current_period_end) {
        upsert_period(&state.db, org.id, start, end, "stripe").await?;
    }
    let periods = billing_period::Entity::find()
        .filter(billing_period::Column::OrganizationId.eq(org.id))
        .filter(billing_period::Column::PeriodEnd.gt(now - Duration::days(7)))
        .filter(billing_period::Column::PeriodStart.lte(now))
        .order_by_asc(billing_period::Column::PeriodStart)
        .all(&state.db)
        .await?;
    let (mut count, mut cents) = (0, 0);
    for period in periods {
        // first, whatever an earlier pass left pending
        let pending = stripe_usage_report::Entity::find()
            .filter(stripe_usage_report::Column::OrganizationId.eq(org.id))
            .filter(stripe_usage_report::Column::PeriodStart.eq(period.period_start))
            .filter(stripe_usage_report::Column::Status.eq("pending"))
            .order_by_asc(stripe_usage_report::Column::CumulativeCents)
            .all(&state.db)
            .await?;
        for report in pending {
            send_report(state, client, &customer, &report, period.period_end).await?;
            count += 1;
            cents += report.cents;
        }
        // then the new usage, decided under the organization lock
        let txn = thesis_db::begin_write(&state.db).await?;
        let org = lock_organization(&txn, org.id).await?;
        let usage = billable_between(
            &txn,
            org.id,
            period.period_start,
            period.period_end.min(now),
        )
        .await?;
        let billable =
            (nanos_to_whole_cents(usage) - org.usage_allowance_cents.unwrap_or(0)).max(0);
        let reported: Option<i64> = stripe_usage_report::Entity::find()
            .filter(stripe_usage_report::Column::OrganizationId.eq(org.id))
            .filter(stripe_usage_report::Column::PeriodStart.eq(period.period_start))
            .select_only()
            .column_as(
                sea_orm::sea_query::Expr::cust(
                    "CAST(COALESCE(MAX(cumulative_cents), 0) AS BIGINT)",
                ),
                "total",
            )
            .into_tuple()
            .one(&txn)
            .await?;
        let reported = reported.unwrap_or(0);
        if billable <= reported {
            txn.commit().await?;
            continue;
        }
        let report = stripe_usage_report::ActiveModel {
            id: Set(thesis_db::new_id()),
            organization_id: Set(org.id),
            period_start: Set(period.period_start),
            identifier: Set(format!(
                "thesis-usage-{}-{}-{}",
                org.id,
                period.period_start.timestamp(),
                billable
            )),
            cents: Set(billable - reported),
            cumulative_cents: Set(billable),
            status: Set("pending".into()),
            created_at: Set(now),
            sent_at: Set(None),
            error: Set(None),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        send_report(state, client, &customer, &report, period.period_end).await?;
        count += 1;
        cents += report.cents;
    }
    Ok((count, cents))
}

/// Reports every payAsYouGo organization with a Stripe customer; one failing organization does
/// not stop the others.
pub async fn report_all(state: &AppState) -> Result<ReportOutcome, ApiError> {
    let orgs = organization::Entity::find()
        .filter(organization::Column::StripeCustomerId.is_not_null())
        .filter(organization::Column::DeletedAt.is_null())
        .all(&state.db)
        .await?;
    let mut outcome = ReportOutcome::default();
    for org in orgs {
        // an organization back on free may still owe its last period
        outcome.organizations += 1;
        match report_usage(state, org.id).await {
            Ok((n, c)) => {
                outcome.reports += n;
                outcome.reported_cents += c;
            }
            Err(e) => outcome.failures.push(format!("{}: {e}", org.id)),
        }
    }
    Ok(outcome)
}
