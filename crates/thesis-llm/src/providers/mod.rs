//! Providers: how a [`ChatRequest`] reaches an upstream and comes back as [`Delta`]s.

mod anthropic;
mod echo;
mod openai;
mod openai_chat;

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

use crate::emitter::{Finish, Usage};
use crate::error::UpstreamError;
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

/// A configured upstream.
pub struct Provider {
    pub kind: ProviderKind,
    base_url: String,
    /// The one endpoint this kind of provider calls, parsed once.
    endpoint: Option<reqwest::Url>,
    /// The key as its header (`Authorization: Bearer` or Anthropic's `x-api-key`), marked
    /// sensitive so that it is never printed.
    auth: Option<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    http: reqwest::Client,
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
        Ok(Provider {
            kind,
            base_url,
            endpoint,
            auth,
            http,
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

    async fn post(
        &self,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Result<reqwest::Response, UpstreamError> {
        let Some(endpoint) = &self.endpoint else {
            return Err(UpstreamError::Connect(
                "this provider has no endpoint".into(),
            ));
        };
        let mut req = self.http.post(endpoint.clone()).json(body);
        if let Some((name, value)) = &self.auth {
            req = req.header(name, value);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = match tokio::time::timeout(self.first_byte_timeout, req.send()).await {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(Err(e)) if e.is_timeout() => return Err(UpstreamError::Timeout),
            Ok(Err(e)) => return Err(UpstreamError::Connect(e.without_url().to_string())),
            Ok(Ok(r)) => r,
        };
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status().as_u16();
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

    async fn json(&self, res: reqwest::Response) -> Result<Value, UpstreamError> {
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
        res: reqwest::Response,
        state: S,
        on_event: fn(&mut S, SseEvent) -> Result<Vec<ProviderEvent>, UpstreamError>,
    ) -> ProviderStream {
        let idle = self.idle_timeout;
        let body = res.bytes_stream();
        let s = futures_util::stream::unfold(
            (
                Box::pin(body),
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
                    let chunk: Option<Result<Bytes, reqwest::Error>> =
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
                                Err(UpstreamError::Connect(format!(
                                    "the stream broke: {}",
                                    e.without_url()
                                ))),
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
async fn read_capped(res: reqwest::Response, cap: usize) -> Result<String, UpstreamError> {
    let mut body = res.bytes_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| UpstreamError::Connect(e.without_url().to_string()))?;
        if buf.len() + chunk.len() > cap {
            return Err(UpstreamError::Protocol(format!(
                "the upstream answer exceeds {cap} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn parse_json(data: &str) -> Result<Value, UpstreamError> {
    serde_json::from_str(data)
        .map_err(|e| UpstreamError::Protocol(format!("invalid event JSON: {e}")))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}
