//! HTTP features, one folder per tag of the reference.

pub mod admin;
pub mod api_key;
pub mod auth;
pub mod billing;
pub mod feedback;
pub mod membership;
pub mod newsletter;
pub mod organization;
pub mod responses;
pub mod session;
pub mod stripe_webhook;
pub mod stubs;
pub mod system;
pub mod trial;
pub mod usage;
pub mod user;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Every `/v1` route (paths relative to `/v1`).
pub fn v1_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(api_key::router())
        .merge(user::router())
        .merge(organization::router())
        .merge(membership::router())
        .merge(billing::router())
        .merge(trial::router())
        .merge(usage::router())
        .merge(responses::router())
        .merge(session::router())
        .merge(stripe_webhook::router())
        .merge(admin::router())
        .merge(feedback::router())
        .merge(newsletter::router())
        .merge(stubs::router())
}
