use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;

use super::dto::*;
use super::service;
use crate::auth::{Caller, Member, OrgCtx};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use crate::state::AppState;

/// Invite to organization by email
///
/// Creates a pending membership and mails the invitee a link to accept it. Needs the admin
/// role; inviting an owner needs the owner role. An e-mail with a membership there already is 409.
#[utoipa::path(post, path = "/membership", tag = "Membership V0",
    request_body = InviteMemberRequest,
    responses((status = 201, body = MembershipDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn invite_member(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<InviteMemberRequest>,
) -> Result<(StatusCode, Json<MembershipDto>), ApiError> {
    let ctx = OrgCtx::<Member>::resolve(&state, caller, Some(body.organization_id)).await?;
    let created = service::invite_member(
        &state,
        &ctx.organization,
        &ctx.caller.user,
        ctx.role(),
        &body.email,
        body.role,
    )
    .await?;
    let (m, u) = service::membership_with_user(&state.db, created).await?;
    Ok((StatusCode::CREATED, Json(MembershipDto::new(m, u))))
}

/// List memberships with users
///
/// Memberships of the current organization, pending and active.
#[utoipa::path(get, path = "/membership", tag = "Membership V0",
    params(("x-organization-id" = Option<Uuid>, Header, description = "Organization to act in")),
    responses((status = 200, body = Vec<MembershipDto>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_memberships(
    State(state): State<AppState>,
    ctx: OrgCtx,
) -> Result<Json<Vec<MembershipDto>>, ApiError> {
    let rows = service::list_memberships(&state.db, ctx.org_id()).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(m, u)| MembershipDto::new(m, u))
            .collect(),
    ))
}

/// Delete membership
///
/// A member may delete their own membership; admins remove members and admins; only owners
/// remove owners. The last owner cannot be removed (409). A membership of another organization
/// is 404.
#[utoipa::path(delete, path = "/membership/{membershipId}", tag = "Membership V0",
    params(("membershipId" = Uuid, Path, description = "The ID of the membership to delete"),
        ("x-organization-id" = Option<Uuid>, Header, description = "Organization to act in")),
    responses((status = 200, body = MembershipDto, description = "The deleted membership"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_membership(
    State(state): State<AppState>,
    ctx: OrgCtx,
    ApiPath(membership_id): ApiPath<Uuid>,
) -> Result<Json<MembershipDto>, ApiError> {
    let (m, u) =
        service::remove_membership(&state, ctx.org_id(), &ctx.caller.user, membership_id).await?;
    Ok(Json(MembershipDto::new(m, u)))
}

/// Accept organization invite via email link
///
/// The `token` from the invitation mail is the credential; without a valid one nothing
/// changes (400).
#[utoipa::path(get, path = "/public/organization-member/{membershipId}/accept-invite-via-email",
    tag = "Public V0", security(()),
    params(("membershipId" = Uuid, Path, description = "The membership ID from the invite email"),
        AcceptInviteQuery),
    responses((status = 200, body = AcceptInviteResponse), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn accept_invite(
    State(state): State<AppState>,
    ApiPath(membership_id): ApiPath<Uuid>,
    ApiQuery(query): ApiQuery<AcceptInviteQuery>,
) -> Result<Json<AcceptInviteResponse>, ApiError> {
    let m = service::accept_invite(&state, membership_id, query.token.as_deref()).await?;
    Ok(Json(AcceptInviteResponse {
        accepted: true,
        organization_id: m.organization_id,
        membership_id: m.id,
    }))
}
