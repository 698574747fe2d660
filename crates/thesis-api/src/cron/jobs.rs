//! The jobs. Each returns JSON details of what it did, or an error message.

use chrono::Duration;
use sea_orm::Condition;
use sea_orm::prelude::*;
use serde_json::json;
use thesis_db::entities::{
    CronStatus, auth_session, cron_execution, password_reset, rate_limit, usage_reservation,
};

use crate::billing::{stripe_sync, trials};
use crate::state::AppState;

pub async fn run(state: &AppState, job: &str) -> Result<serde_json::Value, String> {
    match job {
        "trial-expiry" => trial_expiry(state).await,
        "cleanup" => cleanup(state).await,
        "usage-report" => usage_report(state).await,
        other => Err(format!("the `{other}` job is not implemented yet")),
    }
}

async fn trial_expiry(state: &AppState) -> Result<serde_json::Value, String> {
    let expired = trials::expire_trials(&state.db, thesis_db::now())
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({ "expired": expired }))
}

async fn usage_report(state: &AppState) -> Result<serde_json::Value, String> {
    if state.stripe.is_none() {
        return Ok(json!({
            "skipped": "self-hosted billing: no Stripe key is configured, nothing is reported"
        }));
    }
    let outcome = stripe_sync::report_all(state)
        .await
        .map_err(|e| e.to_string())?;
    if outcome.failures.is_empty() {
        Ok(json!({
            "organizations": outcome.organizations,
            "reports": outcome.reports,
            "reportedCents": outcome.reported_cents,
        }))
    } else {
        Err(format!(
            "{} of {} organizations could not be reported: {}",
            outcome.failures.len(),
            outcome.organizations,
            outcome.failures.join("; ")
        ))
    }
}

/// Removes what has no use any more: expired or long-revoked sessions, spent reset tokens,
/// finished rate-limit windows, stale reservations; marks executions left running by a crashed
/// instance as failed.
async fn cleanup(state: &AppState) -> Result<serde_json::Value, String> {
    let db = &state.db;
    let now = thesis_db::now();
    let day_ago = now - Duration::days(1);
    let err = |e: DbErr| e.to_string();
    let sessions = auth_session::Entity::delete_many()
        .filter(
            Condition::any()
                .add(auth_session::Column::ExpiresAt.lt(day_ago))
                .add(auth_session::Column::RevokedAt.lt(now - Duration::days(30))),
        )
        .exec(db)
        .await
        .map_err(err)?
        .rows_affected;
    let resets = password_reset::Entity::delete_many()
        .filter(password_reset::Column::ExpiresAt.lt(day_ago))
        .exec(db)
        .await
        .map_err(err)?
        .rows_affected;
    let windows = rate_limit::Entity::delete_many()
        .filter(rate_limit::Column::ExpiresAt.lt(now))
        .exec(db)
        .await
        .map_err(err)?
        .rows_affected;
    // expired, or fully given back (a usage lease whose requests have all been recorded)
    let reservations = usage_reservation::Entity::delete_many()
        .filter(
            sea_orm::Condition::any()
                .add(usage_reservation::Column::ExpiresAt.lt(now))
                .add(usage_reservation::Column::AmountNanocents.lte(0)),
        )
        .exec(db)
        .await
        .map_err(err)?
        .rows_affected;
    let abandoned = cron_execution::Entity::update_many()
        .col_expr(
            cron_execution::Column::Status,
            Expr::value(CronStatus::Failed),
        )
        .col_expr(
            cron_execution::Column::Error,
            Expr::value("abandoned: still running after 6 hours (its instance probably stopped)"),
        )
        .col_expr(cron_execution::Column::FinishedAt, Expr::value(now))
        .filter(cron_execution::Column::Status.eq(CronStatus::Running))
        .filter(cron_execution::Column::StartedAt.lt(now - Duration::hours(6)))
        .exec(db)
        .await
        .map_err(err)?
        .rows_affected;
    Ok(json!({
        "sessions": sessions,
        "passwordResets": resets,
        "rateLimitWindows": windows,
        "reservations": reservations,
        "abandonedExecutions": abandoned,
    }))
}
