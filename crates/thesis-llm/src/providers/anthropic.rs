//! Anthropic Messages upstream: the conversation becomes `system` plus alternating `messages`
//! (tool use and results included, thinking replayed with its signature); answers come back
//! as deltas, thinking as reasoning.

use serde_json::{Map, Value, json};

use super::{Delta, ProviderEvent, parse_json, u};
use crate::emitter::{Finish, Usage};
use crate::error::UpstreamError;
use crate::items::{Item, Part, Role};
use crate::request::ChatRequest;
use crate::sse::SseEvent;

pub const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; used when the request sets none.
pub const DEFAULT_MAX_TOKENS: u64 = 8192;

fn image_block(url: &str) -> Value {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((media, data)) = rest.split_once(";base64,")
    {
        return json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}});
    }
    json!({"type": "image", "source": {"type": "url", "url": url}})
}

fn push_block(messages: &mut Vec<Value>, role: &str, block: Value) {
    match messages.last_mut() {
        Some(last) if last["role"] == role => {
            if let Some(c) = last["content"].as_array_mut() {
                c.push(block);
            }
        }
        _ => messages.push(json!({"role": role, "content": [block]})),
    }
}

/// `(system, messages)` for the conversation.
pub fn messages(req: &ChatRequest) -> (Option<String>, Vec<Value>) {
    let mut system: Vec<String> = req.instructions.iter().cloned().collect();
    let mut out: Vec<Value> = vec![];
    for item in &req.items {
        match item {
            Item::Message {
                role: Role::System | Role::Developer,
                ..
            } => system.push(item.text()),
            Item::Message { role, content } => {
                let r = if *role == Role::Assistant {
                    "assistant"
                } else {
                    "user"
                };
                for p in content {
                    let block = match p {
                        Part::Text(t) | Part::Refusal(t) if !t.is_empty() => {
                            json!({"type": "text", "text": t})
                        }
                        Part::Image { url, .. } => image_block(url),
                        _ => continue,
                    };
                    push_block(&mut out, r, block);
                }
            }
            Item::Reasoning {
                summary,
                encrypted_content: Some(sig),
            } => {
                push_block(
                    &mut out,
                    "assistant",
                    json!({"type": "thinking", "thinking": summary.join(""), "signature": sig}),
                );
            }
            Item::Reasoning { .. } | Item::Other(_) => {}
            Item::FunctionCall {
                call_id,
                name,
                arguments,
            } => {
                let input: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
                push_block(
                    &mut out,
                    "assistant",
                    json!({"type": "tool_use", "id": call_id, "name": name, "input": input}),
                );
            }
            Item::FunctionCallOutput { call_id, output } => {
                push_block(
                    &mut out,
                    "user",
                    json!({"type": "tool_result", "tool_use_id": call_id, "content": output}),
                );
            }
        }
    }
    let system = system
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    ((!system.is_empty()).then_some(system), out)
}

pub fn request_body(req: &ChatRequest, stream: bool) -> Result<Value, UpstreamError> {
    let (system, messages) = messages(req);
    let max_tokens = req.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    let mut body = Map::new();
    body.insert("model".into(), json!(req.upstream_model));
    body.insert("max_tokens".into(), json!(max_tokens));
    body.insert("messages".into(), json!(messages));
    body.insert("stream".into(), json!(stream));
    if let Some(s) = system {
        body.insert("system".into(), json!(s));
    }
    if !req.function_tools.is_empty() {
        let tools: Vec<Value> = req
            .function_tools
            .iter()
            .map(|t| {
                let mut v = json!({"name": t.name, "input_schema": t.parameters});
                if let Some(d) = &t.description {
                    v["description"] = json!(d);
                }
                v
            })
            .collect();
        body.insert("tools".into(), json!(tools));
        if let Some(choice) = &req.tool_choice {
            let c = match choice {
                Value::String(s) if s == "required" => Some(json!({"type": "any"})),
                Value::String(s) if s == "none" => Some(json!({"type": "none"})),
                Value::String(_) => Some(json!({"type": "auto"})),
                Value::Object(o) => o.get("name").map(|n| json!({"type": "tool", "name": n})),
                _ => None,
            };
            if let Some(mut c) = c {
                if req.parallel_tool_calls == Some(false) {
                    c["disable_parallel_tool_use"] = json!(true);
                }
                body.insert("tool_choice".into(), c);
            }
        }
    }
    if let Some(t) = req.temperature {
        // Anthropic's range is 0..1
        body.insert("temperature".into(), json!(t.min(1.0)));
    }
    if let Some(t) = req.top_p {
        body.insert("top_p".into(), json!(t));
    }
    if let Some(effort) = req.reasoning.as_ref().and_then(|r| r["effort"].as_str()) {
        let budget: u64 = match effort {
            "minimal" | "none" => 0,
            "low" => 1024,
            "medium" => 4096,
            _ => 16384,
        };
        if budget > 0 {
            if budget >= max_tokens {
                return Err(UpstreamError::Status {
                    status: 400,
                    message: format!(
                        "reasoning effort `{effort}` needs max_output_tokens above {budget} for this model"
                    ),
                });
            }
            body.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": budget}),
            );
            body.remove("temperature");
            body.remove("top_p");
        }
    }
    Ok(Value::Object(body))
}

fn finish(reason: Option<&str>) -> Finish {
    match reason {
        Some("max_tokens") | Some("model_context_window_exceeded") => Finish::MaxTokens,
        Some("refusal") => Finish::ContentFilter,
        _ => Finish::Completed,
    }
}

fn input_usage(v: &Value) -> (u64, u64) {
    let cached = u(&v["cache_read_input_tokens"]);
    (
        u(&v["input_tokens"]) + cached + u(&v["cache_creation_input_tokens"]),
        cached,
    )
}

/// Deltas of a whole message.
pub fn from_response(v: &Value) -> Vec<ProviderEvent> {
    let mut out = vec![];
    for block in v["content"].as_array().cloned().unwrap_or_default() {
        match block["type"].as_str() {
            Some("text") => out.push(ProviderEvent::Delta(Delta::Text(
                block["text"].as_str().unwrap_or_default().to_string(),
            ))),
            Some("thinking") => {
                out.push(ProviderEvent::Delta(Delta::ReasoningText(
                    block["thinking"].as_str().unwrap_or_default().to_string(),
                )));
                if let Some(sig) = block["signature"].as_str() {
                    out.push(ProviderEvent::Delta(Delta::ReasoningEncrypted(
                        sig.to_string(),
                    )));
                }
            }
            Some("tool_use") => {
                out.push(ProviderEvent::Delta(Delta::ToolCall {
                    call_id: block["id"].as_str().unwrap_or_default().to_string(),
                    name: block["name"].as_str().unwrap_or_default().to_string(),
                }));
                out.push(ProviderEvent::Delta(Delta::ToolArgs(
                    block["input"].to_string(),
                )));
            }
            _ => {}
        }
    }
    let (input, cached) = input_usage(&v["usage"]);
    out.push(ProviderEvent::Delta(Delta::Usage(Usage {
        input_tokens: input,
        cached_tokens: cached,
        output_tokens: u(&v["usage"]["output_tokens"]),
        reasoning_tokens: 0,
    })));
    out.push(ProviderEvent::Done(finish(v["stop_reason"].as_str())));
    out
}

#[derive(Default)]
pub struct StreamState {
    usage: Usage,
    stop_reason: Option<String>,
    /// Whether a tool-use block is open, and whether it has sent arguments.
    in_tool: bool,
    tool_args_started: bool,
}

pub fn on_event(
    state: &mut StreamState,
    ev: SseEvent,
) -> Result<Vec<ProviderEvent>, UpstreamError> {
    let v = parse_json(&ev.data)?;
    let kind = v["type"]
        .as_str()
        .or(ev.event.as_deref())
        .unwrap_or_default();
    let d = |delta: Delta| vec![ProviderEvent::Delta(delta)];
    Ok(match kind {
        "message_start" => {
            let (input, cached) = input_usage(&v["message"]["usage"]);
            state.usage.input_tokens = input;
            state.usage.cached_tokens = cached;
            state.usage.output_tokens = u(&v["message"]["usage"]["output_tokens"]);
            vec![]
        }
        "content_block_start" => {
            let block = &v["content_block"];
            match block["type"].as_str() {
                Some("tool_use") => {
                    state.in_tool = true;
                    state.tool_args_started = false;
                    d(Delta::ToolCall {
                        call_id: block["id"].as_str().unwrap_or_default().to_string(),
                        name: block["name"].as_str().unwrap_or_default().to_string(),
                    })
                }
                Some("thinking") => d(Delta::ReasoningText(String::new())),
                Some("text") => match block["text"].as_str().filter(|t| !t.is_empty()) {
                    Some(t) => d(Delta::Text(t.to_string())),
                    None => vec![],
                },
                _ => vec![],
            }
        }
        "content_block_delta" => {
            let delta = &v["delta"];
            match delta["type"].as_str() {
                Some("text_delta") => d(Delta::Text(
                    delta["text"].as_str().unwrap_or_default().to_string(),
                )),
                Some("input_json_delta") => {
                    let partial = delta["partial_json"].as_str().unwrap_or_default();
                    state.tool_args_started |= !partial.is_empty();
                    d(Delta::ToolArgs(
                        delta["partial_json"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    ))
                }
                Some("thinking_delta") => d(Delta::ReasoningText(
                    delta["thinking"].as_str().unwrap_or_default().to_string(),
                )),
                Some("signature_delta") => d(Delta::ReasoningEncrypted(
                    delta["signature"].as_str().unwrap_or_default().to_string(),
                )),
                _ => vec![],
            }
        }
        "content_block_stop" => {
            // a tool called without arguments still gets a JSON object
            let empty_tool = state.in_tool && !state.tool_args_started;
            state.in_tool = false;
            state.tool_args_started = false;
            if empty_tool {
                d(Delta::ToolArgs("{}".into()))
            } else {
                vec![]
            }
        }
        "message_delta" => {
            if let Some(r) = v["delta"]["stop_reason"].as_str() {
                state.stop_reason = Some(r.to_string());
            }
            if let Some(o) = v["usage"]["output_tokens"].as_u64() {
                state.usage.output_tokens = o;
            }
            if v["usage"]["input_tokens"].is_u64() {
                let (input, cached) = input_usage(&v["usage"]);
                state.usage.input_tokens = input;
                state.usage.cached_tokens = cached;
            }
            vec![]
        }
        "message_stop" => vec![
            ProviderEvent::Delta(Delta::Usage(state.usage)),
            ProviderEvent::Done(finish(state.stop_reason.as_deref())),
        ],
        "error" => vec![ProviderEvent::Done(Finish::Failed {
            code: v["error"]["type"]
                .as_str()
                .unwrap_or("upstream_error")
                .to_string(),
            message: v["error"]["message"]
                .as_str()
                .unwrap_or("the upstream failed")
                .to_string(),
        })],
        _ => vec![],
    })
}
