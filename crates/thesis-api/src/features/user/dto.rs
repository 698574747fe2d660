use chrono::{DateTime, Utc};
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::rules;

/// A user account.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserDto {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    /// Platform administrator (not an organization role).
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl UserDto {
    pub fn new(user: thesis_db::entities::user::Model, is_admin: bool) -> Self {
        UserDto {
            id: user.id,
            email: user.email,
            name: user.name,
            is_admin,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

/// The login session behind a session token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfoDto {
    pub id: Uuid,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserBySessionDto {
    pub user: UserDto,
    pub session: SessionInfoDto,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordResetRequest {
    /// The e-mail to send the password reset link to.
    #[garde(custom(rules::email))]
    #[schema(format = Email, example = "user@example.com")]
    pub email: String,
}
