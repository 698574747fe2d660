//! Failures talking to an upstream, and how they map to OpenAI errors.

/// An upstream failure. Messages never contain the upstream key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream did not answer in time")]
    Timeout,
    #[error("could not reach the upstream: {0}")]
    Connect(String),
    #[error("the upstream answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the upstream answered something unreadable: {0}")]
    Protocol(String),
}

impl UpstreamError {
    /// Worth one more attempt, if nothing was sent to the client yet.
    pub fn retryable(&self) -> bool {
        match self {
            UpstreamError::Timeout | UpstreamError::Connect(_) => true,
            UpstreamError::Status { status, .. } => *status >= 500,
            UpstreamError::Protocol(_) => false,
        }
    }

    /// The HTTP status for the client: upstream 429 stays 429, a client error the upstream
    /// found in the request (400, 413, 422) stays 400, anything else is 502 (timeouts 504).
    pub fn client_status(&self) -> u16 {
        match self {
            UpstreamError::Timeout => 504,
            UpstreamError::Status { status: 429, .. } => 429,
            UpstreamError::Status {
                status: 400 | 413 | 422,
                ..
            } => 400,
            _ => 502,
        }
    }

    /// The OpenAI error `type` for the client.
    pub fn openai_type(&self) -> &'static str {
        match self.client_status() {
            429 => "rate_limit_error",
            400 => "invalid_request_error",
            _ => "api_error",
        }
    }
}
