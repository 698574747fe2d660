use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::dto::*;
use super::service;
use crate::auth::OptionalCaller;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;

/// Submit feedback
///
/// No token needed; with one, the feedback is attached to the user. A screenshot data URL of up
/// to 10 MiB in `metadata.screenshot` is kept.
#[utoipa::path(post, path = "/feedback", tag = "Feedback V0", security((), ("bearer" = [])),
    request_body = CreateFeedbackRequest,
    responses((status = 201, body = FeedbackDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn create_feedback(
    State(state): State<AppState>,
    OptionalCaller(caller): OptionalCaller,
    ApiJson(body): ApiJson<CreateFeedbackRequest>,
) -> Result<(StatusCode, Json<FeedbackDto>), ApiError> {
    let dto = service::create_feedback(&state.db, caller.map(|c| c.user.id), body).await?;
    Ok((StatusCode::CREATED, Json(dto)))
}
