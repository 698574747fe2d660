use chrono::{DateTime, Utc};
use garde::Validate;
use serde::{Deserialize, Serialize};
use thesis_db::entities::trial;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::billing::money::{cents_to_nanos, nanos_to_cents};
use crate::billing::trials::{TrialStatus, status};
use crate::patch::Patch;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrialDto {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub length_days: i32,
    pub max_usage_allowance_cents: i64,
    /// Usage the trial has covered.
    pub used_cents: f64,
    pub remaining_cents: f64,
    pub status: TrialStatus,
    pub claimed_at: Option<DateTime<Utc>>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub expired_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TrialDto {
    pub fn new(t: trial::Model, used_nanos: i64, now: DateTime<Utc>) -> Self {
        let remaining = (cents_to_nanos(t.max_usage_allowance_cents) - used_nanos).max(0);
        TrialDto {
            status: status(&t, used_nanos, now),
            id: t.id,
            organization_id: t.organization_id,
            length_days: t.length_days,
            max_usage_allowance_cents: t.max_usage_allowance_cents,
            used_cents: nanos_to_cents(used_nanos),
            remaining_cents: nanos_to_cents(remaining),
            claimed_at: t.claimed_at,
            period_start: t.period_start,
            period_end: t.period_end,
            expired_at: t.expired_at,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// The organization's trial situation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrialStateDto {
    /// Whether a trial covers usage right now.
    pub active: bool,
    /// Whether an unclaimed trial waits for `POST /organization/claim-trial`.
    pub claimable: bool,
    /// The active trial, else the latest claimed one, else the next claimable one.
    pub trial: Option<TrialDto>,
}

const MAX_DAYS: i64 = 3650;

fn days(v: &i64, _: &()) -> garde::Result {
    if (1..=MAX_DAYS).contains(v) {
        Ok(())
    } else {
        Err(garde::Error::new(format!("must be from 1 to {MAX_DAYS}")))
    }
}

fn cents(v: &i64, _: &()) -> garde::Result {
    if (0..=crate::patch::MAX_CENTS).contains(v) {
        Ok(())
    } else {
        Err(garde::Error::new(format!(
            "must be from 0 to {}",
            crate::patch::MAX_CENTS
        )))
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTrialRequest {
    #[garde(custom(days))]
    #[schema(minimum = 1, maximum = 3650)]
    pub length_days: i64,
    #[garde(custom(cents))]
    #[schema(minimum = 0)]
    pub max_usage_allowance_cents: i64,
    /// Claim it at once (409 if another trial is active).
    #[serde(default)]
    #[garde(skip)]
    pub claim_on_create: bool,
}

fn opt_days(v: &Option<i64>, c: &()) -> garde::Result {
    v.as_ref().map_or(Ok(()), |v| days(v, c))
}

fn opt_cents(v: &Option<i64>, c: &()) -> garde::Result {
    v.as_ref().map_or(Ok(()), |v| cents(v, c))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTrialRequest {
    #[serde(default)]
    #[garde(custom(opt_days))]
    pub length_days: Option<i64>,
    #[serde(default)]
    #[garde(custom(opt_cents))]
    pub max_usage_allowance_cents: Option<i64>,
    /// ISO 8601; null clears it.
    #[serde(default)]
    #[garde(skip)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub period_start: Patch<String>,
    /// ISO 8601; null clears it.
    #[serde(default)]
    #[garde(skip)]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub period_end: Patch<String>,
}
