//! Providers: how a [`ChatRequest`] reaches an upstream and comes back as [`Delta`]s.

mod anthropic;
mod echo;
mod openai;
mod openai_chat;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

use crate::emitter::{Finish, Usage};
use crate::error::UpstreamError;
use crate::http1;
use crate::request::ChatRequest;
use crate::sse::{SseDecoder, SseEvent};

/// A piece of a response, in provider-neutral form.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    Text(String),
    /// Reasoning summary (OpenAI) or thinking (Anthropic) text.
    ReasoningText(String),
    /// OpenAI's encrypted reasoning or Anthropic's thinking signature, kept for the next turn.
    ReasoningEncrypted(String),
    /// A function call starts.
    ToolCall {
        call_id: String,
        name: String,
    },
    /// More arguments of the current function call.
    ToolArgs(String),
    /// A whole output item of a kind the gateway passes through as is.
    Item(Value),
    Usage(Usage),
}

/// What a provider stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderEvent {
    Delta(Delta),
    Done(Finish),
}

pub type ProviderStream = Pin<Box<dyn Stream<Item = Result<ProviderEvent, UpstreamError>> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI Responses API upstream.
    OpenAi,
    /// Chat Completions upstream (OpenAI, vLLM, Ollama, llama.cpp, OpenRouter, Together, ...).
    OpenAiChat,
    /// Anthropic Messages API.
    Anthropic,
    /// The built-in echo model: no network.
    Echo,
}

impl ProviderKind {
    pub fn parse(s: &str) -> Option<ProviderKind> {
        match s {
            "openai" => Some(ProviderKind::OpenAi),
            "openai-chat" => Some(ProviderKind::OpenAiChat),
            "anthropic" => Some(ProviderKind::Anthropic),
            "echo" => Some(ProviderKind::Echo),
            _ => None,
        }
    }
}

/// Upper bound of one upstream SSE event.
const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// How requests reach an upstream.
enum Transport {
    /// Plain `http://` without a proxy: the gateway's own connections (see [`crate::http1`]).
    Direct(Arc<http1::Pool>),
    /// `https://`, or through a proxy: reqwest (TLS, HTTP/2, `HTTP(S)_PROXY` / `NO_PROXY`).
    Reqwest(reqwest::Client),
}

/// Idle connections kept per `http://` upstream.
const MAX_IDLE_CONNECTIONS: usize = 2048;
/// How long an idle connection is kept.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(90);
/// Upper bound of connecting to an `http://` upstream (the first-byte timeout bounds it too).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An upstream's answer: its status, and its body as it arrives.
struct Answer {
    status: u16,
    body: Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>,
}

/// A configured upstream.
pub struct Provider {
    pub kind: ProviderKind,
    base_url: String,
    /// The one endpoint this kind of provider calls, parsed once.
    endpoint: Option<reqwest::Url>,
    /// The key as its header (`Authorization: Bearer` or Anthropic's `x-api-key`), marked
    /// sensitive so that it is never printed.
    auth: Option<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    transport: Transport,
    /// Until the upstream's response headers arrive.
    pub first_byte_timeout: Duration,
    /// Between two chunks of a stream.
    pub idle_timeout: Duration,
}

// the key must never be printed
impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Fails when `base_url` does not make a URL, or the key cannot be an HTTP header value.
    pub fn new(
        kind: ProviderKind,
        base_url: &str,
        api_key: Option<String>,
        http: reqwest::Client,
        first_byte_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<Self, String> {
        use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
        let base_url = base_url.trim_end_matches('/').to_string();
        let path = match kind {
            ProviderKind::Echo => None,
            ProviderKind::OpenAi => Some("/responses"),
            ProviderKind::OpenAiChat => Some("/chat/completions"),
            ProviderKind::Anthropic => Some("/messages"),
        };
        let endpoint = match path {
            None => None,
            Some(path) => Some(
                reqwest::Url::parse(&format!("{base_url}{path}"))
                    .map_err(|e| format!("base_url `{base_url}` is not a valid URL: {e}"))?,
            ),
        };
        let auth = match api_key {
            None => None,
            Some(key) => {
                let (name, value) = match kind {
                    ProviderKind::Anthropic => (HeaderName::from_static("x-api-key"), key),
                    _ => (AUTHORIZATION, format!("Bearer {key}")),
                };
                let mut value = HeaderValue::from_str(&value).map_err(|_| {
                    "the API key holds characters an HTTP header cannot carry".to_string()
                })?;
                value.set_sensitive(true);
                Some((name, value))
            }
        };
        let transport = match &endpoint {
            Some(url) if url.scheme() == "http" && !proxied(url) => {
                let authority = match url.port_or_known_default() {
                    Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
                    None => url.host_str().unwrap_or_default().to_string(),
                };
                Transport::Direct(http1::Pool::new(
                    &authority,
                    MAX_IDLE_CONNECTIONS,
                    IDLE_CONNECTION_TIMEOUT,
                    CONNECT_TIMEOUT.min(first_byte_timeout),
                )?)
            }
            _ => Transport::Reqwest(http),
        };
        Ok(Provider {
            kind,
            base_url,
            endpoint,
            auth,
            transport,
            first_byte_timeout,
            idle_timeout,
        })
    }

    /// Sends the request and returns once the upstream has answered (status and headers);
    /// the deltas follow on the stream. Errors here happen before any byte reached the client,
    /// so the caller may retry them.
    pub async fn start(
        &self,
        req: &ChatRequest,
        stream: bool,
    ) -> Result<ProviderStream, UpstreamError> {
        match self.kind {
            ProviderKind::Echo => Ok(echo::respond(req, stream)),
            ProviderKind::OpenAi => {
                let body = openai::request_body(req, stream);
                let res = self.post(&body, &[]).await?;
                Ok(if stream {
                    self.sse(res, openai::StreamState::default(), openai::on_event)
                } else {
                    let v = self.json(res).await?;
                    Box::pin(futures_util::stream::iter(
                        openai::from_response(&v).into_iter().map(Ok),
                    ))
                })
            }
            ProviderKind::OpenAiChat => {
                let body = openai_chat::request_body(req, stream);
                let res = self.post(&body, &[]).await?;
                Ok(if stream {
                    self.sse(
                        res,
                        openai_chat::StreamState::default(),
                        openai_chat::on_event,
                    )
                } else {
                    let v = self.json(res).await?;
                    Box::pin(futures_util::stream::iter(
                        openai_chat::from_response(&v)?.into_iter().map(Ok),
                    ))
                })
            }
            ProviderKind::Anthropic => {
                let body = anthropic::request_body(req, stream)?;
                let res = self
                    .post(&body, &[("anthropic-version", anthropic::API_VERSION)])
                    .await?;
                Ok(if stream {
                    self.sse(res, anthropic::StreamState::default(), anthropic::on_event)
                } else {
                    let v = self.json(res).await?;
                    Box::pin(futures_util::stream::iter(
                        anthropic::from_response(&v).into_iter().map(Ok),
                    ))
                })
            }
        }
    }

    async fn post(&self, body: &Value, headers: &[(&str, &str)]) -> Result<Answer, UpstreamError> {
        let Some(endpoint) = &self.endpoint else {
            return Err(UpstreamError::Connect(
                "this provider has no endpoint".into(),
            ));
        };
        let res =
            match tokio::time::timeout(self.first_byte_timeout, self.send(endpoint, body, headers))
                .await
            {
                Err(_) => return Err(UpstreamError::Timeout),
                Ok(r) => r?,
            };
        if (200..300).contains(&res.status) {
            return Ok(res);
        }
        let status = res.status;
        let text = read_capped(res, 64 * 1024).await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                v["error"]["message"]
                    .as_str()
                    .or_else(|| v["error"].as_str())
                    .or_else(|| v["message"].as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(UpstreamError::Status { status, message })
    }

    /// One POST of `body` as JSON, through this provider's transport, up to the answer's head.
    async fn send(
        &self,
        endpoint: &reqwest::Url,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Result<Answer, UpstreamError> {
        use reqwest::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};
        let json = serde_json::to_vec(body).map_err(|e| {
            UpstreamError::Protocol(format!("the request could not be encoded: {e}"))
        })?;
        match &self.transport {
            Transport::Direct(pool) => {
                let mut req = hyper::Request::post(path_and_query(endpoint))
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
                if let Some((name, value)) = &self.auth {
                    req = req.header(name, value);
                }
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                let req = req
                    .body(http_body_util::Full::new(Bytes::from(json)))
                    .map_err(|e| UpstreamError::Connect(format!("the request is invalid: {e}")))?;
                let (status, body) = pool.send(req).await.map_err(UpstreamError::Connect)?;
                Ok(Answer {
                    status: status.as_u16(),
                    body: Box::pin(body),
                })
            }
            Transport::Reqwest(http) => {
                let mut req = http
                    .post(endpoint.clone())
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(json);
                if let Some((name, value)) = &self.auth {
                    req = req.header(name, value);
                }
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                let res = req.send().await.map_err(|e| {
                    if e.is_timeout() {
                        UpstreamError::Timeout
                    } else {
                        UpstreamError::Connect(e.without_url().to_string())
                    }
                })?;
                Ok(Answer {
                    status: res.status().as_u16(),
                    body: Box::pin(
                        res.bytes_stream()
                            .map(|c| c.map_err(|e| e.without_url().to_string())),
                    ),
                })
            }
        }
    }

    async fn json(&self, res: Answer) -> Result<Value, UpstreamError> {
        let read = read_capped(res, MAX_EVENT_BYTES);
        let text = match tokio::time::timeout(self.idle_timeout, read).await {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(r) => r?,
        };
        serde_json::from_str(&text)
            .map_err(|e| UpstreamError::Protocol(format!("invalid JSON: {e}")))
    }

    /// A stream of deltas from an SSE body, through `on_event` with per-provider state. The
    /// stream ends after a `Done`; a body that ends without one is a protocol error.
    fn sse<S: Send + 'static>(
        &self,
        res: Answer,
        state: S,
        on_event: fn(&mut S, SseEvent) -> Result<Vec<ProviderEvent>, UpstreamError>,
    ) -> ProviderStream {
        let idle = self.idle_timeout;
        let s = futures_util::stream::unfold(
            (
                res.body,
                SseDecoder::new(MAX_EVENT_BYTES),
                state,
                std::collections::VecDeque::new(),
                false,
            ),
            move |(mut body, mut decoder, mut state, mut queue, mut done)| async move {
                loop {
                    if let Some(ev) = queue.pop_front() {
                        if matches!(ev, ProviderEvent::Done(_)) {
                            done = true;
                            queue.clear();
                        }
                        return Some((Ok(ev), (body, decoder, state, queue, done)));
                    }
                    if done {
                        return None;
                    }
                    let chunk: Option<Result<Bytes, String>> =
                        match tokio::time::timeout(idle, body.next()).await {
                            Err(_) => {
                                done = true;
                                return Some((
                                    Err(UpstreamError::Timeout),
                                    (body, decoder, state, queue, done),
                                ));
                            }
                            Ok(c) => c,
                        };
                    match chunk {
                        None => {
                            done = true;
                            return Some((
                                Err(UpstreamError::Protocol(
                                    "the stream ended before the response was complete".into(),
                                )),
                                (body, decoder, state, queue, done),
                            ));
                        }
                        Some(Err(e)) => {
                            done = true;
                            return Some((
                                Err(UpstreamError::Connect(format!("the stream broke: {e}"))),
                                (body, decoder, state, queue, done),
                            ));
                        }
                        Some(Ok(bytes)) => {
                            let events = match decoder.feed(&bytes) {
                                Ok(e) => e,
                                Err(e) => {
                                    done = true;
                                    return Some((
                                        Err(UpstreamError::Protocol(e.to_string())),
                                        (body, decoder, state, queue, done),
                                    ));
                                }
                            };
                            for event in events {
                                match on_event(&mut state, event) {
                                    Ok(out) => queue.extend(out),
                                    Err(e) => {
                                        done = true;
                                        return Some((Err(e), (body, decoder, state, queue, done)));
                                    }
                                }
                            }
                        }
                    }
                }
            },
        );
        Box::pin(s)
    }
}

/// Reads a body up to `cap` bytes (a longer body is an error).
async fn read_capped(res: Answer, cap: usize) -> Result<String, UpstreamError> {
    let mut body = res.body;
    let mut buf = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(UpstreamError::Connect)?;
        if buf.len() + chunk.len() > cap {
            return Err(UpstreamError::Protocol(format!(
                "the upstream answer exceeds {cap} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The `User-Agent` of upstream requests.
pub const USER_AGENT_VALUE: &str = concat!("thesis-api/", env!("CARGO_PKG_VERSION"));

/// `/path?query` of a URL: the request target of an HTTP/1.1 request to an origin server.
fn path_and_query(url: &reqwest::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// Whether the environment's proxy settings (`HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, read as
/// reqwest reads them) send requests to `url` through a proxy.
fn proxied(url: &reqwest::Url) -> bool {
    let Ok(uri) = url.as_str().parse::<hyper::Uri>() else {
        return true;
    };
    hyper_util::client::proxy::matcher::Matcher::from_env()
        .intercept(&uri)
        .is_some()
}

fn parse_json(data: &str) -> Result<Value, UpstreamError> {
    serde_json::from_str(data)
        .map_err(|e| UpstreamError::Protocol(format!("invalid event JSON: {e}")))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(kind: ProviderKind, base_url: &str) -> Provider {
        // reqwest is built without a crypto provider of its own; the server installs ring
        let _ = rustls::crypto::ring::default_provider().install_default();
        Provider::new(
            kind,
            base_url,
            Some("sk-test".into()),
            reqwest::Client::new(),
            Duration::from_secs(5),
            Duration::from_secs(5),
        )
        .unwrap()
    }

    async fn deltas(
        p: &Provider,
        model: &str,
        stream: bool,
    ) -> Result<Vec<ProviderEvent>, UpstreamError> {
        let body = serde_json::json!({"model": "m", "input": "Say hello.", "tools": [
            {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
        ]});
        let req = crate::ResponsesRequest::parse(&body)
            .unwrap()
            .to_chat(model, vec![]);
        let mut s = p.start(&req, stream).await?;
        let mut out = vec![];
        while let Some(ev) = s.next().await {
            out.push(ev?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn both_transports_read_every_wire_format_alike() {
        let base = thesis_mock_llm::spawn().await;
        for kind in [
            ProviderKind::OpenAi,
            ProviderKind::OpenAiChat,
            ProviderKind::Anthropic,
        ] {
            let direct = provider(kind, &base);
            assert!(matches!(direct.transport, Transport::Direct(_)), "{kind:?}");
            let mut via_reqwest = provider(kind, &base);
            via_reqwest.transport = Transport::Reqwest(reqwest::Client::new());
            for stream in [false, true] {
                for model in ["mock?tokens=7", "mock?tokens=3&think=1"] {
                    let a = deltas(&direct, model, stream).await.unwrap();
                    let b = deltas(&via_reqwest, model, stream).await.unwrap();
                    assert!(
                        matches!(a.last(), Some(ProviderEvent::Done(Finish::Completed))),
                        "{kind:?} {a:?}"
                    );
                    assert!(
                        a.iter()
                            .any(|e| matches!(e, ProviderEvent::Delta(Delta::Usage(_)))),
                        "{kind:?} {a:?}"
                    );
                    assert_eq!(a, b, "{kind:?} stream={stream} {model}");
                }
                // errors map alike: 429 stays 429, and the upstream's message is kept
                for p in [&direct, &via_reqwest] {
                    match deltas(p, "mock?status=429", stream).await {
                        Err(UpstreamError::Status { status: 429, .. }) => {}
                        other => panic!("{kind:?}: {other:?}"),
                    }
                }
                // a stream cut short is an error, not a short answer
                if stream {
                    for p in [&direct, &via_reqwest] {
                        assert!(
                            deltas(p, "mock?tokens=9&cut=3", true).await.is_err(),
                            "{kind:?}"
                        );
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn an_https_upstream_goes_through_reqwest() {
        let p = provider(ProviderKind::OpenAi, "https://api.openai.com/v1");
        assert!(matches!(p.transport, Transport::Reqwest(_)));
        let p = provider(ProviderKind::OpenAi, "http://127.0.0.1:9/v1");
        assert!(matches!(p.transport, Transport::Direct(_)));
    }
}
