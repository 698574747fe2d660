//! Logs, request ids, metrics, and the last word on error responses.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::error::{InternalCause, error_response};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Installs the global log subscriber (text or JSON lines). Safe to call more than once.
pub fn init_logging(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("THESIS_LOG `{filter}` is not a valid filter ({e}); using `info`");
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> PrometheusHandle {
    METRICS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0,
                ])
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // another recorder may already be installed (tests embedding the app); then the
            // exporter simply stays empty for this one
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// How often the recorder's histogram samples are folded into their buckets. The recorder keeps
/// every sample until then: without this, an instance whose `/metrics` nobody scrapes would
/// grow by each request's sample for as long as it runs.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// Folds histogram samples into their buckets every [`METRICS_UPKEEP`] until shutdown.
pub fn spawn_metrics_upkeep(state: &crate::state::AppState) {
    let (handle, mut ticks) = (metrics_handle(), state.ticks(METRICS_UPKEEP));
    state.background.spawn(async move {
        while ticks.next().await {
            handle.run_upkeep();
        }
    });
}

/// Records `http_requests_total` and `http_request_duration_seconds` by route template.
pub async fn track_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}

/// Logs the cause of every 500 with its request id and answers with only "internal error" and the
/// request id.
pub async fn finish_errors(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut response = next.run(req).await;
    if response.status() == StatusCode::INTERNAL_SERVER_ERROR {
        let cause = response
            .extensions_mut()
            .remove::<InternalCause>()
            .map(|c| c.0)
            .unwrap_or_else(|| "unknown (a 500 without a recorded cause)".into());
        tracing::error!(request_id = %request_id, method = %method, path = %path, cause = %cause, "internal error");
        let message = format!("internal error (request id {request_id})");
        let mut fresh = if path.starts_with("/v1/responses") {
            // the OpenAI-compatible surface keeps OpenAI's error shape
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}})),
            )
                .into_response()
        } else {
            error_response(StatusCode::INTERNAL_SERVER_ERROR, message.into())
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            fresh.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
        response = fresh;
    }
    response
}

/// A panic in a handler becomes a 500 whose cause is logged, never a dropped connection.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = if let Some(s) = err.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = err.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "unknown panic".to_string()
    };
    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response
        .extensions_mut()
        .insert(InternalCause(format!("panic: {detail}")));
    response
}
