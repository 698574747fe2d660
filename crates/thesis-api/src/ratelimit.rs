//! Fixed-window rate limits kept in the database, so they hold across every instance.

use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::sea_query::{ExprTrait, OnConflict};

use sea_orm::{ActiveValue::Set, DatabaseConnection};
use thesis_db::entities::rate_limit;

use crate::error::ApiError;

/// A limit of `max` hits per `window_secs` for one kind of action.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub bucket: &'static str,
    pub max: i64,
    pub window_secs: i64,
}

/// Password-reset mails per e-mail address.
pub const PASSWORD_RESET_PER_EMAIL: Limit = Limit {
    bucket: "password-reset:email",
    max: 5,
    window_secs: 3600,
};
/// Password-reset requests per client address.
pub const PASSWORD_RESET_PER_CLIENT: Limit = Limit {
    bucket: "password-reset:client",
    max: 30,
    window_secs: 3600,
};
/// Failed logins per e-mail address.
pub const LOGIN_FAILURES_PER_EMAIL: Limit = Limit {
    bucket: "login-failure:email",
    max: 20,
    window_secs: 900,
};

fn window(limit: &Limit, now: DateTime<Utc>) -> (i64, DateTime<Utc>) {
    let index = now.timestamp().div_euclid(limit.window_secs);
    let ends = DateTime::from_timestamp((index + 1) * limit.window_secs, 0).unwrap_or(now);
    (index, ends)
}

/// Counts one hit for `subject`; past the limit it is 429 with the seconds until the window ends.
pub async fn hit(db: &DatabaseConnection, limit: Limit, subject: &str) -> Result<(), ApiError> {
    let now = thesis_db::now();
    let (index, ends) = window(&limit, now);
    let key = format!("{}:{}:{}", limit.bucket, subject, index);
    let row = rate_limit::Entity::insert(rate_limit::ActiveModel {
        key: Set(key),
        count: Set(1),
        expires_at: Set(ends),
    })
    .on_conflict(
        OnConflict::column(rate_limit::Column::Key)
            .value(
                rate_limit::Column::Count,
                ExprTrait::add(
                    Expr::col((rate_limit::Entity, rate_limit::Column::Count)),
                    1,
                ),
            )
            .to_owned(),
    )
    .exec_with_returning(db)
    .await?;
    if row.count > limit.max {
        let retry = Ord::max((ends - now).num_seconds(), 1) as u64;
        return Err(ApiError::TooManyRequests {
            message: format!("too many requests; try again in {retry} seconds"),
            retry_after_secs: retry,
        });
    }
    Ok(())
}

/// Whether `subject` is already past the limit, without counting a hit.
pub async fn is_exceeded(
    db: &DatabaseConnection,
    limit: Limit,
    subject: &str,
) -> Result<Option<u64>, ApiError> {
    let now = thesis_db::now();
    let (index, ends) = window(&limit, now);
    let key = format!("{}:{}:{}", limit.bucket, subject, index);
    let row = rate_limit::Entity::find_by_id(key).one(db).await?;
    Ok(row
        .filter(|r| r.count >= limit.max)
        .map(|_| Ord::max((ends - now).num_seconds(), 1) as u64))
}
