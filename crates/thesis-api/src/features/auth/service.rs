use sea_orm::ActiveValue::Set;
use sea_orm::TransactionTrait;
use sea_orm::prelude::*;
use thesis_db::entities::{MembershipStatus, auth_session, membership, password_reset, user};

use crate::auth::{password, tokens};
use crate::error::{ApiError, normalize_email};
use crate::features::user::service::RESET_PURPOSE;
use crate::ratelimit;
use crate::state::AppState;

pub struct NewSession {
    pub user: user::Model,
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Creates a user (e-mail unique, compared case-insensitively); used by sign-up and the CLI.
/// Accepted invitations waiting for this e-mail are linked to the new account.
pub async fn create_user(
    state: &AppState,
    email: &str,
    password_plain: &str,
    name: &str,
    is_admin: bool,
) -> Result<user::Model, ApiError> {
    let password_hash = password::hash(password_plain.to_string()).await?;
    let now = thesis_db::now();
    let email = email.trim().to_string();
    let email_normalized = normalize_email(&email);
    let txn = state.db.begin().await?;
    let created = user::ActiveModel {
        id: Set(thesis_db::new_id()),
        email: Set(email),
        email_normalized: Set(email_normalized.clone()),
        name: Set(name.trim().to_string()),
        password_hash: Set(password_hash),
        is_admin: Set(is_admin),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        if thesis_db::is_unique_violation(&e) {
            ApiError::Conflict("an account with this e-mail already exists".into())
        } else {
            e.into()
        }
    })?;
    membership::Entity::update_many()
        .col_expr(membership::Column::UserId, Expr::value(created.id))
        .col_expr(membership::Column::UpdatedAt, Expr::value(now))
        .filter(membership::Column::EmailNormalized.eq(email_normalized))
        .filter(membership::Column::Status.eq(MembershipStatus::Active))
        .filter(membership::Column::UserId.is_null())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(created)
}

pub async fn signup(
    state: &AppState,
    email: &str,
    password_plain: &str,
    name: &str,
) -> Result<NewSession, ApiError> {
    let user = create_user(state, email, password_plain, name, false).await?;
    let (token, expires_at) = state.create_login_session(&state.db, user.id).await?;
    Ok(NewSession {
        user,
        token,
        expires_at,
    })
}

/// Checks e-mail and password; both failures give the same 401. Failed attempts per e-mail are
/// limited (429) so passwords cannot be guessed at speed.
pub async fn login(
    state: &AppState,
    email: &str,
    password_plain: &str,
) -> Result<NewSession, ApiError> {
    let email_normalized = normalize_email(email);
    if let Some(retry) = ratelimit::is_exceeded(
        &state.db,
        ratelimit::LOGIN_FAILURES_PER_EMAIL,
        &email_normalized,
    )
    .await?
    {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "too many failed logins for this e-mail; try again in {retry} seconds"
            ),
            retry_after_secs: retry,
        });
    }
    let found = user::Entity::find()
        .filter(user::Column::EmailNormalized.eq(&email_normalized))
        .one(&state.db)
        .await?;
    let ok = password::verify(
        password_plain.to_string(),
        found.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    match found {
        Some(user) if ok => {
            let (token, expires_at) = state.create_login_session(&state.db, user.id).await?;
            Ok(NewSession {
                user,
                token,
                expires_at,
            })
        }
        _ => {
            // count the failure; the 401 stays the answer for this attempt
            let _ = ratelimit::hit(
                &state.db,
                ratelimit::LOGIN_FAILURES_PER_EMAIL,
                &email_normalized,
            )
            .await;
            Err(ApiError::Unauthorized("invalid e-mail or password".into()))
        }
    }
}

/// Revokes one login session at once.
pub async fn logout(state: &AppState, session_id: Uuid) -> Result<(), ApiError> {
    auth_session::Entity::update_many()
        .col_expr(
            auth_session::Column::RevokedAt,
            Expr::value(thesis_db::now()),
        )
        .filter(auth_session::Column::Id.eq(session_id))
        .filter(auth_session::Column::RevokedAt.is_null())
        .exec(&state.db)
        .await?;
    Ok(())
}

/// Sets a new password with a reset token: single use (claimed with a conditional update, so two
/// concurrent confirms cannot both succeed), valid one hour; revokes every session of the user.
pub async fn confirm_password_reset(
    state: &AppState,
    token: &str,
    new_password: &str,
) -> Result<(), ApiError> {
    let invalid = || ApiError::BadRequest("invalid or expired password reset token".into());
    let hash = tokens::keyed_hash(state.secret.expose(), RESET_PURPOSE, token.trim());
    let now = thesis_db::now();
    let reset = password_reset::Entity::find()
        .filter(password_reset::Column::TokenHash.eq(hash))
        .one(&state.db)
        .await?
        .ok_or_else(invalid)?;
    if reset.used_at.is_some() || reset.expires_at <= now {
        return Err(invalid());
    }
    let password_hash = password::hash(new_password.to_string()).await?;

    let txn = thesis_db::begin_write(&state.db).await?;
    let claimed = password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(now))
        .filter(password_reset::Column::Id.eq(reset.id))
        .filter(password_reset::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        return Err(invalid());
    }
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(reset.user_id))
        .exec(&txn)
        .await?;
    auth_session::Entity::update_many()
        .col_expr(auth_session::Column::RevokedAt, Expr::value(now))
        .filter(auth_session::Column::UserId.eq(reset.user_id))
        .filter(auth_session::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}
