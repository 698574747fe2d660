//! Billing of the current organization: summary, usage history, plan changes, portal, usage
//! limit, rate-limit status.

pub mod dto;
pub mod handlers;
pub mod service;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::get_billing))
        .routes(routes!(handlers::usage_history))
        .routes(routes!(handlers::storage_usage_history))
        .routes(routes!(handlers::compute_usage_history))
        .routes(routes!(handlers::checkout))
        .routes(routes!(handlers::portal))
        .routes(routes!(handlers::set_usage_limit))
        .routes(routes!(handlers::rate_limit))
}
