//! `POST /stripe/webhook`: verified, stored by event id, processed once.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use chrono::DateTime;
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use serde::Serialize;
use thesis_db::entities::stripe_event;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::billing::stripe_sync;
use crate::error::{ApiError, ErrorBody};
use crate::integrations::stripe::{SignatureError, verify_signature};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stripe_webhook))
}

#[derive(Serialize, ToSchema)]
pub struct WebhookAck {
    pub received: bool,
}

/// Handle Stripe webhook events
///
/// The `stripe-signature` header is verified as Stripe specifies (HMAC-SHA256 over
/// `{t}.{raw body}` with any configured secret, any matching `v1`, 300 s tolerance); a bad,
/// missing or stale signature is 400 and changes nothing. An event id already processed is
/// acknowledged and not processed again. Subscription state is re-read from Stripe, so late or
/// reordered deliveries leave the latest state.
#[utoipa::path(post, path = "/stripe/webhook", tag = "Stripe Webhook", security(()),
    params(("stripe-signature" = String, Header, description = "Stripe's signature of the body")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 201, body = WebhookAck), (status = 400, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "No webhook secret configured, or Stripe unreachable; Stripe retries")))]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<WebhookAck>), ApiError> {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    match verify_signature(
        signature,
        &body,
        &state.settings.stripe_webhook_secrets,
        chrono::Utc::now(),
    ) {
        Ok(()) => {}
        Err(SignatureError::NoSecret) => {
            return Err(ApiError::ServiceUnavailable(
                "no webhook secret is configured (THESIS_STRIPE_WEBHOOK_SECRET); the event is refused so Stripe retries it"
                    .into(),
            ));
        }
        Err(e) => {
            return Err(ApiError::BadRequest(format!(
                "invalid Stripe signature: {e}"
            )));
        }
    }
    let event: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the event is not JSON: {e}")))?;
    let (Some(id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
        return Err(ApiError::BadRequest("the event has no id or type".into()));
    };
    let ack = (StatusCode::CREATED, Json(WebhookAck { received: true }));
    if stripe_event::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .is_some()
    {
        tracing::info!(event = id, kind, "duplicate Stripe event acknowledged");
        return Ok(ack);
    }
    if let Err(e) = stripe_sync::process_event(&state, &event).await {
        tracing::warn!(event = id, kind, error = %e, "Stripe event not processed; Stripe will retry");
        return Err(ApiError::ServiceUnavailable(format!(
            "the event could not be processed now ({e}); it will be retried"
        )));
    }
    let now = thesis_db::now();
    let created = event["created"]
        .as_i64()
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .unwrap_or(now);
    let row = stripe_event::ActiveModel {
        id: Set(id.to_string()),
        r#type: Set(kind.to_string()),
        created: Set(created),
        payload: Set(event.clone()),
        received_at: Set(now),
        processed_at: Set(Some(now)),
    };
    match row.insert(&state.db).await {
        Ok(_) => {}
        // a concurrent delivery of the same event got there first; applying twice is harmless
        Err(e) if thesis_db::is_unique_violation(&e) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(event = id, kind, "Stripe event processed");
    Ok(ack)
}
