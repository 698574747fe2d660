//! Newsletter subscriptions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use garde::Validate;
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use serde::{Deserialize, Serialize};
use thesis_db::entities::newsletter_subscriber;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiJson, ErrorBody, normalize_email, rules};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(subscribe))
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct SubscribeRequest {
    /// The subscriber's email address.
    #[garde(custom(rules::email))]
    #[schema(format = Email, example = "user@example.com")]
    pub email: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewsletterSubscriberDto {
    pub id: Uuid,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

impl From<newsletter_subscriber::Model> for NewsletterSubscriberDto {
    fn from(m: newsletter_subscriber::Model) -> Self {
        NewsletterSubscriberDto {
            id: m.id,
            email: m.email,
            created_at: m.created_at,
        }
    }
}

/// Subscribes an e-mail; the same e-mail in any letter case is 409.
pub async fn create_subscriber<C: ConnectionTrait>(
    db: &C,
    email: &str,
) -> Result<newsletter_subscriber::Model, ApiError> {
    let email = email.trim();
    newsletter_subscriber::ActiveModel {
        id: Set(thesis_db::new_id()),
        email: Set(email.to_string()),
        email_normalized: Set(normalize_email(email)),
        created_at: Set(thesis_db::now()),
    }
    .insert(db)
    .await
    .map_err(|e| {
        if thesis_db::is_unique_violation(&e) {
            ApiError::Conflict("this e-mail is already subscribed".into())
        } else {
            e.into()
        }
    })
}

/// Subscribe to newsletter
#[utoipa::path(post, path = "/newsletter-subscriber", tag = "Newsletter Subscriber V0",
    security(()), request_body = SubscribeRequest,
    responses((status = 201, body = NewsletterSubscriberDto), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Email already subscribed")))]
pub async fn subscribe(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SubscribeRequest>,
) -> Result<(StatusCode, Json<NewsletterSubscriberDto>), ApiError> {
    let created = create_subscriber(&state.db, &body.email).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}
