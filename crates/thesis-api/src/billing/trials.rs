//! Trials: created by platform admins, claimed by the organization, covering usage up to their
//! allowance until their period ends.

use chrono::{DateTime, Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use sea_orm::{DatabaseConnection, IntoActiveModel, QueryOrder};
use serde::Serialize;
use thesis_db::entities::trial;
use utoipa::ToSchema;

use super::ledger::{active_trial, lock_organization, trial_used};
use super::money::cents_to_nanos;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum TrialStatus {
    /// Created, not claimed yet.
    Unclaimed,
    /// Claimed and covering usage.
    Active,
    /// Claimed and within its period, but its allowance is used up.
    Exhausted,
    /// Its period has ended.
    Expired,
}

pub fn status(t: &trial::Model, used_nanos: i64, now: DateTime<Utc>) -> TrialStatus {
    match (t.claimed_at, t.period_end) {
        (None, _) => TrialStatus::Unclaimed,
        (Some(_), Some(end)) if t.expired_at.is_none() && now < end => {
            if used_nanos >= cents_to_nanos(t.max_usage_allowance_cents) {
                TrialStatus::Exhausted
            } else {
                TrialStatus::Active
            }
        }
        _ => TrialStatus::Expired,
    }
}

/// The trials of an organization, oldest first, with the cost each has covered.
pub async fn list_trials<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
) -> Result<Vec<(trial::Model, i64)>, ApiError> {
    let trials = trial::Entity::find()
        .filter(trial::Column::OrganizationId.eq(org_id))
        .order_by_asc(trial::Column::CreatedAt)
        .order_by_asc(trial::Column::Id)
        .all(conn)
        .await?;
    let mut out = Vec::with_capacity(trials.len());
    for t in trials {
        let used = trial_used(conn, t.id).await?;
        out.push((t, used));
    }
    Ok(out)
}

fn claim(t: trial::Model, now: DateTime<Utc>) -> trial::ActiveModel {
    let length = Duration::days(i64::from(t.length_days));
    let mut active = t.into_active_model();
    active.claimed_at = Set(Some(now));
    active.period_start = Set(Some(now));
    active.period_end = Set(Some(now + length));
    active.updated_at = Set(now);
    active
}

/// Creates a trial; with `claim_on_create` it is claimed at once (409 if another is active).
pub async fn create_trial(
    db: &DatabaseConnection,
    org_id: Uuid,
    created_by: Uuid,
    length_days: i32,
    max_usage_allowance_cents: i64,
    claim_on_create: bool,
) -> Result<trial::Model, ApiError> {
    let txn = thesis_db::begin_write(db).await?;
    lock_organization(&txn, org_id).await?;
    let now = thesis_db::now();
    if claim_on_create && active_trial(&txn, org_id, now).await?.is_some() {
        return Err(ApiError::Conflict(
            "the organization already has an active trial".into(),
        ));
    }
    let created = trial::ActiveModel {
        id: Set(thesis_db::new_id()),
        organization_id: Set(org_id),
        length_days: Set(length_days),
        max_usage_allowance_cents: Set(max_usage_allowance_cents),
        claimed_at: Set(None),
        period_start: Set(None),
        period_end: Set(None),
        expired_at: Set(None),
        covered_nanocents: Set(0),
        created_by: Set(Some(created_by)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let created = if claim_on_create {
        claim(created, now).update(&txn).await?
    } else {
        created
    };
    txn.commit().await?;
    Ok(created)
}

/// Claims the organization's oldest unclaimed trial: 404 when there is none, 409 while one is
/// active. Serialized per organization, so two concurrent claims activate one trial.
pub async fn claim_trial(db: &DatabaseConnection, org_id: Uuid) -> Result<trial::Model, ApiError> {
    let txn = thesis_db::begin_write(db).await?;
    lock_organization(&txn, org_id).await?;
    let now = thesis_db::now();
    if active_trial(&txn, org_id, now).await?.is_some() {
        return Err(ApiError::Conflict(
            "the organization already has an active trial".into(),
        ));
    }
    let unclaimed = trial::Entity::find()
        .filter(trial::Column::OrganizationId.eq(org_id))
        .filter(trial::Column::ClaimedAt.is_null())
        .order_by_asc(trial::Column::CreatedAt)
        .order_by_asc(trial::Column::Id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::NotFound("the organization has no trial to claim".into()))?;
    let claimed = claim(unclaimed, now).update(&txn).await?;
    txn.commit().await?;
    Ok(claimed)
}

/// Changes to a trial; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct TrialUpdate {
    pub length_days: Option<i32>,
    pub max_usage_allowance_cents: Option<i64>,
    pub period_start: Option<Option<DateTime<Utc>>>,
    pub period_end: Option<Option<DateTime<Utc>>>,
}

pub async fn update_trial(
    db: &DatabaseConnection,
    org_id: Uuid,
    trial_id: Uuid,
    update: TrialUpdate,
) -> Result<trial::Model, ApiError> {
    let txn = thesis_db::begin_write(db).await?;
    lock_organization(&txn, org_id).await?;
    let t = trial::Entity::find_by_id(trial_id)
        .filter(trial::Column::OrganizationId.eq(org_id))
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("trial"))?;
    let now = thesis_db::now();
    let length = update.length_days.unwrap_or(t.length_days);
    let start = update.period_start.unwrap_or(t.period_start);
    let end = match update.period_end {
        Some(end) => end,
        // a new length moves the end of a claimed trial unless an end is given
        None if update.length_days.is_some() => {
            start.map(|s| s + Duration::days(i64::from(length)))
        }
        None => t.period_end,
    };
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(ApiError::Validation(vec![
            "periodEnd: must be after periodStart".into(),
        ]));
    }
    if start.is_some() != end.is_some() {
        return Err(ApiError::Validation(vec![
            "periodStart, periodEnd: give both or neither".into(),
        ]));
    }
    let mut active = t.clone().into_active_model();
    active.length_days = Set(length);
    if let Some(max) = update.max_usage_allowance_cents {
        active.max_usage_allowance_cents = Set(max);
    }
    active.period_start = Set(start);
    active.period_end = Set(end);
    // a period set on an unclaimed trial claims it; one moved into the future revives it
    if start.is_some() && t.claimed_at.is_none() {
        active.claimed_at = Set(Some(now));
    }
    if end.is_some_and(|e| e > now) {
        active.expired_at = Set(None);
    }
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    // at most one trial may cover usage at a time
    let overlapping = trial::Entity::find()
        .filter(trial::Column::OrganizationId.eq(org_id))
        .filter(trial::Column::Id.ne(trial_id))
        .filter(trial::Column::ClaimedAt.is_not_null())
        .filter(trial::Column::ExpiredAt.is_null())
        .all(&txn)
        .await?
        .into_iter()
        .any(|o| {
            match (
                o.period_start,
                o.period_end,
                updated.period_start,
                updated.period_end,
            ) {
                (Some(os), Some(oe), Some(s), Some(e)) => os < e && s < oe && oe > now && e > now,
                _ => false,
            }
        });
    if overlapping {
        return Err(ApiError::Conflict(
            "the new period overlaps another active trial of the organization".into(),
        ));
    }
    txn.commit().await?;
    Ok(updated)
}

pub async fn delete_trial(
    db: &DatabaseConnection,
    org_id: Uuid,
    trial_id: Uuid,
) -> Result<trial::Model, ApiError> {
    let t = trial::Entity::find_by_id(trial_id)
        .filter(trial::Column::OrganizationId.eq(org_id))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("trial"))?;
    trial::Entity::delete_by_id(t.id).exec(db).await?;
    Ok(t)
}

/// Marks every claimed trial whose period has ended as expired; returns how many.
pub async fn expire_trials(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64, ApiError> {
    let result = trial::Entity::update_many()
        .col_expr(trial::Column::ExpiredAt, Expr::value(now))
        .col_expr(trial::Column::UpdatedAt, Expr::value(now))
        .filter(trial::Column::ClaimedAt.is_not_null())
        .filter(trial::Column::ExpiredAt.is_null())
        .filter(trial::Column::PeriodEnd.lte(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
