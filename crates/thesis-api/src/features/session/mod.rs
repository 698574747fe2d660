//! Chat sessions: a user's conversations in an organization, continued by `/v1/responses`
//! with `sessionId`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::QueryOrder;
use sea_orm::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thesis_db::entities::{chat_session, session_turn};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::OrgCtx;
use crate::error::{ApiError, ApiPath, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_session, list_sessions))
        .routes(routes!(reveal_session))
        .routes(routes!(check_session))
        .routes(routes!(delete_session))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionDto {
    pub id: String,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    /// The start of the first message.
    pub title: Option<String>,
    pub turn_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<chat_session::Model> for SessionDto {
    fn from(m: chat_session::Model) -> Self {
        SessionDto {
            id: m.id,
            organization_id: m.organization_id,
            user_id: m.user_id,
            title: m.title,
            turn_count: m.turn_count,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnDto {
    pub seq: i32,
    pub response_id: Option<String>,
    pub model: String,
    /// The input items of the turn (Responses form).
    #[schema(value_type = Vec<Object>)]
    pub input: Value,
    /// The output items of the turn (Responses form).
    #[schema(value_type = Vec<Object>)]
    pub output: Value,
    #[schema(value_type = Option<Object>)]
    pub usage: Option<Value>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevealedSessionDto {
    #[serde(flatten)]
    pub session: SessionDto,
    /// The whole transcript, oldest turn first.
    pub turns: Vec<TurnDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionExistsDto {
    pub exists: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CreateSessionQuery {
    /// The session ID to use for the session (1 to 128 letters, digits, `-`, `_`, `.`, `:`).
    pub session_id: Option<String>,
}

fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// The caller's session in the current organization; any other is 404.
async fn find(state: &AppState, ctx: &OrgCtx, id: &str) -> Result<chat_session::Model, ApiError> {
    chat_session::Entity::find_by_id(id)
        .filter(chat_session::Column::OrganizationId.eq(ctx.org_id()))
        .filter(chat_session::Column::UserId.eq(ctx.caller.user.id))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("session"))
}

/// Create a new session
///
/// With `sessionId`, idempotent for its owner: the existing session is returned (200). An id
/// another user holds is 409.
#[utoipa::path(post, path = "/session", tag = "Session", params(CreateSessionQuery),
    responses((status = 201, body = SessionDto), (status = 200, body = SessionDto, description = "Already existed"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_session(
    State(state): State<AppState>,
    ctx: OrgCtx,
    q: Result<axum::extract::Query<CreateSessionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    let axum::extract::Query(q) = q.map_err(|e| ApiError::Validation(vec![e.body_text()]))?;
    let id = match q.session_id {
        Some(id) if valid_id(&id) => id,
        Some(_) => {
            return Err(ApiError::Validation(vec![
                "sessionId: must be 1 to 128 letters, digits, `-`, `_`, `.` or `:`".into(),
            ]));
        }
        None => format!("sess_{}", Uuid::now_v7().simple()),
    };
    if let Some(existing) = chat_session::Entity::find_by_id(id.as_str())
        .one(&state.db)
        .await?
    {
        return if existing.organization_id == ctx.org_id() && existing.user_id == ctx.caller.user.id
        {
            Ok((StatusCode::OK, Json(existing.into())))
        } else {
            Err(ApiError::Conflict("this session id is taken".into()))
        };
    }
    let now = thesis_db::now();
    let created = chat_session::ActiveModel {
        id: Set(id.clone()),
        organization_id: Set(ctx.org_id()),
        user_id: Set(ctx.caller.user.id),
        title: Set(None),
        turn_count: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&state.db)
    .await;
    match created {
        Ok(m) => Ok((StatusCode::CREATED, Json(m.into()))),
        // created concurrently: answer as for an existing one
        Err(e) if thesis_db::is_unique_violation(&e) => {
            let existing = find(&state, &ctx, &id)
                .await
                .map_err(|_| ApiError::Conflict("this session id is taken".into()))?;
            Ok((StatusCode::OK, Json(existing.into())))
        }
        Err(e) => Err(e.into()),
    }
}

/// List all sessions for current user
///
/// The caller's sessions in the current organization, most recently used first.
#[utoipa::path(get, path = "/session", tag = "Session",
    responses((status = 200, body = Vec<SessionDto>), (status = 401, body = ErrorBody)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    ctx: OrgCtx,
) -> Result<Json<Vec<SessionDto>>, ApiError> {
    let rows = chat_session::Entity::find()
        .filter(chat_session::Column::OrganizationId.eq(ctx.org_id()))
        .filter(chat_session::Column::UserId.eq(ctx.caller.user.id))
        .order_by_desc(chat_session::Column::UpdatedAt)
        .order_by_desc(chat_session::Column::Id)
        .all(&state.db)
        .await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}

/// Reveal a session
///
/// The session with its full transcript of turns.
#[utoipa::path(get, path = "/session/reveal/{sessionId}", tag = "Session",
    params(("sessionId" = String, Path, description = "The ID of the session to reveal")),
    responses((status = 200, body = RevealedSessionDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn reveal_session(
    State(state): State<AppState>,
    ctx: OrgCtx,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RevealedSessionDto>, ApiError> {
    let session = find(&state, &ctx, &id).await?;
    let turns = session_turn::Entity::find()
        .filter(session_turn::Column::SessionId.eq(session.id.as_str()))
        .order_by_asc(session_turn::Column::Seq)
        .all(&state.db)
        .await?;
    Ok(Json(RevealedSessionDto {
        session: session.into(),
        turns: turns
            .into_iter()
            .map(|t| TurnDto {
                seq: t.seq,
                response_id: t.response_id,
                model: t.model,
                input: t.input,
                output: t.output,
                usage: t.usage,
                created_at: t.created_at,
            })
            .collect(),
    }))
}

/// Check if a session exists (for diagnostics)
///
/// Whether the caller has this session in the current organization.
#[utoipa::path(get, path = "/session/check/{sessionId}", tag = "Session",
    params(("sessionId" = String, Path, description = "The ID of the session to check")),
    responses((status = 200, body = SessionExistsDto), (status = 401, body = ErrorBody)))]
pub async fn check_session(
    State(state): State<AppState>,
    ctx: OrgCtx,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SessionExistsDto>, ApiError> {
    Ok(Json(SessionExistsDto {
        exists: find(&state, &ctx, &id).await.is_ok(),
    }))
}

/// Delete a session
///
/// Deletes the session and its transcript; answers with the deleted session.
#[utoipa::path(delete, path = "/session/{sessionId}", tag = "Session",
    params(("sessionId" = String, Path, description = "The ID of the session to delete")),
    responses((status = 200, body = SessionDto), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_session(
    State(state): State<AppState>,
    ctx: OrgCtx,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SessionDto>, ApiError> {
    let session = find(&state, &ctx, &id).await?;
    chat_session::Entity::delete_by_id(session.id.clone())
        .exec(&state.db)
        .await?;
    Ok(Json(session.into()))
}
