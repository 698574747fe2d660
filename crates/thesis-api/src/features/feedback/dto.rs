use chrono::{DateTime, Utc};
use garde::Validate;
use serde::{Deserialize, Serialize};
use thesis_db::entities::FeedbackType;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::rules;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateFeedbackRequest {
    /// The name of the person submitting feedback.
    #[garde(length(chars, max = 200), custom(rules::not_blank))]
    pub name: String,
    /// The email of the person submitting feedback.
    #[garde(custom(rules::email))]
    #[schema(format = Email)]
    pub email: String,
    #[garde(skip)]
    pub feedback_type: FeedbackType,
    /// The feedback message (minimum 10 characters).
    #[garde(length(chars, min = 10, max = 20000))]
    #[schema(min_length = 10, max_length = 20000)]
    pub message: String,
    /// Additional metadata. `screenshot` may be an image data URL
    /// (`data:image/png;base64,...`) of up to 10 MiB decoded.
    #[garde(skip)]
    #[schema(value_type = Option<FeedbackMetadata>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Known metadata fields; others are kept as sent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackMetadata {
    pub app_version: Option<String>,
    pub platform: Option<String>,
    pub user_agent: Option<String>,
    /// An image data URL.
    pub screenshot: Option<String>,
    pub screenshot_timestamp: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackDto {
    pub id: Uuid,
    /// The signed-in user who sent it, if a token was given.
    pub user_id: Option<Uuid>,
    pub name: String,
    pub email: String,
    pub feedback_type: FeedbackType,
    pub message: String,
    /// The metadata as sent, without the screenshot data.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Media type of the kept screenshot, if one was sent.
    pub screenshot_content_type: Option<String>,
    /// Size of the kept screenshot in bytes.
    pub screenshot_bytes: Option<u64>,
    pub created_at: DateTime<Utc>,
}
