//! OpenAI Responses upstream: the request is sent in Responses form with the whole context
//! (`store: false`); events are read back into deltas, unknown output items passed through.

use serde_json::{Map, Value, json};

use super::{Delta, ProviderEvent, parse_json, u};
use crate::emitter::{Finish, Usage};
use crate::error::UpstreamError;
use crate::items::Item;
use crate::request::ChatRequest;
use crate::sse::SseEvent;

pub fn request_body(req: &ChatRequest, stream: bool) -> Value {
    let mut body: Map<String, Value> = req.extra.clone();
    let input: Vec<Value> = req
        .items
        .iter()
        // reasoning can only be replayed with its encrypted content
        .filter(|i| {
            !matches!(
                i,
                Item::Reasoning {
                    encrypted_content: None,
                    ..
                }
            )
        })
        .map(Item::to_value)
        .collect();
    body.insert("model".into(), json!(req.upstream_model));
    body.insert("input".into(), Value::Array(input));
    body.insert("stream".into(), json!(stream));
    body.insert("store".into(), json!(false));
    if let Some(i) = &req.instructions {
        body.insert("instructions".into(), json!(i));
    }
    if !req.tools.is_empty() {
        body.insert("tools".into(), json!(req.tools));
    }
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            body.insert(k.into(), v);
        }
    };
    put("tool_choice", req.tool_choice.clone());
    put("temperature", req.temperature.map(|x| json!(x)));
    put("top_p", req.top_p.map(|x| json!(x)));
    put("max_output_tokens", req.max_output_tokens.map(|x| json!(x)));
    put("reasoning", req.reasoning.clone());
    put(
        "parallel_tool_calls",
        req.parallel_tool_calls.map(|x| json!(x)),
    );
    let mut include = req.include.clone();
    if req.reasoning.is_some() && !include.iter().any(|i| i == "reasoning.encrypted_content") {
        // with store=false, reasoning continues across turns only through its encrypted form
        include.push("reasoning.encrypted_content".into());
    }
    if !include.is_empty() {
        body.insert("include".into(), json!(include));
    }
    Value::Object(body)
}

pub fn usage(v: &Value) -> Option<Usage> {
    if !v.is_object() {
        return None;
    }
    Some(Usage {
        input_tokens: u(&v["input_tokens"]),
        cached_tokens: u(&v["input_tokens_details"]["cached_tokens"]),
        output_tokens: u(&v["output_tokens"]),
        reasoning_tokens: u(&v["output_tokens_details"]["reasoning_tokens"]),
    })
}

fn finish_of(response: &Value) -> Finish {
    match response["status"].as_str() {
        Some("incomplete") => match response["incomplete_details"]["reason"].as_str() {
            Some("content_filter") => Finish::ContentFilter,
            _ => Finish::MaxTokens,
        },
        Some("failed") => Finish::Failed {
            code: response["error"]["code"]
                .as_str()
                .unwrap_or("upstream_error")
                .to_string(),
            message: response["error"]["message"]
                .as_str()
                .unwrap_or("the upstream failed")
                .to_string(),
        },
        _ => Finish::Completed,
    }
}

/// Deltas of a complete (non-streamed) response.
pub fn from_response(v: &Value) -> Vec<ProviderEvent> {
    let mut out = vec![];
    for item in v["output"].as_array().cloned().unwrap_or_default() {
        match item["type"].as_str() {
            Some("message") => {
                let text: String = item["content"]
                    .as_array()
                    .map(|c| {
                        c.iter()
                            .filter_map(|p| p["text"].as_str().or_else(|| p["refusal"].as_str()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(ProviderEvent::Delta(Delta::Text(text)));
            }
            Some("function_call") => {
                out.push(ProviderEvent::Delta(Delta::ToolCall {
                    call_id: item["call_id"].as_str().unwrap_or_default().to_string(),
                    name: item["name"].as_str().unwrap_or_default().to_string(),
                }));
                out.push(ProviderEvent::Delta(Delta::ToolArgs(
                    item["arguments"].as_str().unwrap_or_default().to_string(),
                )));
            }
            Some("reasoning") => {
                let text: String = item["summary"]
                    .as_array()
                    .map(|s| {
                        s.iter()
                            .filter_map(|p| p["text"].as_str())
                            .collect::<Vec<_>>()
                            .join("\n\n")
                    })
                    .unwrap_or_default();
                out.push(ProviderEvent::Delta(Delta::ReasoningText(text)));
                if let Some(e) = item["encrypted_content"].as_str() {
                    out.push(ProviderEvent::Delta(Delta::ReasoningEncrypted(
                        e.to_string(),
                    )));
                }
            }
            _ => out.push(ProviderEvent::Delta(Delta::Item(item))),
        }
    }
    if let Some(u) = usage(&v["usage"]) {
        out.push(ProviderEvent::Delta(Delta::Usage(u)));
    }
    out.push(ProviderEvent::Done(finish_of(v)));
    out
}

#[derive(Default)]
pub struct StreamState {
    /// Whether the current reasoning item already produced summary text.
    reasoning_parts: u32,
}

pub fn on_event(
    state: &mut StreamState,
    ev: SseEvent,
) -> Result<Vec<ProviderEvent>, UpstreamError> {
    if ev.data == "[DONE]" {
        return Ok(vec![]);
    }
    let v = parse_json(&ev.data)?;
    let kind = v["type"]
        .as_str()
        .or(ev.event.as_deref())
        .unwrap_or_default();
    let d = |delta: Delta| vec![ProviderEvent::Delta(delta)];
    Ok(match kind {
        "response.output_text.delta" | "response.refusal.delta" => d(Delta::Text(
            v["delta"].as_str().unwrap_or_default().to_string(),
        )),
        "response.reasoning_summary_text.delta" => {
            state.reasoning_parts += 1;
            d(Delta::ReasoningText(
                v["delta"].as_str().unwrap_or_default().to_string(),
            ))
        }
        "response.reasoning_summary_part.added" if state.reasoning_parts > 0 => {
            // a further summary part of the same item: keep the parts apart
            d(Delta::ReasoningText("\n\n".into()))
        }
        "response.function_call_arguments.delta" => d(Delta::ToolArgs(
            v["delta"].as_str().unwrap_or_default().to_string(),
        )),
        "response.output_item.added" => {
            let item = &v["item"];
            match item["type"].as_str() {
                Some("function_call") => d(Delta::ToolCall {
                    call_id: item["call_id"].as_str().unwrap_or_default().to_string(),
                    name: item["name"].as_str().unwrap_or_default().to_string(),
                }),
                Some("reasoning") => {
                    state.reasoning_parts = 0;
                    vec![]
                }
                _ => vec![],
            }
        }
        "response.output_item.done" => {
            let item = &v["item"];
            match item["type"].as_str() {
                Some("message") | Some("function_call") => vec![],
                Some("reasoning") => match item["encrypted_content"].as_str() {
                    Some(e) => d(Delta::ReasoningEncrypted(e.to_string())),
                    // a reasoning item without summary still belongs in the output
                    None if state.reasoning_parts == 0 => d(Delta::ReasoningText(String::new())),
                    None => vec![],
                },
                _ => d(Delta::Item(item.clone())),
            }
        }
        "response.completed" | "response.incomplete" | "response.failed" => {
            let r = &v["response"];
            let mut out = vec![];
            if let Some(u) = usage(&r["usage"]) {
                out.push(ProviderEvent::Delta(Delta::Usage(u)));
            }
            out.push(ProviderEvent::Done(finish_of(r)));
            out
        }
        "error" => vec![ProviderEvent::Done(Finish::Failed {
            code: v["code"].as_str().unwrap_or("upstream_error").to_string(),
            message: v["message"]
                .as_str()
                .unwrap_or("the upstream failed")
                .to_string(),
        })],
        _ => vec![],
    })
}
