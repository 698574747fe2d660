use chrono::{DateTime, Utc};
use garde::Validate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::rules;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateApiKeyRequest {
    #[garde(length(chars, max = 100), custom(rules::not_blank))]
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// The organization requests with this key act in by default; the caller must belong to it.
    #[garde(skip)]
    pub organization_id: Option<Uuid>,
}

/// An API key. `key` is present only in the answer to its creation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyDto {
    pub id: Uuid,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub organization_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKeyDto {
    pub fn new(m: thesis_db::entities::api_key::Model, key: Option<String>) -> Self {
        ApiKeyDto {
            id: m.id,
            name: m.name,
            key,
            prefix: m.prefix,
            organization_id: m.organization_id,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
        }
    }
}
