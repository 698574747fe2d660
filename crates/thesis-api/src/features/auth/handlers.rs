use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::dto::*;
use super::service;
use crate::auth::{Caller, Credential};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::features::user::dto::UserDto;
use crate::state::AppState;

fn auth_response(state: &AppState, s: service::NewSession) -> AuthResponse {
    let is_admin = state.is_platform_admin(&s.user);
    AuthResponse {
        user: UserDto::new(s.user, is_admin),
        token: s.token,
        expires_at: s.expires_at,
    }
}

/// Sign up
///
/// Creates an account and a login session. E-mails are unique, compared case-insensitively.
#[utoipa::path(post, path = "/auth/signup", tag = "Auth", security(()),
    request_body = SignupRequest,
    responses((status = 201, body = AuthResponse), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "E-mail already registered")))]
pub async fn signup(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<AuthResponse>), ApiError> {
    let session = service::signup(&state, &body.email, &body.password, &body.name).await?;
    Ok((StatusCode::CREATED, Json(auth_response(&state, session))))
}

/// Log in
#[utoipa::path(post, path = "/auth/login", tag = "Auth", security(()),
    request_body = LoginRequest,
    responses((status = 200, body = AuthResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody, description = "Wrong e-mail or password"),
        (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Json<AuthResponse>, ApiError> {
    let session = service::login(&state, &body.email, &body.password).await?;
    Ok(Json(auth_response(&state, session)))
}

/// Log out
///
/// Revokes the session token used for this request at once. API keys are revoked with
/// `DELETE /v1/api-key/{id}` instead (400 here).
#[utoipa::path(post, path = "/auth/logout", tag = "Auth",
    responses((status = 204, description = "Session revoked"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    match caller.credential {
        Credential::Session { id, .. } => {
            service::logout(&state, id).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        Credential::ApiKey { .. } => Err(ApiError::BadRequest(
            "logout ends a login session; revoke an API key with DELETE /v1/api-key/{id}".into(),
        )),
    }
}

/// Confirm a password reset
///
/// Sets a new password with the token from the reset mail. The token works once and for one
/// hour; every session of the user is revoked.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "Auth", security(()),
    request_body = PasswordResetConfirmRequest,
    responses((status = 200, body = PasswordResetConfirmResponse),
        (status = 400, body = ErrorBody, description = "Invalid, used or expired token")))]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PasswordResetConfirmRequest>,
) -> Result<Json<PasswordResetConfirmResponse>, ApiError> {
    service::confirm_password_reset(&state, &body.token, &body.password).await?;
    Ok(Json(PasswordResetConfirmResponse { reset: true }))
}
