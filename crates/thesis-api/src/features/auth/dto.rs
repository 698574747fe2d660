use chrono::{DateTime, Utc};
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::rules;
use crate::features::user::dto::UserDto;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignupRequest {
    #[garde(custom(rules::email))]
    #[schema(format = Email, example = "ada@example.com")]
    pub email: String,
    /// At least 8 characters.
    #[garde(length(chars, min = 8, max = 1024))]
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    #[garde(length(chars, max = 200), custom(rules::not_blank))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    #[garde(length(chars, min = 1, max = 254))]
    pub email: String,
    #[garde(length(chars, min = 1, max = 1024))]
    pub password: String,
}

/// A user with a new login session token (shown once).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthResponse {
    pub user: UserDto,
    /// Bearer token for `Authorization: Bearer TOKEN`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordResetConfirmRequest {
    /// The token from the password-reset mail.
    #[garde(length(chars, min = 1, max = 512))]
    pub token: String,
    /// The new password, at least 8 characters.
    #[garde(length(chars, min = 8, max = 1024))]
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordResetConfirmResponse {
    pub reset: bool,
}
