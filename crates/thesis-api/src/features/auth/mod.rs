//! Extension routes to obtain and end sessions: sign-up, login, logout, password-reset confirm.

pub mod dto;
pub mod handlers;
pub mod service;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::signup))
        .routes(routes!(handlers::login))
        .routes(routes!(handlers::logout))
        .routes(routes!(handlers::confirm_password_reset))
}
