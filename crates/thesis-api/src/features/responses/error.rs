//! OpenAI-shaped errors for `/v1/responses`: `{"error": {"message", "type", "param", "code"}}`.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, InternalCause};

#[derive(Debug)]
pub struct OpenAiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OpenAiErrorBody {
    pub error: OpenAiErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct OpenAiErrorDetail {
    pub message: String,
    pub r#type: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl OpenAiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        OpenAiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
        }
    }

    pub fn invalid(message: impl Into<String>, param: Option<String>) -> Self {
        OpenAiError {
            param,
            ..OpenAiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
        }
    }

    pub fn not_found(message: impl Into<String>, param: Option<&str>, code: &str) -> Self {
        OpenAiError {
            param: param.map(str::to_string),
            code: Some(code.to_string()),
            ..OpenAiError::new(StatusCode::NOT_FOUND, "invalid_request_error", message)
        }
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_string());
        self
    }

    fn kind_for(status: StatusCode) -> (&'static str, Option<&'static str>) {
        match status.as_u16() {
            400 | 404 | 409 | 413 | 415 => ("invalid_request_error", None),
            401 => ("invalid_request_error", Some("invalid_api_key")),
            402 => ("insufficient_quota", Some("usage_limit_reached")),
            403 => ("permission_error", None),
            429 => ("rate_limit_error", Some("rate_limit_exceeded")),
            _ => ("server_error", None),
        }
    }
}

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        let status = e.status();
        let (kind, code) = Self::kind_for(status);
        let message = match &e {
            ApiError::Validation(m) => m.join("; "),
            ApiError::Internal(_) => "internal error".into(),
            other => other.to_string(),
        };
        OpenAiError {
            status,
            message,
            kind,
            param: None,
            code: code.map(str::to_string),
        }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let body = OpenAiErrorBody {
            error: OpenAiErrorDetail {
                message: self.message,
                r#type: self.kind.to_string(),
                param: self.param,
                code: self.code,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// Rewrites the server's JSON errors (`{"statusCode","error","message"}`, from extractors and
/// shared code) into OpenAI's shape on these routes, keeping status and headers (`Retry-After`,
/// the marker of a 500's cause).
pub async fn openai_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.status().is_success() {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    if value.get("statusCode").is_none() {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let message = match &value["message"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    };
    let (kind, code) = OpenAiError::kind_for(parts.status);
    let body = serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    let mut rewritten = Response::from_parts(parts, Body::from(body.to_string()));
    rewritten.headers_mut().remove(header::CONTENT_LENGTH);
    if let Some(cause) = rewritten.extensions().get::<InternalCause>().cloned() {
        rewritten.extensions_mut().insert(cause);
    }
    rewritten
}
