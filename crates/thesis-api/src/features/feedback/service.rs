use base64::Engine;
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use thesis_db::entities::feedback;

use super::dto::{CreateFeedbackRequest, FeedbackDto};
use crate::error::ApiError;

/// Largest decoded screenshot kept.
pub const MAX_SCREENSHOT_BYTES: usize = 10 * 1024 * 1024;
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/webp", "image/gif"];

/// Decodes an image data URL (`data:image/png;base64,...`): its media type and bytes.
pub fn decode_screenshot(data_url: &str) -> Result<(String, Vec<u8>), ApiError> {
    let bad = |why: &str| ApiError::Validation(vec![format!("metadata.screenshot: {why}")]);
    let rest = data_url
        .strip_prefix("data:")
        .ok_or_else(|| bad("must be a data URL like data:image/png;base64,..."))?;
    let (header, data) = rest
        .split_once(',')
        .ok_or_else(|| bad("must be a data URL like data:image/png;base64,..."))?;
    let media = header
        .strip_suffix(";base64")
        .ok_or_else(|| bad("must be base64-encoded (data:image/png;base64,...)"))?
        .to_ascii_lowercase();
    if !IMAGE_TYPES.contains(&media.as_str()) {
        return Err(bad("must be a PNG, JPEG, WebP or GIF image"));
    }
    // base64 grows data by 4/3: refuse before decoding what cannot fit
    if data.len() > MAX_SCREENSHOT_BYTES / 3 * 4 + 4 {
        return Err(ApiError::PayloadTooLarge(format!(
            "metadata.screenshot is larger than {} MiB",
            MAX_SCREENSHOT_BYTES / (1024 * 1024)
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| bad("is not valid base64"))?;
    if bytes.len() > MAX_SCREENSHOT_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "metadata.screenshot is larger than {} MiB",
            MAX_SCREENSHOT_BYTES / (1024 * 1024)
        )));
    }
    Ok((media, bytes))
}

/// Stores feedback: the metadata as sent, the screenshot decoded beside it.
pub async fn create_feedback<C: ConnectionTrait>(
    db: &C,
    user_id: Option<Uuid>,
    req: CreateFeedbackRequest,
) -> Result<FeedbackDto, ApiError> {
    let mut metadata = req.metadata;
    let screenshot = match metadata.as_mut().and_then(|m| m.remove("screenshot")) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(decode_screenshot(&s)?),
        Some(_) => {
            return Err(ApiError::Validation(vec![
                "metadata.screenshot: must be a string (an image data URL)".into(),
            ]));
        }
    };
    let metadata = metadata.map(serde_json::Value::Object);
    let (content_type, bytes) = match screenshot {
        Some((t, b)) => (Some(t), Some(b)),
        None => (None, None),
    };
    let size = bytes.as_ref().map(|b| b.len() as u64);
    let model = feedback::ActiveModel {
        id: Set(thesis_db::new_id()),
        user_id: Set(user_id),
        name: Set(req.name.trim().to_string()),
        email: Set(req.email.trim().to_string()),
        feedback_type: Set(req.feedback_type),
        message: Set(req.message),
        metadata: Set(metadata),
        screenshot_content_type: Set(content_type),
        screenshot: Set(bytes),
        created_at: Set(thesis_db::now()),
    }
    .insert(db)
    .await?;
    Ok(FeedbackDto {
        id: model.id,
        user_id: model.user_id,
        name: model.name,
        email: model.email,
        feedback_type: model.feedback_type,
        message: model.message,
        metadata: model.metadata,
        screenshot_content_type: model.screenshot_content_type,
        screenshot_bytes: size,
        created_at: model.created_at,
    })
}
