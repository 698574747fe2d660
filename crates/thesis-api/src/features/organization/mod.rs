//! Organizations: create, list mine, update the current one.

pub mod dto;
pub mod handlers;
pub mod service;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(
        handlers::create_organization,
        handlers::list_organizations,
        handlers::update_organization
    ))
}
