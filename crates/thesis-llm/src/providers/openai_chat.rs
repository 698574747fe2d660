//! Chat Completions upstreams (OpenAI, vLLM, Ollama, llama.cpp, OpenRouter, Together): the
//! conversation is translated into `messages`, and answers — streamed chunks or a whole
//! completion, tool calls included — back into deltas.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Delta, ProviderEvent, parse_json, u};
use crate::emitter::{Finish, Usage};
use crate::error::UpstreamError;
use crate::items::{Item, Part, Role};
use crate::new_id;
use crate::request::ChatRequest;
use crate::sse::SseEvent;

fn content(parts: &[Part]) -> Value {
    let only_text = parts
        .iter()
        .all(|p| matches!(p, Part::Text(_) | Part::Refusal(_)));
    if only_text {
        return json!(
            parts
                .iter()
                .map(|p| match p {
                    Part::Text(t) | Part::Refusal(t) => t.as_str(),
                    _ => "",
                })
                .collect::<String>()
        );
    }
    json!(parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) | Part::Refusal(t) => Some(json!({"type": "text", "text": t})),
            Part::Image { url, detail } => Some(json!({"type": "image_url", "image_url": {"url": url, "detail": detail.clone().unwrap_or_else(|| "auto".into())}})),
            Part::Other(_) => None,
        })
        .collect::<Vec<_>>())
}

/// The conversation as Chat Completions `messages`.
pub fn messages(req: &ChatRequest) -> Vec<Value> {
    let mut out: Vec<Value> = vec![];
    if let Some(i) = &req.instructions {
        out.push(json!({"role": "system", "content": i}));
    }
    for item in &req.items {
        match item {
            Item::Message {
                role,
                content: parts,
            } => {
                let role = match role {
                    Role::Developer | Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                out.push(json!({"role": role, "content": content(parts)}));
            }
            Item::FunctionCall {
                call_id,
                name,
                arguments,
            } => {
                let call = json!({"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}});
                // calls following an assistant message belong to it
                match out.last_mut() {
                    Some(last) if last["role"] == "assistant" => {
                        if !last["tool_calls"].is_array() {
                            last["tool_calls"] = json!([]);
                        }
                        if let Some(calls) = last["tool_calls"].as_array_mut() {
                            calls.push(call);
                        }
                    }
                    _ => out
                        .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
                }
            }
            Item::FunctionCallOutput { call_id, output } => {
                out.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
            }
            Item::Reasoning { .. } | Item::Other(_) => {}
        }
    }
    out
}

pub fn request_body(req: &ChatRequest, stream: bool) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(req.upstream_model));
    body.insert("messages".into(), json!(messages(req)));
    body.insert("stream".into(), json!(stream));
    if stream {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if !req.function_tools.is_empty() {
        let tools: Vec<Value> = req
            .function_tools
            .iter()
            .map(|t| {
                let mut f = json!({"name": t.name, "parameters": t.parameters});
                if let Some(d) = &t.description {
                    f["description"] = json!(d);
                }
                if let Some(s) = t.strict {
                    f["strict"] = json!(s);
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        body.insert("tools".into(), json!(tools));
        if let Some(choice) = &req.tool_choice {
            let c = match choice {
                Value::Object(o) if o.get("type").and_then(|t| t.as_str()) == Some("function") => {
                    json!({"type": "function", "function": {"name": o.get("name").cloned().unwrap_or(Value::Null)}})
                }
                other => other.clone(),
            };
            body.insert("tool_choice".into(), c);
        }
        if let Some(p) = req.parallel_tool_calls {
            body.insert("parallel_tool_calls".into(), json!(p));
        }
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(t) = req.top_p {
        body.insert("top_p".into(), json!(t));
    }
    if let Some(m) = req.max_output_tokens {
        body.insert("max_tokens".into(), json!(m));
    }
    if let Some(effort) = req.reasoning.as_ref().and_then(|r| r["effort"].as_str()) {
        body.insert("reasoning_effort".into(), json!(effort));
    }
    Value::Object(body)
}

fn usage(v: &Value) -> Option<Usage> {
    if !v.is_object() {
        return None;
    }
    Some(Usage {
        input_tokens: u(&v["prompt_tokens"]),
        cached_tokens: u(&v["prompt_tokens_details"]["cached_tokens"]),
        output_tokens: u(&v["completion_tokens"]),
        reasoning_tokens: u(&v["completion_tokens_details"]["reasoning_tokens"]),
    })
}

fn finish(reason: Option<&str>) -> Finish {
    match reason {
        Some("length") => Finish::MaxTokens,
        Some("content_filter") => Finish::ContentFilter,
        _ => Finish::Completed,
    }
}

fn reasoning_of(v: &Value) -> Option<&str> {
    v["reasoning_content"]
        .as_str()
        .or_else(|| v["reasoning"].as_str())
        .filter(|s| !s.is_empty())
}

/// Deltas of a whole completion.
pub fn from_response(v: &Value) -> Result<Vec<ProviderEvent>, UpstreamError> {
    let choice = &v["choices"][0];
    if !choice.is_object() {
        return Err(UpstreamError::Protocol(
            "the completion has no choices".into(),
        ));
    }
    let msg = &choice["message"];
    let mut out = vec![];
    if let Some(r) = reasoning_of(msg) {
        out.push(ProviderEvent::Delta(Delta::ReasoningText(r.to_string())));
    }
    if let Some(t) = msg["content"].as_str().filter(|t| !t.is_empty()) {
        out.push(ProviderEvent::Delta(Delta::Text(t.to_string())));
    }
    if let Some(r) = msg["refusal"].as_str().filter(|t| !t.is_empty()) {
        out.push(ProviderEvent::Delta(Delta::Text(r.to_string())));
    }
    for call in msg["tool_calls"].as_array().cloned().unwrap_or_default() {
        out.push(ProviderEvent::Delta(Delta::ToolCall {
            call_id: call["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| new_id("call")),
            name: call["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }));
        out.push(ProviderEvent::Delta(Delta::ToolArgs(
            call["function"]["arguments"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )));
    }
    if let Some(u) = usage(&v["usage"]) {
        out.push(ProviderEvent::Delta(Delta::Usage(u)));
    }
    out.push(ProviderEvent::Done(finish(
        choice["finish_reason"].as_str(),
    )));
    Ok(out)
}

/// Streaming state: tool calls arrive by index, possibly interleaved; the current one streams
/// through, others wait until it is their turn.
#[derive(Default)]
pub struct StreamState {
    current: Option<u64>,
    started: Vec<u64>,
    pending: BTreeMap<u64, (Option<String>, Option<String>, String)>,
    finish: Option<String>,
    usage: Option<Usage>,
}

impl StreamState {
    fn flush_pending(&mut self, out: &mut Vec<ProviderEvent>) {
        let pending = std::mem::take(&mut self.pending);
        for (index, (id, name, args)) in pending {
            self.started.push(index);
            out.push(ProviderEvent::Delta(Delta::ToolCall {
                call_id: id.unwrap_or_else(|| new_id("call")),
                name: name.unwrap_or_default(),
            }));
            if !args.is_empty() {
                out.push(ProviderEvent::Delta(Delta::ToolArgs(args)));
            }
        }
    }

    fn done(&mut self) -> Vec<ProviderEvent> {
        let mut out = vec![];
        self.flush_pending(&mut out);
        if let Some(u) = self.usage.take() {
            out.push(ProviderEvent::Delta(Delta::Usage(u)));
        }
        out.push(ProviderEvent::Done(finish(self.finish.as_deref())));
        out
    }
}

pub fn on_event(
    state: &mut StreamState,
    ev: SseEvent,
) -> Result<Vec<ProviderEvent>, UpstreamError> {
    if ev.data.trim() == "[DONE]" {
        return Ok(state.done());
    }
    let v = parse_json(&ev.data)?;
    if let Some(err) = v.get("error").filter(|e| e.is_object()) {
        return Ok(vec![ProviderEvent::Done(Finish::Failed {
            code: "upstream_error".into(),
            message: err["message"]
                .as_str()
                .unwrap_or("the upstream failed")
                .to_string(),
        })]);
    }
    let mut out = vec![];
    if let Some(u) = usage(&v["usage"]) {
        state.usage = Some(u);
    }
    let Some(choice) = v["choices"].get(0) else {
        return Ok(out);
    };
    let delta = &choice["delta"];
    if let Some(r) = reasoning_of(delta) {
        out.push(ProviderEvent::Delta(Delta::ReasoningText(r.to_string())));
    }
    if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
        out.push(ProviderEvent::Delta(Delta::Text(t.to_string())));
    }
    for call in delta["tool_calls"].as_array().cloned().unwrap_or_default() {
        let index = call["index"].as_u64().unwrap_or(0);
        let id = call["id"].as_str().map(str::to_string);
        let name = call["function"]["name"].as_str().map(str::to_string);
        let args = call["function"]["arguments"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if state.current == Some(index) {
            if !args.is_empty() {
                out.push(ProviderEvent::Delta(Delta::ToolArgs(args)));
            }
        } else if state.current.is_none() || (name.is_some() && !state.started.contains(&index)) {
            // a new call: it becomes the current one
            let (pid, pname, pargs) = state.pending.remove(&index).unwrap_or_default();
            state.current = Some(index);
            state.started.push(index);
            out.push(ProviderEvent::Delta(Delta::ToolCall {
                call_id: id.or(pid).unwrap_or_else(|| new_id("call")),
                name: name.or(pname).unwrap_or_default(),
            }));
            let all = pargs + &args;
            if !all.is_empty() {
                out.push(ProviderEvent::Delta(Delta::ToolArgs(all)));
            }
        } else {
            let entry = state.pending.entry(index).or_default();
            if entry.0.is_none() {
                entry.0 = id;
            }
            if entry.1.is_none() {
                entry.1 = name;
            }
            entry.2.push_str(&args);
        }
    }
    if let Some(reason) = choice["finish_reason"].as_str() {
        state.finish = Some(reason.to_string());
    }
    Ok(out)
}
