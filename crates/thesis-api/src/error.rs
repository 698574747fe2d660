//! The error type of the JSON API and the extractors that turn bad input into it.
//!
//! Every error outside `/v1/responses` is `{"statusCode", "error", "message"}`; `message` is a
//! sentence, or for validation failures a list of sentences each naming its field. A 500 never
//! carries its cause: the cause is logged with the request id by [`crate::telemetry`].

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// Errors of services and handlers, by meaning. [`IntoResponse`] maps them to HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("validation failed")]
    Validation(Vec<String>),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    PaymentRequired(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    ServiceUnavailable(String),
    /// Anything unexpected; the text is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn internal(err: impl std::fmt::Display) -> Self {
        ApiError::Internal(err.to_string())
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        ApiError::Internal(format!("database: {err}"))
    }
}

impl From<sea_orm::TransactionError<ApiError>> for ApiError {
    fn from(err: sea_orm::TransactionError<ApiError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(e) => e.into(),
            sea_orm::TransactionError::Transaction(e) => e,
        }
    }
}

/// The JSON error body.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// The HTTP status code.
    #[schema(example = 404)]
    pub status_code: u16,
    /// The reason phrase of the status code.
    #[schema(example = "Not Found")]
    pub error: String,
    /// A sentence, or for validation failures a list of sentences each naming its field.
    #[schema(value_type = Object)]
    pub message: serde_json::Value,
}

/// Marks a 500 response so the error-finishing middleware logs the cause with the request id.
#[derive(Clone, Debug)]
pub struct InternalCause(pub String);

pub fn error_response(status: StatusCode, message: serde_json::Value) -> Response {
    let body = ErrorBody {
        status_code: status.as_u16(),
        error: status.canonical_reason().unwrap_or("Error").to_string(),
        message,
    };
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match self {
            ApiError::Validation(messages) => error_response(status, messages.into()),
            ApiError::Internal(cause) => {
                let mut response = error_response(status, "internal error".into());
                response.extensions_mut().insert(InternalCause(cause));
                response
            }
            ApiError::TooManyRequests {
                message,
                retry_after_secs,
            } => {
                let mut response = error_response(status, message.into());
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs.max(1)),
                );
                response
            }
            other => error_response(status, other.to_string().into()),
        }
    }
}

/// JSON body extractor: 415 without a JSON content type, 413 past the body limit, 400 with the
/// failing field for malformed JSON or wrong types, then `garde` validation (400, one sentence per
/// field).
pub struct ApiJson<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

pub fn bytes_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("request body is too large".into())
    } else {
        ApiError::BadRequest(format!(
            "could not read the request body: {}",
            rejection.body_text()
        ))
    }
}

/// Parses JSON, naming the path of the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = if inner.is_syntax() || inner.is_eof() {
                format!("malformed JSON: {inner}")
            } else if path == "." || path.is_empty() {
                format!("body: {inner}")
            } else {
                format!("{path}: {inner}")
            };
            Err(ApiError::Validation(vec![message]))
        }
    }
}

pub fn validate<T: garde::Validate<Context = ()>>(value: &T) -> Result<(), ApiError> {
    value.validate().map_err(report_to_error)
}

pub fn report_to_error(report: garde::Report) -> ApiError {
    let messages = report
        .iter()
        .map(|(path, error)| {
            let path = camel_case_path(&path.to_string());
            if path.is_empty() {
                error.to_string()
            } else {
                format!("{path}: {error}")
            }
        })
        .collect();
    ApiError::Validation(messages)
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned + garde::Validate<Context = ()>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "expected a JSON body with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        let value: T = parse_json(&bytes)?;
        validate(&value)?;
        Ok(ApiJson(value))
    }
}

/// Path parameters; a malformed one (say, not a UUID) is 400 naming it.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(ApiError::Validation(vec![e.body_text()]))
            }
            Err(e) => Err(ApiError::internal(e.body_text())),
        }
    }
}

/// Query parameters; bad ones are 400 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned + garde::Validate<Context = ()>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => {
                validate(&v)?;
                Ok(ApiQuery(v))
            }
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::Validation(vec![e.body_text()]))
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// garde names fields as in Rust (`usage_limit_cents`); the wire names are camelCase.
fn camel_case_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Validators shared by the request types.
pub mod rules {
    /// A string that is not only whitespace.
    pub fn not_blank(value: &str, _ctx: &()) -> garde::Result {
        if value.trim().is_empty() {
            Err(garde::Error::new("must not be blank"))
        } else {
            Ok(())
        }
    }

    /// A syntactically valid e-mail address of at most 254 characters.
    pub fn email(value: &str, _ctx: &()) -> garde::Result {
        let v = value.trim();
        if v.len() > 254 {
            return Err(garde::Error::new("must be at most 254 characters"));
        }
        if !is_valid_email(v) {
            return Err(garde::Error::new("is not a valid e-mail address"));
        }
        Ok(())
    }

    /// A conservative syntactic check: one `@`, a non-empty local part without spaces or control
    /// characters, and a domain of dot-separated labels of letters, digits and hyphens.
    pub fn is_valid_email(v: &str) -> bool {
        let Some((local, domain)) = v.rsplit_once('@') else {
            return false;
        };
        if local.is_empty() || local.len() > 64 || domain.is_empty() {
            return false;
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return false;
        }
        let local_ok = local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        local_ok && domain_ok
    }

    #[cfg(test)]
    mod tests {
        use super::is_valid_email;

        #[test]
        fn emails() {
            for ok in [
                "a@b.co",
                "first.last+tag@example.com",
                "x@localhost",
                "Ü@bücher.de",
            ] {
                assert!(is_valid_email(ok), "{ok}");
            }
            for bad in [
                "", "a", "@b.co", "a@", "a b@c.d", "a@b..c", "a@-b.c", ".a@b.c", "a@b@c", "a@b_c.d",
            ] {
                assert!(!is_valid_email(bad), "{bad}");
            }
        }
    }
}

/// The normalized (compared) form of an e-mail address.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}
