use chrono::{DateTime, Utc};
use garde::Validate;
use serde::{Deserialize, Serialize};
use thesis_db::entities::{MembershipStatus, Role, membership, user};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::rules;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteMemberRequest {
    #[garde(skip)]
    pub organization_id: Uuid,
    #[garde(custom(rules::email))]
    #[schema(format = Email)]
    pub email: String,
    /// Only an owner may invite an owner.
    #[garde(skip)]
    pub role: Role,
}

/// The user behind a membership.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberUserDto {
    pub id: Uuid,
    pub email: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MembershipDto {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Option<Uuid>,
    pub email: String,
    pub role: Role,
    pub status: MembershipStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Null until the invitee has accepted and has an account.
    pub user: Option<MemberUserDto>,
}

impl MembershipDto {
    pub fn new(m: membership::Model, user: Option<user::Model>) -> Self {
        MembershipDto {
            id: m.id,
            organization_id: m.organization_id,
            user_id: m.user_id,
            email: m.email,
            role: m.role,
            status: m.status,
            created_at: m.created_at,
            updated_at: m.updated_at,
            user: user.map(|u| MemberUserDto {
                id: u.id,
                email: u.email,
                name: u.name,
            }),
        }
    }
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AcceptInviteQuery {
    /// The token from the invitation mail.
    #[garde(skip)]
    pub token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcceptInviteResponse {
    pub accepted: bool,
    pub organization_id: Uuid,
    pub membership_id: Uuid,
}
