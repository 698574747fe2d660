use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::dto::*;
use super::service::{self, NewOrganization};
use crate::auth::{Caller, OrgCtx};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::state::AppState;

/// Create organization with free plan
///
/// The caller becomes its active owner.
#[utoipa::path(post, path = "/organization", tag = "Organization V0",
    request_body = CreateOrganizationRequest,
    responses((status = 201, body = OrganizationDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn create_organization(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateOrganizationRequest>,
) -> Result<(StatusCode, Json<OrganizationDto>), ApiError> {
    let org = service::create_organization(
        &state.db,
        &caller.user,
        NewOrganization {
            name: body.name,
            email: body.email,
            r#type: body.r#type,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(org.into())))
}

/// List organizations for user
///
/// The organizations the caller is an active member of, each with the caller's `role`.
#[utoipa::path(get, path = "/organization", tag = "Organization V0",
    responses((status = 200, body = Vec<OrganizationWithRoleDto>), (status = 401, body = ErrorBody)))]
pub async fn list_organizations(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<OrganizationWithRoleDto>>, ApiError> {
    let orgs = service::list_organizations(&state.db, caller.user.id).await?;
    Ok(Json(
        orgs.into_iter()
            .map(|(o, role)| OrganizationWithRoleDto {
                organization: o.into(),
                role,
            })
            .collect(),
    ))
}

/// Update the organization
///
/// Acts on the current organization. `optInShareData` and `usageLimitCents` need the admin
/// role; `usageAllowanceCents`, `pricePerSeatCents`, `priceForOrganizationCents` and
/// `machineQuota` are for platform administrators only (403, nothing changed).
#[utoipa::path(put, path = "/organization", tag = "Organization V0",
    request_body = UpdateOrganizationRequest,
    params(("x-organization-id" = Option<uuid::Uuid>, Header, description = "Organization to act in")),
    responses((status = 200, body = OrganizationDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_organization(
    State(state): State<AppState>,
    ctx: OrgCtx,
    ApiJson(body): ApiJson<UpdateOrganizationRequest>,
) -> Result<Json<OrganizationDto>, ApiError> {
    let role = ctx.role();
    let updated = service::update_organization(
        &state.db,
        ctx.organization,
        role,
        ctx.caller.is_platform_admin,
        body,
    )
    .await?;
    Ok(Json(updated.into()))
}
