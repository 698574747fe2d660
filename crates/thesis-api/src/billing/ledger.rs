//! The usage ledger: admission against limits, exactly-once recording, and sums.
//!
//! A usage-creating request first **admits** (reserving its estimated cost), then **records** its
//! actual usage (which releases the reservation) or **releases** on failure. Admissions of one
//! organization behave as if they ran one after another, each seeing the usage and the
//! reservations of those before it, so across every instance the admitted requests stop within
//! one request's estimate of a limit:
//! - PostgreSQL: admission locks the organization row (`FOR UPDATE`) while it reads and reserves.
//! - SQLite: writes are serialized anyway, so a reservation is written first and then counts
//!   only the reservations written before it (`rowid` order); the reads need no lock.
//!
//! Recording swaps the reservation for the usage record and the running totals in one
//! transaction, so a read sees either the reservation or the usage, never both or neither.

use chrono::{DateTime, Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, DbBackend, QuerySelect, QueryTrait};
use thesis_db::entities::{
    MetricType, SubscriptionPlan, organization, trial, usage_daily_total, usage_record,
    usage_reservation,
};
use thesis_db::{Batch, WriteTxn};

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
    /// Whether a trial was active at admission: recording then looks for it to cover the usage.
    pub trial: bool,
    /// Admitted from a lease (`billing::leases`): `id` is the lease's row, which the request
    /// holds `amount_nanos` of; recording takes that off the row instead of deleting it.
    pub leased: bool,
}

impl Admission {
    /// A lease's row loses what this request held of it.
    fn lease_update(&self) -> sea_orm::sea_query::UpdateStatement {
        use sea_orm::sea_query::{ExprTrait as _, Query};
        use usage_reservation::Column as R;
        Query::update()
            .table(usage_reservation::Entity)
            .value(
                R::AmountNanocents,
                Expr::col(R::AmountNanocents).sub(self.amount_nanos),
            )
            .and_where(Expr::col(R::Id).eq(self.id))
            .to_owned()
    }

    /// Gives the reservation back, on `conn`.
    async fn release_in<C: ConnectionTrait>(&self, conn: &C) -> Result<(), DbErr> {
        if self.leased {
            conn.execute(&self.lease_update()).await?;
        } else {
            usage_reservation::Entity::delete_by_id(self.id)
                .exec(conn)
                .await?;
        }
        Ok(())
    }

    /// Adds giving the reservation back to `batch`.
    fn release_into(&self, batch: &mut Batch) {
        if self.leased {
            batch.push(&self.lease_update());
        } else {
            batch.push(&usage_reservation::Entity::delete_by_id(self.id).into_query());
        }
    }
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

/// The span whose billable usage counts against a limit.
#[derive(Debug, Clone, Copy)]
enum Span {
    /// One UTC day (the free plan's daily limit): read from the daily totals.
    Day(DateTime<Utc>),
    /// `[start, end)` (a billing period): whole UTC days from the daily totals, the partial days
    /// at either end from the records themselves.
    Between(DateTime<Utc>, DateTime<Utc>),
}

/// `CAST(COALESCE((sub), 0) AS BIGINT)`: a scalar subquery's value, 0 when nothing matched
/// (PostgreSQL's SUM of BIGINT is NUMERIC, hence the cast).
fn sum_of(sub: sea_orm::sea_query::SelectStatement) -> Expr {
    use sea_orm::sea_query::{Alias, Func};
    Func::cast_as(
        Func::coalesce([Expr::from(sub), Expr::val(0i64)]),
        Alias::new("BIGINT"),
    )
    .into()
}

fn billable_sum_of<E: EntityTrait>(select: Select<E>) -> Expr {
    sum_of(
        select
            .select_only()
            .column_as(Expr::cust(format!("SUM({BILLABLE})")), "total")
            .into_query(),
    )
}

/// Billable usage of the organization in `span`, as one SQL expression.
fn used_expr(org_id: Uuid, span: Span) -> Expr {
    use sea_orm::sea_query::ExprTrait as _;
    let records = |from: DateTime<Utc>, to: DateTime<Utc>| {
        billable_sum_of(
            usage_record::Entity::find()
                .filter(usage_record::Column::OrganizationId.eq(org_id))
                .filter(usage_record::Column::CreatedAt.gte(from))
                .filter(usage_record::Column::CreatedAt.lt(to)),
        )
    };
    let days = |from: DateTime<Utc>, to: DateTime<Utc>| {
        billable_sum_of(
            usage_daily_total::Entity::find()
                .filter(usage_daily_total::Column::OrganizationId.eq(org_id))
                .filter(usage_daily_total::Column::Day.gte(day_of(from)))
                .filter(usage_daily_total::Column::Day.lt(day_of(to))),
        )
    };
    let mut parts: Vec<Expr> = vec![];
    match span {
        Span::Day(t) => parts.push(days(start_of_day(t), next_midnight(t))),
        Span::Between(start, end) if end > start => {
            let first_whole = if start_of_day(start) == start {
                start
            } else {
                next_midnight(start)
            };
            let last_whole = start_of_day(end);
            if first_whole >= last_whole {
                parts.push(records(start, end));
            } else {
                parts.push(days(first_whole, last_whole));
                if start < first_whole {
                    parts.push(records(start, first_whole));
                }
                if last_whole < end {
                    parts.push(records(last_whole, end));
                }
            }
        }
        Span::Between(..) => {}
    }
    parts
        .into_iter()
        .reduce(|a, b| a.add(b))
        .unwrap_or_else(|| Expr::val(0i64))
}

/// Cost held by the organization's live reservations, as one SQL expression.
fn reserved_expr(org_id: Uuid, now: DateTime<Utc>) -> Expr {
    sum_of(
        usage_reservation::Entity::find()
            .filter(usage_reservation::Column::OrganizationId.eq(org_id))
            .filter(usage_reservation::Column::ExpiresAt.gt(now))
            .select_only()
            .column_as(Expr::cust("SUM(amount_nanocents)"), "total")
            .into_query(),
    )
}

/// The organization's claimed, unexpired trials at `now`.
fn active_trials(org_id: Uuid, now: DateTime<Utc>) -> Select<trial::Entity> {
    trial::Entity::find()
        .filter(trial::Column::OrganizationId.eq(org_id))
        .filter(trial::Column::ClaimedAt.is_not_null())
        .filter(trial::Column::ExpiredAt.is_null())
        .filter(trial::Column::PeriodStart.lte(now))
        .filter(trial::Column::PeriodEnd.gt(now))
}

/// What the active trial can still cover (0 without one), as one SQL expression.
fn trial_remaining_expr(org_id: Uuid, now: DateTime<Utc>) -> Expr {
    sum_of(
        active_trials(org_id, now)
            .select_only()
            .column_as(
                Expr::cust(format!(
                    "MAX(max_usage_allowance_cents * {NANOS_PER_CENT} - covered_nanocents)"
                )),
                "remaining",
            )
            .into_query(),
    )
}

/// Billable usage in `span` and the cost held by live reservations, read in one statement so
/// that both come from one snapshot.
async fn used_and_reserved<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    span: Span,
    now: DateTime<Utc>,
) -> Result<(i64, i64), ApiError> {
    let mut query = sea_orm::sea_query::Query::select();
    query
        .expr_as(used_expr(org_id, span), "used")
        .expr_as(reserved_expr(org_id, now), "reserved");
    let row = conn
        .query_one(&query)
        .await?
        .ok_or_else(|| ApiError::Internal("a SELECT without FROM gave no row".into()))?;
    Ok((row.try_get("", "used")?, row.try_get("", "reserved")?))
}

/// Cost not covered by a trial, of usage in `[start, end)`.
pub async fn billable_between<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<i64, ApiError> {
    Ok(
        used_and_reserved(conn, org_id, Span::Between(start, end), end)
            .await?
            .0,
    )
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

/// Cost a trial has covered so far.
pub async fn trial_used<C: ConnectionTrait>(conn: &C, trial_id: Uuid) -> Result<i64, ApiError> {
    Ok(trial::Entity::find_by_id(trial_id)
        .one(conn)
        .await?
        .map(|t| t.covered_nanocents)
        .unwrap_or(0))
}

/// The claimed, unexpired trial of the organization at `now`, if any.
pub async fn active_trial<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<trial::Model>, ApiError> {
    Ok(active_trials(org_id, now).one(conn).await?)
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

impl Window {
    /// The limit of the window; `None` when there is none (payAsYouGo without a usage limit).
    pub fn limit_nanos(&self) -> Option<i64> {
        match self {
            Window::Daily { limit_nanos, .. } => Some(*limit_nanos),
            Window::Period { limit_nanos, .. } => *limit_nanos,
        }
    }
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

/// The organization's limit window at `now` (usage still 0) and the span its usage is read from.
fn window_of(
    org: &organization::Model,
    daily_limit_cents: i64,
    now: DateTime<Utc>,
) -> (Window, Span) {
    match org.subscription_plan {
        SubscriptionPlan::Free => (
            Window::Daily {
                limit_nanos: cents_to_nanos(daily_limit_cents),
                used_nanos: 0,
                resets_at: next_midnight(now),
            },
            Span::Day(now),
        ),
        SubscriptionPlan::PayAsYouGo => {
            let (start, end) = current_period(org, now);
            (
                Window::Period {
                    limit_nanos: org.usage_limit_cents.map(cents_to_nanos),
                    used_nanos: 0,
                    start,
                    end,
                },
                Span::Between(start, end),
            )
        }
    }
}

/// The limit that counts for `org` at `now` (the free plan's daily limit, or its usage limit),
/// `None` without one.
pub fn limit_of(
    org: &organization::Model,
    daily_limit_cents: i64,
    now: DateTime<Utc>,
) -> Option<i64> {
    window_of(org, daily_limit_cents, now).0.limit_nanos()
}

/// Computes the standing of `org` at `now`.
pub async fn standing<C: ConnectionTrait>(
    conn: &C,
    org: &organization::Model,
    daily_limit_cents: i64,
    now: DateTime<Utc>,
) -> Result<Standing, ApiError> {
    let trial = active_trial(conn, org.id, now).await?.map(|t| {
        let used = t.covered_nanocents;
        (t, used)
    });
    let (mut window, span) = window_of(org, daily_limit_cents, now);
    let (used, reserved_nanos) = used_and_reserved(conn, org.id, span, now).await?;
    match &mut window {
        Window::Daily { used_nanos, .. } | Window::Period { used_nanos, .. } => *used_nanos = used,
    }
    Ok(Standing {
        plan: org.subscription_plan,
        trial,
        reserved_nanos,
        window,
    })
}

/// `INSERT` of the admission's reservation that inserts nothing unless the organization may start
/// one more request: [`Standing::check`] as SQL, over usage and reservations as the statement
/// sees them. It returns whether a trial is active.
///
/// With `whole`, the reservation must fit entirely (a lease: `reserved + amount` within the
/// trial's or the window's room); without, there must be room left at all (one request, which
/// may end up to its own cost past the limit).
fn reserve_if_admissible(
    org: &organization::Model,
    daily_limit_cents: i64,
    now: DateTime<Utc>,
    id: Uuid,
    amount: i64,
    whole: bool,
) -> sea_orm::sea_query::InsertStatement {
    use sea_orm::sea_query::{ExprTrait as _, Query};
    use usage_reservation::Column as R;
    let mut select = Query::select();
    select.exprs([
        Expr::val(id),
        Expr::val(org.id),
        Expr::val(amount),
        Expr::val(now),
        Expr::val(now + Duration::minutes(RESERVATION_TTL_MINUTES)),
    ]);
    let (window, span) = window_of(org, daily_limit_cents, now);
    if let Some(limit) = window.limit_nanos() {
        let reserved = reserved_expr(org.id, now);
        let held = if whole {
            reserved.add(amount)
        } else {
            reserved
        };
        let (trial_room, window_room) = if whole {
            (
                held.clone().lte(trial_remaining_expr(org.id, now)),
                used_expr(org.id, span).add(held).lte(limit),
            )
        } else {
            (
                held.clone().lt(trial_remaining_expr(org.id, now)),
                used_expr(org.id, span).add(held).lt(limit),
            )
        };
        select.and_where(trial_room.or(window_room));
    }
    let mut insert = Query::insert();
    insert
        .into_table(usage_reservation::Entity)
        .columns([
            R::Id,
            R::OrganizationId,
            R::AmountNanocents,
            R::CreatedAt,
            R::ExpiresAt,
        ])
        .select_from(select)
        .expect("five columns, five values");
    insert.returning(
        Query::returning().expr(Expr::exists(
            active_trials(org.id, now)
                .select_only()
                .column_as(Expr::val(1), "one")
                .into_query(),
        )),
    );
    insert
}

/// Admits a usage-creating request of estimated cost `estimate_nanos` for `org`, or refuses it:
/// 429 on the free plan's daily limit, 402 on a payAsYouGo usage limit.
///
/// The check and the reservation are one statement ([`reserve_if_admissible`]): on SQLite,
/// where writes are serialized, that alone makes admissions of one organization run one after
/// another; on PostgreSQL the statement runs after the organization row is locked (and sees
/// everything committed before the lock was granted), with the row's current plan and limit.
/// `org` is the organization as the request resolved it.
pub async fn admit(
    db: &DatabaseConnection,
    daily_limit_cents: i64,
    org: &organization::Model,
    estimate_nanos: i64,
) -> Result<Admission, ApiError> {
    // a refusal is explained from a second read; should that read find room after all (usage
    // was released in between), the admission is tried again
    for _ in 0..3 {
        let id = thesis_db::new_id();
        let amount = estimate_nanos.max(0);
        let (trial, org) = reserve(db, daily_limit_cents, org, id, amount, false).await?;
        if let Some(trial) = trial {
            return Ok(Admission {
                id,
                organization_id: org.id,
                amount_nanos: amount,
                trial,
                leased: false,
            });
        }
        standing(db, &org, daily_limit_cents, thesis_db::now())
            .await?
            .check()?;
    }
    Err(ApiError::Internal(
        "admission kept refusing a request its standing allows".into(),
    ))
}

/// Runs [`reserve_if_admissible`]: `Some(trial active)` when the reservation was made, with the
/// organization as it was checked (on PostgreSQL re-read under its row lock).
async fn reserve(
    db: &DatabaseConnection,
    daily_limit_cents: i64,
    org: &organization::Model,
    id: Uuid,
    amount: i64,
    whole: bool,
) -> Result<(Option<bool>, organization::Model), ApiError> {
    let now = thesis_db::now();
    let (row, org) = if db.get_database_backend() == DbBackend::Sqlite {
        let insert = reserve_if_admissible(org, daily_limit_cents, now, id, amount, whole);
        let _turn = thesis_db::write_turn(db).await;
        (db.query_one(&insert).await?, org.clone())
    } else {
        let txn = thesis_db::begin_write(db).await?;
        let org = lock_organization(&txn, org.id).await?;
        let insert = reserve_if_admissible(&org, daily_limit_cents, now, id, amount, whole);
        let row = txn.query_one(&insert).await?;
        txn.commit().await?;
        (row, org)
    };
    let trial = match row {
        Some(row) => Some(row.try_get_by_index::<bool>(0)?),
        None => None,
    };
    Ok((trial, org))
}

/// Takes a lease of `amount` for `org` (see `billing::leases`): a reservation that fits entirely
/// within the room left. `Some((row id, trial active))`, or `None` when it does not fit.
pub async fn grant_lease(
    db: &DatabaseConnection,
    daily_limit_cents: i64,
    org: &organization::Model,
    amount: i64,
) -> Result<Option<(Uuid, bool)>, ApiError> {
    let id = thesis_db::new_id();
    let (trial, _) = reserve(db, daily_limit_cents, org, id, amount.max(0), true).await?;
    Ok(trial.map(|t| (id, t)))
}

/// Deletes the rows among `ids` (leases given back) that hold nothing any more; returns the
/// others, whose requests are still in flight.
pub async fn delete_drained_leases(
    db: &DatabaseConnection,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, ApiError> {
    use usage_reservation::Column as R;
    {
        let _turn = thesis_db::write_turn(db).await;
        usage_reservation::Entity::delete_many()
            .filter(R::Id.is_in(ids.iter().copied()))
            .filter(R::AmountNanocents.lte(0))
            .exec(db)
            .await?;
    }
    Ok(usage_reservation::Entity::find()
        .filter(R::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

/// Gives `amount` of a lease back (its unused part, when the lease is closed).
pub async fn shrink_lease(db: &DatabaseConnection, id: Uuid, amount: i64) -> Result<(), ApiError> {
    if amount <= 0 {
        return Ok(());
    }
    let lease = Admission {
        id,
        organization_id: Uuid::nil(),
        amount_nanos: amount,
        trial: false,
        leased: true,
    };
    let _turn = thesis_db::write_turn(db).await;
    db.execute(&lease.lease_update()).await?;
    Ok(())
}

/// [`admit`] for an organization id (loads the organization first).
pub async fn admit_org_id(
    db: &DatabaseConnection,
    daily_limit_cents: i64,
    org_id: Uuid,
    estimate_nanos: i64,
) -> Result<Admission, ApiError> {
    let org = organization::Entity::find_by_id(org_id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    admit(db, daily_limit_cents, &org, estimate_nanos).await
}

/// Gives a reservation back without recording usage (the request failed before any usage).
pub async fn release(db: &DatabaseConnection, admission: &Admission) -> Result<(), ApiError> {
    let _turn = thesis_db::write_turn(db).await;
    admission.release_in(db).await?;
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

/// [`record`] inside the caller's write transaction, so that what belongs with the usage (a
/// stored response) commits with it. The flag is false when the idempotency key was already
/// recorded and nothing was added.
///
/// No organization lock is taken: the daily totals are added to in place, and a trial's coverage
/// is computed under a lock of the trial's row (on SQLite the write transaction serializes all).
pub async fn record_in(
    txn: &WriteTxn,
    admission: Option<&Admission>,
    usage: NewUsage,
) -> Result<(usage_record::Model, bool), ApiError> {
    if let Some(a) = admission {
        a.release_in(txn).await?;
    }
    let now = thesis_db::now();
    let cost = usage.cost_nanos.max(0);
    // a trial covers usage when it was active at admission (or, without one, now)
    let trial = if admission.is_none_or(|a| a.trial) {
        trial::Entity::find()
            .filter(trial::Column::OrganizationId.eq(usage.organization_id))
            .filter(trial::Column::ClaimedAt.is_not_null())
            .filter(trial::Column::ExpiredAt.is_null())
            .filter(trial::Column::PeriodStart.lte(now))
            .filter(trial::Column::PeriodEnd.gt(now))
            .lock_exclusive()
            .one(txn)
            .await?
    } else {
        None
    };
    let (trial_id, covered) = match trial {
        Some(t) => {
            let remaining =
                (cents_to_nanos(t.max_usage_allowance_cents) - t.covered_nanocents).max(0);
            match cost.min(remaining) {
                0 => (None, 0),
                covered => (Some(t.id), covered),
            }
        }
        None => (None, 0),
    };
    let record = new_record(usage, now, trial_id, covered);
    let inserted = usage_record::Entity::insert(usage_record::ActiveModel::from(record.clone()))
        .on_conflict(
            OnConflict::column(usage_record::Column::IdempotencyKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    if inserted == 0 {
        // recorded before under this key: keep the first record, add nothing
        let existing = usage_record::Entity::find()
            .filter(usage_record::Column::IdempotencyKey.eq(record.idempotency_key))
            .one(txn)
            .await?
            .ok_or_else(|| ApiError::Internal("a conflicting usage record was not found".into()))?;
        return Ok((existing, false));
    }
    add_to_totals(txn, &record).await?;
    Ok((record, true))
}

/// The upsert that adds a record to its organization's daily totals.
fn add_to_daily_total(record: &usage_record::Model) -> sea_orm::sea_query::InsertStatement {
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
    .into_query()
}

/// Adds a new record to its organization's daily totals and to its trial's covered amount.
async fn add_to_totals(txn: &WriteTxn, record: &usage_record::Model) -> Result<(), ApiError> {
    use sea_orm::sea_query::ExprTrait as _;
    txn.execute(&add_to_daily_total(record)).await?;
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

/// The writes of [`record_in`] added to `batch`, for usage of a request admitted while no trial
/// was active (so none covers it): the reservation released, the record, the daily totals. The
/// caller commits the batch, with writes of its own; should it fail (an idempotency key recorded
/// before makes it fail), nothing was written and [`record_in`] does it the long way.
pub fn record_into_batch(
    batch: &mut Batch,
    admission: &Admission,
    usage: NewUsage,
) -> Option<usage_record::Model> {
    if admission.trial {
        return None;
    }
    let now = thesis_db::now();
    let record = new_record(usage, now, None, 0);
    admission.release_into(batch);
    batch
        .push(
            &usage_record::Entity::insert(usage_record::ActiveModel::from(record.clone()))
                .into_query(),
        )
        .push(&add_to_daily_total(&record));
    Some(record)
}

fn new_record(
    usage: NewUsage,
    now: DateTime<Utc>,
    trial_id: Option<Uuid>,
    covered: i64,
) -> usage_record::Model {
    usage_record::Model {
        id: thesis_db::new_id(),
        organization_id: usage.organization_id,
        user_id: usage.user_id,
        metric_type: usage.metric_type,
        model: usage.model,
        machine_id: usage.machine_id,
        quantity: usage.quantity,
        unit: usage.unit,
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cached_tokens: usage.cached_tokens,
        reasoning_tokens: usage.reasoning_tokens,
        cost_nanocents: usage.cost_nanos.max(0),
        trial_id,
        trial_covered_nanocents: covered,
        day: day_of(now),
        idempotency_key: usage.idempotency_key,
        metadata: usage.metadata,
        created_at: now,
    }
}

/// Cents of a nano-cent amount, for answers.
pub fn cents(nanos: i64) -> f64 {
    nanos_to_cents(nanos)
}
