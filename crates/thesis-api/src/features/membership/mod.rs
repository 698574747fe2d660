//! Memberships: invitations by e-mail, the member list, removal with the last-owner rule.

pub mod dto;
pub mod handlers;
pub mod service;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::invite_member, handlers::list_memberships))
        .routes(routes!(handlers::delete_membership))
        .routes(routes!(handlers::accept_invite))
}
