use chrono::{DateTime, Utc};
use garde::Validate;
use serde::{Deserialize, Serialize};
use thesis_db::entities::SubscriptionPlan;
use utoipa::ToSchema;

use crate::features::trial::dto::TrialStateDto;
use crate::patch::{self, Patch};

/// How plan changes are paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum BillingMode {
    /// Through Stripe (`THESIS_STRIPE_SECRET_KEY` set).
    Stripe,
    /// No payment: plan changes apply at once and nothing is sent anywhere.
    SelfHosted,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingSummaryDto {
    pub plan: SubscriptionPlan,
    pub billing_mode: BillingMode,
    /// The subscription status as Stripe reports it (`active`, `past_due`, ...); null without one.
    pub subscription_status: Option<String>,
    pub cancel_at_period_end: bool,
    pub current_period_start: DateTime<Utc>,
    pub current_period_end: DateTime<Utc>,
    /// All usage in the current period.
    pub usage_this_period_cents: f64,
    /// The part of it a trial covered.
    pub trial_covered_cents: f64,
    /// Usage the organization pays for (not covered by a trial).
    pub billable_usage_cents: f64,
    /// Usage included in the plan per period.
    pub allowance_cents: Option<i64>,
    /// Hard cap of billable usage per period; null = none.
    pub limit_cents: Option<i64>,
    /// `limitCents` minus billable usage (not below 0); null without a limit.
    pub remaining_cents: Option<f64>,
    /// Active members (seats).
    pub seats: u64,
    /// What the period costs so far: organization price, seats, and usage beyond the allowance.
    pub estimated_charge_cents: f64,
    pub trial: TrialStateDto,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutRequest {
    #[garde(skip)]
    pub plan: SubscriptionPlan,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutResponse {
    /// The plan now (a Stripe checkout changes it once paid, through the webhook).
    pub plan: SubscriptionPlan,
    pub billing_mode: BillingMode,
    /// Where to send the user to pay, when a checkout was started.
    pub checkout_url: Option<String>,
    pub checkout_session_id: Option<String>,
    pub subscription_status: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PortalResponse {
    /// The Stripe billing portal session.
    pub url: String,
}

fn limit_rule(v: &Patch<i64>, c: &()) -> garde::Result {
    if matches!(v, Patch::Absent) {
        return Err(garde::Error::new(
            "is required (cents, or null for no limit)",
        ));
    }
    patch::cents(v, c)
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageLimitRequest {
    /// Cents of billable usage per period, or null for no limit.
    #[serde(default)]
    #[garde(custom(limit_rule))]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub limit: Patch<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitDto {
    pub plan: SubscriptionPlan,
    /// Free plan: the daily limit; payAsYouGo: the period's usage limit (null = none).
    pub limit_cents: Option<i64>,
    /// Billable usage today (free) or this period (payAsYouGo).
    pub used_cents: f64,
    pub remaining_cents: Option<f64>,
    /// When the window starts over (next UTC midnight, or the end of the period).
    pub resets_at: DateTime<Utc>,
    /// Whether usage-creating calls are refused now.
    pub limited: bool,
    /// Whether an active trial lifts the limit.
    pub trial_active: bool,
}
