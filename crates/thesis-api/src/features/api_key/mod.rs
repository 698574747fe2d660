//! API keys: long-lived bearer tokens, optionally bound to an organization.

pub mod dto;
pub mod handlers;
pub mod service;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create_api_key, handlers::list_api_keys))
        .routes(routes!(handlers::revoke_api_key))
}
