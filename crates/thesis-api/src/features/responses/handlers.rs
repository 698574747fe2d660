use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sea_orm::prelude::*;
use serde::Serialize;
use serde_json::Value;
use thesis_db::entities::{MembershipStatus, membership, response};
use utoipa::ToSchema;

use super::error::{OpenAiError, OpenAiErrorBody};
use super::gateway::{self, GatewayError};
use crate::auth::Caller;
use crate::error::ApiPath;
use crate::state::AppState;

/// The request body (OpenAI Responses API, plus `sessionId` and `organizationId`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateResponseRequest {
    /// A model name of this server (`thesis-echo` is always there).
    model: String,
    instructions: Option<String>,
    /// A string, or a list of input items (messages, function calls and their outputs).
    #[schema(value_type = Object)]
    input: Value,
    /// Function tools: `{"type": "function", "name", "description", "parameters", "strict"}`.
    #[schema(value_type = Option<Vec<Object>>)]
    tools: Option<Vec<Value>>,
    /// `auto`, `none`, `required` or `{"type": "function", "name": ...}`.
    #[schema(value_type = Option<Object>)]
    tool_choice: Option<Value>,
    #[schema(minimum = 0, maximum = 2)]
    temperature: Option<f64>,
    #[schema(minimum = 0, maximum = 1)]
    top_p: Option<f64>,
    #[schema(minimum = 1)]
    max_output_tokens: Option<u64>,
    /// `auto` drops the oldest context to fit the model's window; `disabled` (default) sends all.
    truncation: Option<String>,
    stream: Option<bool>,
    /// `{"effort": "low" | "medium" | "high", "summary": ...}`
    #[schema(value_type = Option<Object>)]
    reasoning: Option<Value>,
    include: Option<Vec<String>>,
    /// Up to 16 string values.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// Continue this stored response's conversation.
    previous_response_id: Option<String>,
    /// Keep the response for `GET /v1/responses/{id}` and `previous_response_id` (default true).
    store: Option<bool>,
    /// Continue this session: its turns are the context, and this exchange is appended.
    #[schema(rename = "sessionId")]
    session_id: Option<String>,
    /// The organization to act in (billing, limits).
    #[schema(rename = "organizationId")]
    organization_id: Option<String>,
}

/// Create a response
///
/// OpenAI Responses API compatible endpoint. Supports both streaming (server-sent events in
/// OpenAI's order) and non-streaming responses. Every response is metered once; usage limits
/// are checked first (429 on the free plan's daily limit, 402 on a payAsYouGo usage limit).
/// Errors are OpenAI-shaped.
#[utoipa::path(post, path = "/responses", tag = "Responses V0",
    request_body = CreateResponseRequest,
    responses(
        (status = 200, description = "The response object, or with `stream: true` an event stream", content_type = "application/json", body = Object),
        (status = 400, body = OpenAiErrorBody), (status = 401, body = OpenAiErrorBody),
        (status = 402, body = OpenAiErrorBody), (status = 403, body = OpenAiErrorBody),
        (status = 404, body = OpenAiErrorBody), (status = 413, body = OpenAiErrorBody),
        (status = 415, body = OpenAiErrorBody), (status = 429, body = OpenAiErrorBody),
        (status = 502, body = OpenAiErrorBody, description = "The upstream failed"),
        (status = 503, body = OpenAiErrorBody, description = "This instance is at its limit of responses in flight (`Retry-After`)"),
        (status = 504, body = OpenAiErrorBody, description = "The upstream did not answer in time")))]
pub async fn create_response(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, GatewayError> {
    // past the instance's limit a response is refused before any work: an overload then costs
    // bounded memory, and the client (or its load balancer) retries elsewhere or later
    let Ok(in_flight) = state.responses_in_flight.clone().try_acquire_owned() else {
        metrics::counter!("responses_refused_overloaded_total").increment(1);
        let mut refused = OpenAiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            format!(
                "this server is working on its limit of {} responses at once; retry shortly",
                state.settings.file.gateway.max_responses_in_flight
            ),
        )
        .with_code("server_overloaded")
        .into_response();
        refused
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return Ok(refused);
    };
    // the token is checked with the organization, in one round trip, once the body has named
    // it; a request refused before that still answers 401 first for a missing or bad token
    let value = match read_body(&state, request).await {
        Ok(value) => value,
        Err(e) => return Err(gateway::unauthorized_first(&state, &headers, e).await),
    };
    let prepared = gateway::prepare(&state, &headers, &value).await?;
    let upstream = gateway::open_upstream(&state, &prepared).await?;
    if prepared.stream {
        Ok(gateway::respond_streaming(
            &state, prepared, upstream, in_flight,
        ))
    } else {
        // `in_flight` is held until this returns
        gateway::respond_whole(&state, prepared, upstream).await
    }
}

/// The JSON body (415 for another content type, 413 when too large, 400 when malformed).
async fn read_body(state: &AppState, request: Request) -> Result<Value, GatewayError> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    if !is_json {
        return Err(OpenAiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            "expected a JSON body with `Content-Type: application/json`",
        )
        .into());
    }
    let body = Bytes::from_request(request, state)
        .await
        .map_err(crate::error::bytes_rejection)?;
    Ok(serde_json::from_slice(&body).map_err(|e| {
        OpenAiError::invalid(
            format!("We could not parse the JSON body of your request: {e}"),
            None,
        )
    })?)
}

/// A stored response of one of the caller's organizations.
async fn find_stored(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<response::Model, GatewayError> {
    let orgs: Vec<Uuid> = membership::Entity::find()
        .filter(membership::Column::UserId.eq(caller.user.id))
        .filter(membership::Column::Status.eq(MembershipStatus::Active))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|m| m.organization_id)
        .collect();
    for org in &orgs {
        state.recordings.settled(*org).await;
    }
    gateway::find_response(state, id, &orgs)
        .await?
        .ok_or_else(|| {
            OpenAiError::not_found(
                format!("No response found with id '{id}'."),
                Some("response_id"),
                "response_not_found",
            )
            .into()
        })
}

/// Retrieve a stored response
#[utoipa::path(get, path = "/responses/{id}", tag = "Responses V0",
    params(("id" = String, Path, description = "Response id")),
    responses((status = 200, description = "The response object", body = Object),
        (status = 401, body = OpenAiErrorBody), (status = 404, body = OpenAiErrorBody)))]
pub async fn get_response(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, GatewayError> {
    Ok(Json(find_stored(&state, &caller, &id).await?.response))
}

#[derive(Serialize, ToSchema)]
pub struct DeletedResponse {
    id: String,
    object: &'static str,
    deleted: bool,
}

/// Delete a stored response
#[utoipa::path(delete, path = "/responses/{id}", tag = "Responses V0",
    params(("id" = String, Path, description = "Response id")),
    responses((status = 200, body = DeletedResponse), (status = 401, body = OpenAiErrorBody),
        (status = 404, body = OpenAiErrorBody)))]
pub async fn delete_response(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeletedResponse>, GatewayError> {
    let stored = find_stored(&state, &caller, &id).await?;
    response::Entity::delete_by_id(stored.id.clone())
        .exec(&state.db)
        .await?;
    Ok(Json(DeletedResponse {
        id: stored.id,
        object: "response",
        deleted: true,
    }))
}
