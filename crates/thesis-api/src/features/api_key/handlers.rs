use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;

use super::dto::*;
use super::service;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::state::AppState;

/// Create an API key
///
/// The key is in this answer only; it is stored as a hash.
#[utoipa::path(post, path = "/api-key", tag = "Auth", request_body = CreateApiKeyRequest,
    responses((status = 201, body = ApiKeyDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<ApiKeyDto>), ApiError> {
    let (model, key) =
        service::create_api_key(&state.db, caller.user.id, &body.name, body.organization_id)
            .await?;
    Ok((StatusCode::CREATED, Json(ApiKeyDto::new(model, Some(key)))))
}

/// List your API keys
#[utoipa::path(get, path = "/api-key", tag = "Auth",
    responses((status = 200, body = Vec<ApiKeyDto>), (status = 401, body = ErrorBody)))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ApiKeyDto>>, ApiError> {
    let keys = service::list_api_keys(&state.db, caller.user.id).await?;
    Ok(Json(
        keys.into_iter().map(|k| ApiKeyDto::new(k, None)).collect(),
    ))
}

/// Revoke an API key
#[utoipa::path(delete, path = "/api-key/{id}", tag = "Auth",
    params(("id" = Uuid, Path, description = "API key id")),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    service::revoke_api_key(&state.db, caller.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
