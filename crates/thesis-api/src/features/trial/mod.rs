//! The organization's trial: its state, and claiming it.

pub mod dto;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sea_orm::prelude::*;
use utoipa_axum::{router::OpenApiRouter, routes};

use self::dto::{TrialDto, TrialStateDto};
use crate::auth::Admin;
use crate::billing::recordings::Settled;
use crate::billing::trials::{self, TrialStatus};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(claim_trial))
        .routes(routes!(get_trial))
}

/// The trial state of an organization.
pub async fn trial_state<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
) -> Result<TrialStateDto, ApiError> {
    let now = thesis_db::now();
    let all: Vec<TrialDto> = trials::list_trials(conn, org_id)
        .await?
        .into_iter()
        .map(|(t, used)| TrialDto::new(t, used, now))
        .collect();
    let claimable = all.iter().any(|t| t.status == TrialStatus::Unclaimed);
    let current = all
        .iter()
        .position(|t| matches!(t.status, TrialStatus::Active | TrialStatus::Exhausted))
        .or_else(|| {
            all.iter()
                .enumerate()
                .filter(|(_, t)| t.claimed_at.is_some())
                .max_by_key(|(_, t)| t.claimed_at)
                .map(|(i, _)| i)
        })
        .or_else(|| all.iter().position(|t| t.status == TrialStatus::Unclaimed));
    let active = current.is_some_and(|i| all[i].status == TrialStatus::Active);
    let trial = current.and_then(|i| all.into_iter().nth(i));
    Ok(TrialStateDto {
        active,
        claimable,
        trial,
    })
}

/// Claim free trial for organization
///
/// Activates the organization's oldest unclaimed trial. Needs the admin role. No trial to
/// claim is 404; a trial already active is 409.
#[utoipa::path(post, path = "/organization/claim-trial", tag = "Organization V0",
    responses((status = 201, body = TrialDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn claim_trial(
    State(state): State<AppState>,
    Settled(ctx): Settled<Admin>,
) -> Result<(StatusCode, Json<TrialDto>), ApiError> {
    let t = trials::claim_trial(&state.db, ctx.org_id()).await?;
    Ok((
        StatusCode::CREATED,
        Json(TrialDto::new(t, 0, thesis_db::now())),
    ))
}

/// Get trial status for organization
#[utoipa::path(get, path = "/organization/trial", tag = "Organization V0",
    responses((status = 200, body = TrialStateDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_trial(
    State(state): State<AppState>,
    Settled(ctx): Settled,
) -> Result<Json<TrialStateDto>, ApiError> {
    Ok(Json(trial_state(&state.db, ctx.org_id()).await?))
}
