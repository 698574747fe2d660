//! Operational routes outside `/v1`: liveness, readiness, metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct HealthDto {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness
///
/// The process is up; touches nothing else.
#[utoipa::path(get, path = "/healthz", tag = "System", security(()),
    responses((status = 200, body = HealthDto)))]
pub async fn healthz() -> Json<HealthDto> {
    Json(HealthDto { status: "ok" })
}

/// Readiness
///
/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "System", security(()),
    responses((status = 200, body = HealthDto), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<HealthDto>, ApiError> {
    match tokio::time::timeout(
        std::time::Duration::from_secs(5),
        thesis_db::ping(&state.db),
    )
    .await
    {
        Ok(Ok(())) => Ok(Json(HealthDto { status: "ok" })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            Err(ApiError::ServiceUnavailable(
                "the database is unreachable".into(),
            ))
        }
        Err(_) => Err(ApiError::ServiceUnavailable(
            "the database did not answer in 5 seconds".into(),
        )),
    }
}

/// Metrics
///
/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "System", security(()),
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::metrics_handle().render(),
    )
}
