//! Trials of one organization.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sea_orm::prelude::*;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::load_org;
use crate::auth::PlatformAdmin;
use crate::billing::ledger::trial_used;
use crate::billing::trials::{self, TrialUpdate};
use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::features::trial::dto::{CreateTrialRequest, TrialDto, UpdateTrialRequest};
use crate::pagination::parse_date;
use crate::patch::Patch;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_trials, create_trial))
        .routes(routes!(update_trial, delete_trial))
}

/// List trials for an organization
#[utoipa::path(get, path = "/admin/organizations/{id}/trials", tag = "Admin",
    params(("id" = Uuid, Path, description = "Organization ID")),
    responses((status = 200, body = Vec<TrialDto>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_trials(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Vec<TrialDto>>, ApiError> {
    let org = load_org(&state.db, id).await?;
    let now = thesis_db::now();
    Ok(Json(
        trials::list_trials(&state.db, org.id)
            .await?
            .into_iter()
            .map(|(t, used)| TrialDto::new(t, used, now))
            .collect(),
    ))
}

/// Create a claimable trial for an organization
#[utoipa::path(post, path = "/admin/organizations/{id}/trials", tag = "Admin",
    params(("id" = Uuid, Path, description = "Organization ID")),
    request_body = CreateTrialRequest,
    responses((status = 201, body = TrialDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_trial(
    State(state): State<AppState>,
    PlatformAdmin(admin): PlatformAdmin,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateTrialRequest>,
) -> Result<(StatusCode, Json<TrialDto>), ApiError> {
    let org = load_org(&state.db, id).await?;
    let t = trials::create_trial(
        &state.db,
        org.id,
        admin.user.id,
        body.length_days as i32,
        body.max_usage_allowance_cents,
        body.claim_on_create,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(TrialDto::new(t, 0, thesis_db::now())),
    ))
}

fn date_patch(
    name: &str,
    p: Patch<String>,
    errors: &mut Vec<String>,
) -> Option<Option<chrono::DateTime<chrono::Utc>>> {
    match p {
        Patch::Absent => None,
        Patch::Null => Some(None),
        Patch::Value(s) => match parse_date(&s, false) {
            Some(t) => Some(Some(t)),
            None => {
                errors.push(format!(
                    "{name}: must be an ISO 8601 date or date-time, or null"
                ));
                None
            }
        },
    }
}

/// Update a trial
///
/// A new `lengthDays` moves the end of a claimed trial unless `periodEnd` is given.
#[utoipa::path(put, path = "/admin/organizations/{id}/trials/{trialId}", tag = "Admin",
    params(("id" = Uuid, Path, description = "Organization ID"), ("trialId" = Uuid, Path, description = "Trial ID")),
    request_body = UpdateTrialRequest,
    responses((status = 200, body = TrialDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_trial(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    ApiPath((id, trial_id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<UpdateTrialRequest>,
) -> Result<Json<TrialDto>, ApiError> {
    let mut errors = vec![];
    let period_start = date_patch("periodStart", body.period_start, &mut errors);
    let period_end = date_patch("periodEnd", body.period_end, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let org = load_org(&state.db, id).await?;
    let t = trials::update_trial(
        &state.db,
        org.id,
        trial_id,
        TrialUpdate {
            length_days: body.length_days.map(|d| d as i32),
            max_usage_allowance_cents: body.max_usage_allowance_cents,
            period_start,
            period_end,
        },
    )
    .await?;
    let used = trial_used(&state.db, t.id).await?;
    Ok(Json(TrialDto::new(t, used, thesis_db::now())))
}

/// Delete a trial
#[utoipa::path(delete, path = "/admin/organizations/{id}/trials/{trialId}", tag = "Admin",
    params(("id" = Uuid, Path, description = "Organization ID"), ("trialId" = Uuid, Path, description = "Trial ID")),
    responses((status = 200, body = TrialDto, description = "The deleted trial"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_trial(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    ApiPath((id, trial_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<TrialDto>, ApiError> {
    let org = load_org(&state.db, id).await?;
    let used = trial_used(&state.db, trial_id).await?;
    let t = trials::delete_trial(&state.db, org.id, trial_id).await?;
    Ok(Json(TrialDto::new(t, used, thesis_db::now())))
}
