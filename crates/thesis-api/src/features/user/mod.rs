//! The current user and password-reset requests.

pub mod dto;
pub mod handlers;
pub mod service;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::get_user))
        .routes(routes!(handlers::get_user_by_session))
        .routes(routes!(handlers::request_password_reset))
}
