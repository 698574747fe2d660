//! The LLM side of the gateway, without database or HTTP server: the OpenAI Responses request
//! and response shapes, a canonical conversation, providers that speak to upstreams (OpenAI
//! Responses, Chat Completions, Anthropic Messages, and the built-in echo model), and the
//! emitter that turns any provider's output into Responses events and a final response object.

pub mod emitter;
pub mod error;
pub mod http1;
pub mod items;
pub mod providers;
pub mod request;
pub mod sse;

pub use emitter::{Emitter, Finish, ResponseMeta, Usage};
pub use error::UpstreamError;
pub use items::{Item, Part, Role};
pub use providers::{Delta, Provider, ProviderKind, ProviderStream};
pub use request::{ChatRequest, FunctionTool, RequestError, ResponsesRequest};

/// A new id with an OpenAI-style prefix (`resp`, `msg`, `fc`, `rs`, `call`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}
