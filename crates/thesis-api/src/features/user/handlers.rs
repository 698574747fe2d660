use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use std::net::SocketAddr;

use super::dto::*;
use super::service;
use crate::auth::{self, Caller, Credential};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;

/// Get current user
#[utoipa::path(get, path = "/user", tag = "User",
    responses((status = 200, body = UserDto), (status = 401, body = ErrorBody)))]
pub async fn get_user(State(state): State<AppState>, caller: Caller) -> Json<UserDto> {
    let is_admin = state.is_platform_admin(&caller.user);
    Json(UserDto::new(caller.user, is_admin))
}

/// Get current user by session
///
/// The session token may be given as bearer token or as the `thesis_session` cookie. API keys
/// are refused (401): they have no session.
#[utoipa::path(get, path = "/user/by-session", tag = "User",
    responses((status = 200, body = UserBySessionDto), (status = 401, body = ErrorBody)))]
pub async fn get_user_by_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<UserBySessionDto>, ApiError> {
    let token = match auth::bearer_token(&headers)? {
        Some(t) => t,
        None => auth::session_cookie(&headers).ok_or_else(|| {
            ApiError::Unauthorized(
                "missing session token: send it as bearer token or `thesis_session` cookie".into(),
            )
        })?,
    };
    if !token.starts_with(auth::tokens::SESSION_PREFIX) {
        return Err(ApiError::Unauthorized(
            "this route needs a login session token, not an API key".into(),
        ));
    }
    let (user, credential) = auth::authenticate(&state, token).await?;
    let Credential::Session { id, expires_at } = credential else {
        return Err(ApiError::Unauthorized("not a session token".into()));
    };
    let is_admin = state.is_platform_admin(&user);
    Ok(Json(UserBySessionDto {
        user: UserDto::new(user, is_admin),
        session: SessionInfoDto { id, expires_at },
    }))
}

/// Request password reset email
///
/// Always answers `true`, whether or not the e-mail has an account; the mail is sent only when
/// it does. Rate-limited per e-mail address and per client address (429 with `Retry-After`).
#[utoipa::path(post, path = "/user/password-reset", tag = "User", security(()),
    request_body = PasswordResetRequest,
    responses((status = 200, body = bool, description = "Always returns true for security"),
        (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(body): ApiJson<PasswordResetRequest>,
) -> Result<Json<bool>, ApiError> {
    service::request_password_reset(&state, &body.email, &peer.ip().to_string()).await?;
    Ok(Json(true))
}
