//! The admin surface (platform administrators only).

pub mod billing;
pub mod cron;
pub mod trials;
pub mod usage;

use sea_orm::prelude::*;
use thesis_db::entities::organization;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(billing::router())
        .merge(trials::router())
        .merge(usage::router())
        .merge(cron::router())
}

/// An organization by id for the admin surface (deleted ones included); 404 when unknown.
pub async fn load_org<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<organization::Model, ApiError> {
    organization::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))
}
