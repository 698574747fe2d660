//! The usage ledger: admission against limits, exactly-once recording, and sums.
//!
//! A usage-creating request first **admits** (reserving its estimated cost), then **records** its
//! actual usage (which releases the reservation) or **releases** on failure. Admission and
//! recording lock the organization row (PostgreSQL `FOR UPDATE`, SQLite `BEGIN IMMEDIATE`), so
//! across every instance admissions of one organization are serialized and each sees the
//! reservations of the requests still in flight: concurrent requests cannot all slip past a limit
//! at once, and the total stops within about one request's cost of it.

use chrono::{DateTime, Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, DatabaseTransaction, QuerySelect};
use thesis_db::entities::{
    MetricType, SubscriptionPlan, organization, trial, usage_daily_total, usage_record,
    usage_reservation,
};

use super::money::{NANOS_PER_CENT, cents_to_nanos, nanos_to_cents};
use super::period::{current_period, day_of, next_midnight, start_of_day};
use crate::error::ApiError;

/// How long a reservation holds if its request never records or releases (a crashed instance).
pub const RESERVATION_TTL_MINUTES: i64 = 30;

/// A reservation held for a request in flight.
#[derive(Debug, Clone)]
pub struct Admission {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub amount_nanos: i64,
}

/// Usage to record.
#[derive(Debug, Clone)]
pub struct NewUsage {
    pub organization_id: Uuid,
    pub user_id: Option<Uuid>,
    pub metric_type: MetricType,
    pub model: Option<String>,
    pub machine_id: Option<Uuid>,
    pub quantity: f64,
    pub unit: String,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub cost_nanos: i64,
    /// Recording twice with one key keeps the first record (exactly-once metering).
    pub idempotency_key: Option<String>,
    pub metadata: Option<serde_json::Value>,
}

/// Why a usage-creating call is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum LimitExceeded {
    /// Free plan: the daily allowance is used up until `resets_at` (429).
    FreeDaily {
        limit_cents: i64,
        resets_at: DateTime<Utc>,
    },
    /// payAsYouGo: the usage limit of the period is reached (402).
    UsageLimit {
        limit_cents: i64,
        period_end: DateTime<Utc>,
    },
}

impl From<LimitExceeded> for ApiError {
    fn from(e: LimitExceeded) -> Self {
        match e {
            LimitExceeded::FreeDaily {
                limit_cents,
                resets_at,
            } => ApiError::TooManyRequests {
                message: format!(
                    "the free plan's daily usage limit of {limit_cents} cents is reached; it resets at {}",
                    resets_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                retry_after_secs: (resets_at - Utc::now()).num_seconds().max(1) as u64,
            },
            LimitExceeded::UsageLimit {
                limit_cents,
                period_end,
            } => ApiError::PaymentRequired(format!(
                "the organization's usage limit of {limit_cents} cents for this billing period is reached (the period ends at {}); raise it with PUT /v1/organization/billing/usage-limit",
                period_end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
        }
    }
}

/// Locks the organization row for the rest of the transaction (PostgreSQL); on SQLite the
/// transaction already holds the write lock (`thesis_db::begin_write`).
pub async fn lock_organization<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
) -> Result<organization::Model, ApiError> {
    organization::Entity::find_by_id(org_id)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))
}

async fn sum<C: ConnectionTrait>(
    conn: &C,
    select: Select<usage_record::Entity>,
    expr: &str,
) -> Result<i64, ApiError> {
    let total: Option<i64> = select
        .select_only()
        .column_as(
            Expr::cust(format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)")),
            "total",
        )
        .into_tuple()
        .one(conn)
        .await?;
    Ok(total.unwrap_or(0))
}

const BILLABLE: &str = "cost_nanocents - trial_covered_nanocents";

/// Cost not covered by a trial, of usage in `[start, end)`: whole UTC days from the daily
/// totals, the partial days at either end from the records themselves.
pub async fn billable_between<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<i64, ApiError> {
    if end <= start {
        return Ok(0);
    }
    let exact = |from: DateTime<Utc>, to: DateTime<Utc>| {
        sum(
            conn,
            usage_record::Entity::find()
                .filter(usage_record::Column::OrganizationId.eq(org_id))
                .filter(usage_record::Column::CreatedAt.gte(from))
                .filter(usage_record::Column::CreatedAt.lt(to)),
            BILLABLE,
        )
    };
    let first_whole = if start_of_day(start) == start {
        start
    } else {
        next_midnight(start)
    };
    let last_whole = start_of_day(end);
    if first_whole >= last_whole {
        return exact(start, end).await;
    }
    let whole: Option<i64> = usage_daily_total::Entity::find()
        .filter(usage_daily_total::Column::OrganizationId.eq(org_id))
        .filter(usage_daily_total::Column::Day.gte(day_of(first_whole)))
        .filter(usage_daily_total::Column::Day.lt(day_of(last_whole)))
        .select_only()
        .column_as(
            Expr::cust(
                "CAST(COALESCE(SUM(cost_nanocents - trial_covered_nanocents), 0) AS BIGINT)",
            ),
            "total",
        )
        .into_tuple()
        .one(conn)
        .await?;
    let mut total = whole.unwrap_or(0);
    if start < first_whole {
        total += exact(start, first_whole).await?;
    }
    if last_whole < end {
        total += exact(last_whole, end).await?;
    }
    Ok(total)
}

/// Total cost and trial-covered cost of usage in `[start, end)`.
pub async fn cost_between<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(i64, i64), ApiError> {
    let select = || {
        usage_record::Entity::find()
            .filter(usage_record::Column::OrganizationId.eq(org_id))
            .filter(usage_record::Column::CreatedAt.gte(start))
            .filter(usage_record::Column::CreatedAt.lt(end))
    };
    Ok((
        sum(conn, select(), "cost_nanocents").await?,
        sum(conn, select(), "trial_covered_nanocents").await?,
    ))
}

/// Cost not covered by a trial, of usage on a UTC day (from the daily totals).
pub async fn billable_on_day<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    day: &str,
) -> Result<i64, ApiError> {
    Ok(
        usage_daily_total::Entity::find_by_id((org_id, day.to_string()))
            .one(conn)
            .await?
            .map(|t| t.cost_nanocents - t.trial_covered_nanocents)
            .unwrap_or(0),
    )
}

/// Cost a trial has covered so far.
pub async fn trial_used<C: ConnectionTrait>(conn: &C, trial_id: Uuid) -> Result<i64, ApiError> {
    Ok(trial::Entity::find_by_id(trial_id)
        .one(conn)
        .await?
        .map(|t| t.covered_nanocents)
        .unwrap_or(0))
}

/// Cost held by live reservations of the organization.
pub async fn reserved<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    now: DateTime<Utc>,
) -> Result<i64, ApiError> {
    let total: Option<i64> = usage_reservation::Entity::find()
        .filter(usage_reservation::Column::OrganizationId.eq(org_id))
        .filter(usage_reservation::Column::ExpiresAt.gt(now))
        .select_only()
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(amount_nanocents), 0) AS BIGINT)"),
            "total",
        )
        .into_tuple()
        .one(conn)
        .await?;
    Ok(total.unwrap_or(0))
}

/// The claimed, unexpired trial of the organization at `now`, if any.
pub async fn active_trial<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<trial::Model>, ApiError> {
    Ok(trial::Entity::find()
        .filter(trial::Column::OrganizationId.eq(org_id))
        .filter(trial::Column::ClaimedAt.is_not_null())
        .filter(trial::Column::ExpiredAt.is_null())
        .filter(trial::Column::PeriodStart.lte(now))
        .filter(trial::Column::PeriodEnd.gt(now))
        .one(conn)
        .await?)
}

/// Where an organization stands against its limits at `now`.
#[derive(Debug, Clone)]
pub struct Standing {
    pub plan: SubscriptionPlan,
    /// The active trial and the cost it has covered.
    pub trial: Option<(trial::Model, i64)>,
    /// Cost held by requests in flight.
    pub reserved_nanos: i64,
    pub window: Window,
}

#[derive(Debug, Clone)]
pub enum Window {
    /// Free plan: today's uncovered usage against the daily limit.
    Daily {
        limit_nanos: i64,
        used_nanos: i64,
        resets_at: DateTime<Utc>,
    },
    /// payAsYouGo: the period's uncovered usage against `usageLimitCents` (none = no cap).
    Period {
        limit_nanos: Option<i64>,
        used_nanos: i64,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

impl Standing {
    /// Cost the active trial can still cover.
    pub fn trial_remaining(&self) -> i64 {
        self.trial
            .as_ref()
            .map(|(t, used)| (cents_to_nanos(t.max_usage_allowance_cents) - used).max(0))
            .unwrap_or(0)
    }

    /// Admission rule: a request may start while the trial, or else the plan's window, has room
    /// beyond what requests in flight hold.
    pub fn check(&self) -> Result<(), LimitExceeded> {
        if self.trial.is_some() && self.reserved_nanos < self.trial_remaining() {
            return Ok(());
        }
        match &self.window {
            Window::Daily {
                limit_nanos,
                used_nanos,
                resets_at,
            } => {
                if used_nanos + self.reserved_nanos < *limit_nanos {
                    Ok(())
                } else {
                    Err(LimitExceeded::FreeDaily {
                        limit_cents: limit_nanos / NANOS_PER_CENT,
                        resets_at: *resets_at,
                    })
                }
            }
            Window::Period {
                limit_nanos: Some(limit),
                used_nanos,
                end,
                ..
            } => {
                if used_nanos + self.reserved_nanos < *limit {
                    Ok(())
                } else {
                    Err(LimitExceeded::UsageLimit {
                        limit_cents: limit / NANOS_PER_CENT,
                        period_end: *end,
                    })
                }
            }
            Window::Period {
                limit_nanos: None, ..
            } => Ok(()),
        }
    }

    /// Whether usage is refused right now (ignoring requests in flight).
    pub fn limited(&self) -> bool {
        Standing {
            reserved_nanos: 0,
            ..self.clone()
        }
        .check()
        .is_err()
    }
}

/// Computes the standing of `org` at `now`.
pub async fn standing<C: ConnectionTrait>(
    conn: &C,
    org: &organization::Model,
    daily_limit_cents: i64,
    now: DateTime<Utc>,
) -> Result<Standing, ApiError> {
    let trial = match active_trial(conn, org.id, now).await? {
        Some(t) => {
            let used = t.covered_nanocents;
            Some((t, used))
        }
        None => None,
    };
    let window = match org.subscription_plan {
        SubscriptionPlan::Free => Window::Daily {
            limit_nanos: cents_to_nanos(daily_limit_cents),
            used_nanos: billable_on_day(conn, org.id, &day_of(now)).await?,
            resets_at: next_midnight(now),
        },
        SubscriptionPlan::PayAsYouGo => {
            let (start, end) = current_period(org, now);
            Window::Period {
                limit_nanos: org.usage_limit_cents.map(cents_to_nanos),
                used_nanos: billable_between(conn, org.id, start, end).await?,
                start,
                end,
            }
        }
    };
    Ok(Standing {
        plan: org.subscription_plan,
        trial,
        reserved_nanos: reserved(conn, org.id, now).await?,
        window,
    })
}

/// Admits a usage-creating request of estimated cost `estimate_nanos`, or refuses it (429 on
/// the free plan's daily limit, 402 on a payAsYouGo usage limit).
pub async fn admit(
    db: &DatabaseConnection,
    daily_limit_cents: i64,
    org_id: Uuid,
    estimate_nanos: i64,
) -> Result<Admission, ApiError> {
    let txn = thesis_db::begin_write(db).await?;
    let org = lock_organization(&txn, org_id).await?;
    let now = thesis_db::now();
    standing(&txn, &org, daily_limit_cents, now)
        .await?
        .check()?;
    let admission = Admission {
        id: thesis_db::new_id(),
        organization_id: org_id,
        amount_nanos: estimate_nanos.max(0),
    };
    usage_reservation::ActiveModel {
        id: Set(admission.id),
        organization_id: Set(org_id),
        amount_nanocents: Set(admission.amount_nanos),
        created_at: Set(now),
        expires_at: Set(now + Duration::minutes(RESERVATION_TTL_MINUTES)),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(admission)
}

/// Gives a reservation back without recording usage (the request failed before any usage).
pub async fn release(db: &DatabaseConnection, admission: &Admission) -> Result<(), ApiError> {
    usage_reservation::Entity::delete_by_id(admission.id)
        .exec(db)
        .await?;
    Ok(())
}

/// Records usage (and releases the admission, if any) in one transaction. The active trial covers
/// what it still can. With an idempotency key already recorded, the earlier record is returned and
/// nothing is added.
pub async fn record(
    db: &DatabaseConnection,
    admission: Option<&Admission>,
    usage: NewUsage,
) -> Result<usage_record::Model, ApiError> {
    let txn = thesis_db::begin_write(db).await?;
    let (record, _) = record_in(&txn, admission, usage).await?;
    txn.commit().await?;
    Ok(record)
}

/// [`record`] inside the caller's write transaction (`thesis_db::begin_write`), so that what
/// belongs with the usage (a stored response) commits with it. The flag is false when the
/// idempotency key was already recorded and nothing was added.
pub async fn record_in(
    txn: &DatabaseTransaction,
    admission: Option<&Admission>,
    usage: NewUsage,
) -> Result<(usage_record::Model, bool), ApiError> {
    lock_organization(txn, usage.organization_id).await?;
    if let Some(a) = admission {
        usage_reservation::Entity::delete_by_id(a.id)
            .exec(txn)
            .await?;
    }
    if let Some(key) = &usage.idempotency_key
        && let Some(existing) = usage_record::Entity::find()
            .filter(usage_record::Column::IdempotencyKey.eq(key.as_str()))
            .one(txn)
            .await?
    {
        return Ok((existing, false));
    }
    let now = thesis_db::now();
    let day = day_of(now);
    let cost = usage.cost_nanos.max(0);
    let (trial_id, covered) = match active_trial(txn, usage.organization_id, now).await? {
        Some(t) => {
            let remaining =
                (cents_to_nanos(t.max_usage_allowance_cents) - t.covered_nanocents).max(0);
            let covered = cost.min(remaining);
            if covered > 0 {
                (Some(t.id), covered)
            } else {
                (None, 0)
            }
        }
        None => (None, 0),
    };
    let record = usage_record::ActiveModel {
        id: Set(thesis_db::new_id()),
        organization_id: Set(usage.organization_id),
        user_id: Set(usage.user_id),
        metric_type: Set(usage.metric_type),
        model: Set(usage.model),
        machine_id: Set(usage.machine_id),
        quantity: Set(usage.quantity),
        unit: Set(usage.unit),
        input_tokens: Set(usage.input_tokens),
        output_tokens: Set(usage.output_tokens),
        cached_tokens: Set(usage.cached_tokens),
        reasoning_tokens: Set(usage.reasoning_tokens),
        cost_nanocents: Set(cost),
        trial_id: Set(trial_id),
        trial_covered_nanocents: Set(covered),
        day: Set(day),
        idempotency_key: Set(usage.idempotency_key),
        metadata: Set(usage.metadata),
        created_at: Set(now),
    }
    .insert(txn)
    .await?;
    add_to_totals(txn, &record).await?;
    Ok((record, true))
}

/// Adds a new record to its organization's daily totals and to its trial's covered amount.
async fn add_to_totals(
    txn: &DatabaseTransaction,
    record: &usage_record::Model,
) -> Result<(), ApiError> {
    use sea_orm::sea_query::ExprTrait as _;
    use usage_daily_total::Column as T;
    usage_daily_total::Entity::insert(usage_daily_total::ActiveModel {
        organization_id: Set(record.organization_id),
        day: Set(record.day.clone()),
        cost_nanocents: Set(record.cost_nanocents),
        trial_covered_nanocents: Set(record.trial_covered_nanocents),
        records: Set(1),
    })
    .on_conflict(
        OnConflict::columns([T::OrganizationId, T::Day])
            .value(
                T::CostNanocents,
                Expr::col((usage_daily_total::Entity, T::CostNanocents)).add(record.cost_nanocents),
            )
            .value(
                T::TrialCoveredNanocents,
                Expr::col((usage_daily_total::Entity, T::TrialCoveredNanocents))
                    .add(record.trial_covered_nanocents),
            )
            .value(
                T::Records,
                Expr::col((usage_daily_total::Entity, T::Records)).add(1),
            )
            .to_owned(),
    )
    .exec(txn)
    .await?;
    if let Some(trial_id) = record.trial_id {
        trial::Entity::update_many()
            .col_expr(
                trial::Column::CoveredNanocents,
                Expr::col(trial::Column::CoveredNanocents).add(record.trial_covered_nanocents),
            )
            .filter(trial::Column::Id.eq(trial_id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Cents of a nano-cent amount, for answers.
pub fn cents(nanos: i64) -> f64 {
    nanos_to_cents(nanos)
}
