//! Feedback from the app, with an optional screenshot.

pub mod dto;
pub mod handlers;
pub mod service;

use axum::extract::DefaultBodyLimit;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

/// Body limit of `POST /feedback`: a 10 MiB screenshot as base64 plus the rest.
pub const FEEDBACK_BODY_LIMIT: usize = 15 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create_feedback))
        .layer(DefaultBodyLimit::max(FEEDBACK_BODY_LIMIT))
}
