//! A small typed client for the parts of the Stripe API we use, and webhook signature checks.
//!
//! Requests are form-encoded as Stripe documents (`line_items[0][price]=...`). Every mutating
//! request carries an `Idempotency-Key`, so the bounded retries on network errors, 429 and 5xx
//! can never act twice. The base URL is configurable so tests point it at a local double.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::Secret;

/// A Stripe API failure; never includes the secret key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Stripe {operation} failed{}: {message}", .status.map(|s| format!(" ({s})")).unwrap_or_default())]
pub struct StripeError {
    pub operation: &'static str,
    pub status: Option<u16>,
    pub message: String,
}

/// The subscription fields we keep.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub id: String,
    pub customer: String,
    pub status: String,
    pub cancel_at_period_end: bool,
    pub current_period_start: Option<DateTime<Utc>>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub organization_id: Option<String>,
}

fn ts(v: &Value) -> Option<DateTime<Utc>> {
    v.as_i64().and_then(|s| DateTime::from_timestamp(s, 0))
}

impl Subscription {
    /// Reads a subscription object. The period comes from its first item (current API
    /// versions), falling back to the top-level fields of older versions.
    pub fn from_json(v: &Value) -> Option<Subscription> {
        let item = &v["items"]["data"][0];
        let customer = match &v["customer"] {
            Value::String(s) => s.clone(),
            Value::Object(o) => o.get("id")?.as_str()?.to_string(),
            _ => return None,
        };
        Some(Subscription {
            id: v["id"].as_str()?.to_string(),
            customer,
            status: v["status"].as_str()?.to_string(),
            cancel_at_period_end: v["cancel_at_period_end"].as_bool().unwrap_or(false),
            current_period_start: ts(&item["current_period_start"])
                .or_else(|| ts(&v["current_period_start"])),
            current_period_end: ts(&item["current_period_end"])
                .or_else(|| ts(&v["current_period_end"])),
            organization_id: v["metadata"]["organization_id"]
                .as_str()
                .map(str::to_string),
        })
    }
}

pub struct CheckoutSession {
    pub id: String,
    pub url: String,
}

pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    key: Secret<String>,
}

const ATTEMPTS: u32 = 3;

impl StripeClient {
    pub fn new(base: &str, key: Secret<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("thesis-api/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds");
        StripeClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            key,
        }
    }

    async fn request(
        &self,
        operation: &'static str,
        method: reqwest::Method,
        path: &str,
        form: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Value, StripeError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 * 4u64.pow(attempt - 1))).await;
            }
            let mut req = self
                .http
                .request(method.clone(), format!("{}{}", self.base, path))
                .bearer_auth(self.key.expose());
            if let Some(key) = idempotency_key {
                req = req.header("Idempotency-Key", key);
            }
            if method != reqwest::Method::GET {
                req = req
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body.clone());
            }
            let response = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = Some(StripeError {
                        operation,
                        status: None,
                        message: format!("network error: {}", e.without_url()),
                    });
                    continue;
                }
            };
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if status.is_success() {
                return serde_json::from_str(&text).map_err(|e| StripeError {
                    operation,
                    status: Some(status.as_u16()),
                    message: format!("unreadable answer: {e}"),
                });
            }
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("HTTP {status}"));
            let error = StripeError {
                operation,
                status: Some(status.as_u16()),
                message,
            };
            // retry only what a retry can fix, and only when it cannot act twice
            let retryable = status.as_u16() == 429 || status.is_server_error();
            let safe = method == reqwest::Method::GET || idempotency_key.is_some();
            if !(retryable && safe) {
                return Err(error);
            }
            last = Some(error);
        }
        Err(last.expect("at least one attempt"))
    }

    pub async fn create_customer(
        &self,
        org_id: &str,
        name: &str,
        email: &str,
    ) -> Result<String, StripeError> {
        let form = vec![
            ("name".to_string(), name.to_string()),
            ("email".to_string(), email.to_string()),
            ("metadata[organization_id]".to_string(), org_id.to_string()),
        ];
        let v = self
            .request(
                "create customer",
                reqwest::Method::POST,
                "/v1/customers",
                &form,
                Some(&format!("customer-{org_id}")),
            )
            .await?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| StripeError {
                operation: "create customer",
                status: None,
                message: "the answer has no id".into(),
            })
    }

    pub async fn create_checkout_session(
        &self,
        customer: &str,
        org_id: &str,
        price: &str,
        success_url: &str,
        cancel_url: &str,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, StripeError> {
        let form = vec![
            ("mode".to_string(), "subscription".to_string()),
            ("customer".to_string(), customer.to_string()),
            ("client_reference_id".to_string(), org_id.to_string()),
            ("line_items[0][price]".to_string(), price.to_string()),
            ("success_url".to_string(), success_url.to_string()),
            ("cancel_url".to_string(), cancel_url.to_string()),
            (
                "subscription_data[metadata][organization_id]".to_string(),
                org_id.to_string(),
            ),
            ("metadata[organization_id]".to_string(), org_id.to_string()),
        ];
        let v = self
            .request(
                "create checkout session",
                reqwest::Method::POST,
                "/v1/checkout/sessions",
                &form,
                Some(idempotency_key),
            )
            .await?;
        match (v["id"].as_str(), v["url"].as_str()) {
            (Some(id), Some(url)) => Ok(CheckoutSession {
                id: id.to_string(),
                url: url.to_string(),
            }),
            _ => Err(StripeError {
                operation: "create checkout session",
                status: None,
                message: "the answer has no id or url".into(),
            }),
        }
    }

    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
    ) -> Result<String, StripeError> {
        let form = vec![
            ("customer".to_string(), customer.to_string()),
            ("return_url".to_string(), return_url.to_string()),
        ];
        let v = self
            .request(
                "create billing portal session",
                reqwest::Method::POST,
                "/v1/billing_portal/sessions",
                &form,
                None,
            )
            .await?;
        v["url"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| StripeError {
                operation: "create billing portal session",
                status: None,
                message: "the answer has no url".into(),
            })
    }

    fn subscription(operation: &'static str, v: Value) -> Result<Subscription, StripeError> {
        Subscription::from_json(&v).ok_or_else(|| StripeError {
            operation,
            status: None,
            message: "the answer is not a subscription".into(),
        })
    }

    pub async fn get_subscription(&self, id: &str) -> Result<Subscription, StripeError> {
        let v = self
            .request(
                "read subscription",
                reqwest::Method::GET,
                &format!("/v1/subscriptions/{id}"),
                &[],
                None,
            )
            .await?;
        Self::subscription("read subscription", v)
    }

    /// Cancels at the end of the period (`true`) or withdraws that (`false`).
    pub async fn set_cancel_at_period_end(
        &self,
        id: &str,
        cancel: bool,
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError> {
        let form = vec![("cancel_at_period_end".to_string(), cancel.to_string())];
        let v = self
            .request(
                "update subscription",
                reqwest::Method::POST,
                &format!("/v1/subscriptions/{id}"),
                &form,
                Some(idempotency_key),
            )
            .await?;
        Self::subscription("update subscription", v)
    }

    /// Cancels now; `invoice_now` bills the usage of the unfinished period at once.
    pub async fn cancel_now(
        &self,
        id: &str,
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError> {
        let form = vec![
            ("invoice_now".to_string(), "true".to_string()),
            ("prorate".to_string(), "false".to_string()),
        ];
        let v = self
            .request(
                "cancel subscription",
                reqwest::Method::DELETE,
                &format!("/v1/subscriptions/{id}"),
                &form,
                Some(idempotency_key),
            )
            .await?;
        Self::subscription("cancel subscription", v)
    }

    /// Ends the current period now, so Stripe invoices the usage so far at once.
    pub async fn reset_billing_cycle(
        &self,
        id: &str,
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError> {
        let form = vec![
            ("billing_cycle_anchor".to_string(), "now".to_string()),
            ("proration_behavior".to_string(), "none".to_string()),
        ];
        let v = self
            .request(
                "bill subscription now",
                reqwest::Method::POST,
                &format!("/v1/subscriptions/{id}"),
                &form,
                Some(idempotency_key),
            )
            .await?;
        Self::subscription("bill subscription now", v)
    }

    /// Reports usage as a meter event. Stripe keeps one event per `identifier`, so sending the
    /// same report again counts once.
    pub async fn create_meter_event(
        &self,
        event_name: &str,
        customer: &str,
        value: i64,
        identifier: &str,
        timestamp: DateTime<Utc>,
    ) -> Result<(), StripeError> {
        let form = vec![
            ("event_name".to_string(), event_name.to_string()),
            (
                "payload[stripe_customer_id]".to_string(),
                customer.to_string(),
            ),
            ("payload[value]".to_string(), value.to_string()),
            ("identifier".to_string(), identifier.to_string()),
            ("timestamp".to_string(), timestamp.timestamp().to_string()),
        ];
        self.request(
            "report usage",
            reqwest::Method::POST,
            "/v1/billing/meter_events",
            &form,
            Some(identifier),
        )
        .await
        .map(|_| ())
    }
}

/// Why a webhook signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the stripe-signature header is missing")]
    Missing,
    #[error("the stripe-signature header is malformed")]
    Malformed,
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
    #[error("no webhook secret is configured (THESIS_STRIPE_WEBHOOK_SECRET)")]
    NoSecret,
}

/// Tolerance between the signature timestamp and now, as Stripe's libraries use.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// Verifies `stripe-signature` as Stripe specifies: HMAC-SHA256 of `{t}.{raw body}` with each
/// configured secret, accepted if it equals any `v1` entry, with `t` no older than the tolerance.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secrets: &[Secret<String>],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = vec![];
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match k {
            "t" => timestamp = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => signatures.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {} // v0 and future schemes are ignored
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    // as Stripe's libraries: too old is refused (replay); a clock slightly ahead is not
    if now.timestamp() - t > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    for secret in secrets {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        let expected = mac.finalize().into_bytes();
        if signatures
            .iter()
            .any(|s| bool::from(s.as_slice().ct_eq(expected.as_slice())))
        {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn signatures() {
        let now = Utc::now();
        let t = now.timestamp();
        let body = br#"{"id":"evt_1"}"#;
        let secrets = vec![
            Secret::new("whsec_old".to_string()),
            Secret::new("whsec_new".to_string()),
        ];
        let good = format!("t={t},v1={}", sign("whsec_new", t, body));
        assert_eq!(verify_signature(Some(&good), body, &secrets, now), Ok(()));
        let two = format!(
            "t={t},v1={},v1={}",
            sign("other", t, body),
            sign("whsec_old", t, body)
        );
        assert_eq!(verify_signature(Some(&two), body, &secrets, now), Ok(()));
        assert_eq!(
            verify_signature(Some(&good), br#"{"id":"evt_2"}"#, &secrets, now),
            Err(SignatureError::Mismatch)
        );
        let stale = format!("t={},v1={}", t - 301, sign("whsec_new", t - 301, body));
        assert_eq!(
            verify_signature(Some(&stale), body, &secrets, now),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(None, body, &secrets, now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(Some("garbage"), body, &secrets, now),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(Some(&good), body, &[], now),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn subscription_period_comes_from_items() {
        let v = serde_json::json!({
            "id": "sub_1", "customer": "cus_1", "status": "active", "cancel_at_period_end": false,
            "items": {"data": [{"current_period_start": 1_700_000_000, "current_period_end": 1_702_592_000}]},
            "metadata": {"organization_id": "org"}
        });
        let s = Subscription::from_json(&v).unwrap();
        assert_eq!(s.current_period_end.unwrap().timestamp(), 1_702_592_000);
        assert_eq!(s.organization_id.as_deref(), Some("org"));
    }
}
