//! Turns a provider's deltas into Responses API server-sent events (in OpenAI's order, one
//! response id throughout, `sequence_number` on every event) and the final response object.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::new_id;
use crate::providers::Delta;
use crate::sse::encode;

/// Token usage of a response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All input tokens, cached ones included.
    pub input_tokens: u64,
    pub cached_tokens: u64,
    /// All output tokens, reasoning ones included.
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn to_json(self) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        })
    }
}

/// How a response ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    Completed,
    /// `max_output_tokens` reached.
    MaxTokens,
    ContentFilter,
    Failed {
        code: String,
        message: String,
    },
}

/// The request fields a response object repeats.
#[derive(Debug, Clone)]
pub struct ResponseMeta {
    pub id: String,
    pub created_at: i64,
    /// The model as the client named it.
    pub model: String,
    pub instructions: Option<String>,
    pub max_output_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub tool_choice: Value,
    pub tools: Vec<Value>,
    pub truncation: String,
    pub reasoning: Option<Value>,
    pub metadata: Option<Value>,
    pub previous_response_id: Option<String>,
    pub store: bool,
    pub parallel_tool_calls: bool,
    pub text: Value,
}

enum Open {
    Message {
        id: String,
        text: String,
    },
    Function {
        id: String,
        call_id: String,
        name: String,
        args: String,
    },
    Reasoning {
        id: String,
        text: String,
        encrypted: Option<String>,
    },
}

pub struct Emitter {
    meta: ResponseMeta,
    streaming: bool,
    seq: u64,
    output: Vec<Value>,
    open: Option<Open>,
    usage: Option<Usage>,
    status: &'static str,
    finish: Option<Finish>,
    out: Vec<Bytes>,
}

impl Emitter {
    /// `streaming`: produce encoded events; otherwise only build the final response.
    pub fn new(meta: ResponseMeta, streaming: bool) -> Self {
        Emitter {
            meta,
            streaming,
            seq: 0,
            output: Vec::new(),
            open: None,
            usage: None,
            status: "in_progress",
            finish: None,
            out: Vec::new(),
        }
    }

    pub fn id(&self) -> &str {
        &self.meta.id
    }

    /// Encodes an event; `payload` is only built when streaming (a whole answer has no events).
    fn event(&mut self, kind: &str, payload: impl FnOnce() -> Value) {
        if !self.streaming {
            return;
        }
        let mut payload = payload();
        payload["type"] = json!(kind);
        payload["sequence_number"] = json!(self.seq);
        self.seq += 1;
        self.out.push(encode(kind, &payload));
    }

    fn drain(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.out)
    }

    /// `response.created` and `response.in_progress`.
    pub fn start(&mut self) -> Vec<Bytes> {
        // the same snapshot twice: nothing changes between the two
        let snapshot = self.response_object(false);
        let created = json!({"response": snapshot});
        self.event("response.created", || created);
        self.event("response.in_progress", || json!({"response": snapshot}));
        self.drain()
    }

    fn index(&self) -> usize {
        self.output.len()
    }

    fn close(&mut self) {
        let Some(open) = self.open.take() else { return };
        let output_index = self.index();
        let item = match open {
            Open::Message { id, text } => {
                self.event(
                    "response.output_text.done",
                    || json!({"item_id": id, "output_index": output_index, "content_index": 0, "text": text, "logprobs": []}),
                );
                let part =
                    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
                self.event(
                    "response.content_part.done",
                    || json!({"item_id": id, "output_index": output_index, "content_index": 0, "part": part}),
                );
                json!({"id": id, "type": "message", "status": "completed", "role": "assistant", "content": [part]})
            }
            Open::Function {
                id,
                call_id,
                name,
                args,
            } => {
                self.event(
                    "response.function_call_arguments.done",
                    || json!({"item_id": id, "output_index": output_index, "name": name, "arguments": args}),
                );
                json!({"id": id, "type": "function_call", "status": "completed", "call_id": call_id, "name": name, "arguments": args})
            }
            Open::Reasoning {
                id,
                text,
                encrypted,
            } => {
                self.event(
                    "response.reasoning_summary_text.done",
                    || json!({"item_id": id, "output_index": output_index, "summary_index": 0, "text": text}),
                );
                let part = json!({"type": "summary_text", "text": text});
                self.event(
                    "response.reasoning_summary_part.done",
                    || json!({"item_id": id, "output_index": output_index, "summary_index": 0, "part": part}),
                );
                let mut item = json!({"id": id, "type": "reasoning", "summary": [part]});
                if let Some(e) = encrypted {
                    item["encrypted_content"] = json!(e);
                }
                item
            }
        };
        self.event(
            "response.output_item.done",
            || json!({"output_index": output_index, "item": item}),
        );
        self.output.push(item);
    }

    fn open_message(&mut self) {
        let id = new_id("msg");
        let output_index = self.index();
        self.event(
            "response.output_item.added",
            || json!({"output_index": output_index, "item": {"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}}),
        );
        self.event("response.content_part.added", || {
            json!({"item_id": id, "output_index": output_index, "content_index": 0,
                   "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})
        });
        self.open = Some(Open::Message {
            id,
            text: String::new(),
        });
    }

    fn open_reasoning(&mut self) {
        let id = new_id("rs");
        let output_index = self.index();
        self.event(
            "response.output_item.added",
            || json!({"output_index": output_index, "item": {"id": id, "type": "reasoning", "summary": []}}),
        );
        self.event(
            "response.reasoning_summary_part.added",
            || json!({"item_id": id, "output_index": output_index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}),
        );
        self.open = Some(Open::Reasoning {
            id,
            text: String::new(),
            encrypted: None,
        });
    }

    /// Applies one delta; returns the events it produced.
    pub fn push(&mut self, delta: Delta) -> Vec<Bytes> {
        match delta {
            Delta::Text(t) => {
                if !matches!(self.open, Some(Open::Message { .. })) {
                    self.close();
                    self.open_message();
                }
                let output_index = self.index();
                if let Some(Open::Message { id, text }) = &mut self.open {
                    text.push_str(&t);
                    let id = id.clone();
                    self.event(
                        "response.output_text.delta",
                        || json!({"item_id": id, "output_index": output_index, "content_index": 0, "delta": t, "logprobs": []}),
                    );
                }
            }
            Delta::ReasoningText(t) => {
                if !matches!(self.open, Some(Open::Reasoning { .. })) {
                    self.close();
                    self.open_reasoning();
                }
                let output_index = self.index();
                if let Some(Open::Reasoning { id, text, .. }) = &mut self.open {
                    text.push_str(&t);
                    let id = id.clone();
                    self.event(
                        "response.reasoning_summary_text.delta",
                        || json!({"item_id": id, "output_index": output_index, "summary_index": 0, "delta": t}),
                    );
                }
            }
            Delta::ReasoningEncrypted(e) => {
                if !matches!(self.open, Some(Open::Reasoning { .. })) {
                    self.close();
                    self.open_reasoning();
                }
                if let Some(Open::Reasoning { encrypted, .. }) = &mut self.open {
                    *encrypted = Some(e);
                }
            }
            Delta::ToolCall { call_id, name } => {
                self.close();
                let id = new_id("fc");
                let output_index = self.index();
                self.event(
                    "response.output_item.added",
                    || json!({"output_index": output_index, "item": {"id": id, "type": "function_call", "status": "in_progress",
                           "call_id": call_id, "name": name, "arguments": ""}}),
                );
                self.open = Some(Open::Function {
                    id,
                    call_id,
                    name,
                    args: String::new(),
                });
            }
            Delta::ToolArgs(a) => {
                let output_index = self.index();
                if let Some(Open::Function { id, args, .. }) = &mut self.open {
                    args.push_str(&a);
                    let id = id.clone();
                    self.event(
                        "response.function_call_arguments.delta",
                        || json!({"item_id": id, "output_index": output_index, "delta": a}),
                    );
                }
            }
            Delta::Item(mut item) => {
                self.close();
                if item.get("id").is_none() {
                    item["id"] = json!(new_id("item"));
                }
                let output_index = self.index();
                self.event(
                    "response.output_item.added",
                    || json!({"output_index": output_index, "item": item}),
                );
                self.event(
                    "response.output_item.done",
                    || json!({"output_index": output_index, "item": item}),
                );
                self.output.push(item);
            }
            Delta::Usage(u) => self.usage = Some(u),
        }
        self.drain()
    }

    /// Closes the response: the last item's `.done` events and `response.completed`,
    /// `response.incomplete` or `response.failed`.
    pub fn finish(&mut self, finish: Finish) -> Vec<Bytes> {
        self.close();
        let kind = match &finish {
            Finish::Completed => {
                self.status = "completed";
                "response.completed"
            }
            Finish::MaxTokens | Finish::ContentFilter => {
                self.status = "incomplete";
                "response.incomplete"
            }
            Finish::Failed { .. } => {
                self.status = "failed";
                "response.failed"
            }
        };
        self.finish = Some(finish);
        if self.streaming {
            let response = self.response_object(true);
            self.event(kind, || json!({"response": response}));
        }
        self.drain()
    }

    /// An `error` event (a failure after streaming began), before `finish(Failed)`.
    pub fn error(&mut self, code: &str, message: &str) -> Vec<Bytes> {
        self.event(
            "error",
            || json!({"code": code, "message": message, "param": null}),
        );
        self.drain()
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub fn output(&self) -> &[Value] {
        &self.output
    }

    pub fn status(&self) -> &'static str {
        self.status
    }

    /// The response object; `complete` adds output, usage, `output_text` and `tool_calls`.
    pub fn response_object(&self, complete: bool) -> Value {
        let m = &self.meta;
        let mut r = json!({
            "id": m.id,
            "object": "response",
            "created_at": m.created_at,
            "status": self.status,
            "error": null,
            "incomplete_details": null,
            "instructions": m.instructions,
            "max_output_tokens": m.max_output_tokens,
            "model": m.model,
            "output": [],
            "parallel_tool_calls": m.parallel_tool_calls,
            "previous_response_id": m.previous_response_id,
            "reasoning": m.reasoning.clone().unwrap_or_else(|| json!({"effort": null, "summary": null})),
            "store": m.store,
            "temperature": m.temperature,
            "text": m.text,
            "tool_choice": m.tool_choice,
            "tools": m.tools,
            "top_p": m.top_p,
            "truncation": m.truncation,
            "usage": null,
            "user": null,
            "metadata": m.metadata.clone().unwrap_or_else(|| json!({})),
        });
        if !complete {
            return r;
        }
        r["output"] = json!(self.output);
        r["usage"] = self.usage.map(Usage::to_json).unwrap_or(Value::Null);
        match &self.finish {
            Some(Finish::MaxTokens) => {
                r["incomplete_details"] = json!({"reason": "max_output_tokens"})
            }
            Some(Finish::ContentFilter) => {
                r["incomplete_details"] = json!({"reason": "content_filter"})
            }
            Some(Finish::Failed { code, message }) => {
                r["error"] = json!({"code": code, "message": message})
            }
            _ => {}
        }
        r["output_text"] = json!(output_text(&self.output));
        r["tool_calls"] = json!(tool_calls(&self.output));
        r
    }
}

/// The text of every message in the output, concatenated.
pub fn output_text(output: &[Value]) -> String {
    output
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["type"] == "output_text")
        .filter_map(|p| p["text"].as_str().map(str::to_string))
        .collect()
}

/// The function calls of the output in Chat Completions form.
pub fn tool_calls(output: &[Value]) -> Vec<Value> {
    output
        .iter()
        .filter(|i| i["type"] == "function_call")
        .map(|i| json!({"id": i["call_id"], "type": "function", "function": {"name": i["name"], "arguments": i["arguments"]}}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn meta() -> ResponseMeta {
        ResponseMeta {
            id: "resp_1".into(),
            created_at: 1,
            model: "m".into(),
            instructions: None,
            max_output_tokens: None,
            temperature: None,
            top_p: None,
            tool_choice: json!("auto"),
            tools: vec![],
            truncation: "disabled".into(),
            reasoning: None,
            metadata: None,
            previous_response_id: None,
            store: true,
            parallel_tool_calls: true,
            text: json!({"format": {"type": "text"}}),
        }
    }

    fn kinds(events: &[Bytes]) -> Vec<String> {
        events
            .iter()
            .map(|b| {
                let s = std::str::from_utf8(b).unwrap();
                s.lines()
                    .next()
                    .unwrap()
                    .trim_start_matches("event: ")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn events_follow_openai_order() {
        let mut e = Emitter::new(meta(), true);
        let mut all = e.start();
        all.extend(e.push(Delta::ReasoningText("think".into())));
        all.extend(e.push(Delta::Text("Hel".into())));
        all.extend(e.push(Delta::Text("lo".into())));
        all.extend(e.push(Delta::ToolCall {
            call_id: "call_1".into(),
            name: "f".into(),
        }));
        all.extend(e.push(Delta::ToolArgs("{}".into())));
        all.extend(e.push(Delta::Usage(Usage {
            input_tokens: 3,
            cached_tokens: 1,
            output_tokens: 5,
            reasoning_tokens: 2,
        })));
        all.extend(e.finish(Finish::Completed));
        assert_eq!(
            kinds(&all),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        // sequence numbers count up from 0
        for (i, b) in all.iter().enumerate() {
            let data = std::str::from_utf8(b)
                .unwrap()
                .lines()
                .nth(1)
                .unwrap()
                .trim_start_matches("data: ");
            let v: Value = serde_json::from_str(data).unwrap();
            assert_eq!(v["sequence_number"], i as u64);
        }
        let r = e.response_object(true);
        assert_eq!(r["status"], "completed");
        assert_eq!(r["output_text"], "Hello");
        assert_eq!(r["tool_calls"][0]["function"]["name"], "f");
        assert_eq!(r["usage"]["total_tokens"], 8);
        assert_eq!(r["output"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn incomplete_and_failed() {
        let mut e = Emitter::new(meta(), false);
        e.push(Delta::Text("x".into()));
        assert!(e.finish(Finish::MaxTokens).is_empty());
        let r = e.response_object(true);
        assert_eq!(r["status"], "incomplete");
        assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
        let mut e = Emitter::new(meta(), true);
        e.start();
        let ev = e.error("upstream_error", "boom");
        assert_eq!(kinds(&ev), ["error"]);
        e.finish(Finish::Failed {
            code: "upstream_error".into(),
            message: "boom".into(),
        });
        assert_eq!(e.response_object(true)["error"]["code"], "upstream_error");
    }
}
