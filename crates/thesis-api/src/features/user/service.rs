use chrono::Duration;
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use thesis_db::entities::{password_reset, user};

use crate::auth::tokens;
use crate::error::{ApiError, normalize_email};
use crate::integrations::mail::OutgoingMail;
use crate::ratelimit;
use crate::state::AppState;

/// Purpose tag of password-reset tokens in their keyed hash.
pub const RESET_PURPOSE: &str = "password-reset";
/// Lifetime of a password-reset token.
pub const RESET_TTL_MINUTES: i64 = 60;

/// Starts a password reset: rate-limited per e-mail and per client address; when the e-mail has
/// an account, stores a single-use token and mails a link. The answer never says which.
pub async fn request_password_reset(
    state: &AppState,
    email: &str,
    client: &str,
) -> Result<(), ApiError> {
    let email_normalized = normalize_email(email);
    ratelimit::hit(&state.db, ratelimit::PASSWORD_RESET_PER_CLIENT, client).await?;
    ratelimit::hit(
        &state.db,
        ratelimit::PASSWORD_RESET_PER_EMAIL,
        &email_normalized,
    )
    .await?;

    let Some(user) = user::Entity::find()
        .filter(user::Column::EmailNormalized.eq(&email_normalized))
        .one(&state.db)
        .await?
    else {
        return Ok(());
    };
    let token = tokens::generate("");
    let now = thesis_db::now();
    password_reset::ActiveModel {
        id: Set(thesis_db::new_id()),
        user_id: Set(user.id),
        token_hash: Set(tokens::keyed_hash(
            state.secret.expose(),
            RESET_PURPOSE,
            &token,
        )),
        created_at: Set(now),
        expires_at: Set(now + Duration::minutes(RESET_TTL_MINUTES)),
        used_at: Set(None),
    }
    .insert(&state.db)
    .await?;

    let link = format!("{}/reset-password?token={token}", state.public_url);
    let body = format!(
        "Hello {name},\n\n\
         someone (hopefully you) asked to reset the password of your Thesis account.\n\n\
         Reset token: {token}\n\
         Link: {link}\n\n\
         To set a new password, send the token to POST /v1/auth/password-reset/confirm \
         with your new password. The token works once and expires in {RESET_TTL_MINUTES} minutes.\n\n\
         If you did not ask for this, ignore this mail: your password stays as it is.\n",
        name = user.name,
    );
    state.mailer.send_in_background(
        &state.background,
        OutgoingMail {
            to: user.email.clone(),
            subject: "Reset your Thesis password".into(),
            body,
        },
    );
    Ok(())
}
