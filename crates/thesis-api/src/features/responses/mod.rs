//! `POST /v1/responses` (OpenAI Responses compatible) and stored responses.

pub mod error;
pub mod gateway;
pub mod handlers;

use axum::extract::DefaultBodyLimit;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

/// Request bodies of the gateway: long conversations with images.
pub const RESPONSES_BODY_LIMIT: usize = 32 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create_response))
        .routes(routes!(handlers::get_response, handlers::delete_response))
        .layer(DefaultBodyLimit::max(RESPONSES_BODY_LIMIT))
        .layer(axum::middleware::from_fn(error::openai_errors))
}
