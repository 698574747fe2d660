//! A fake LLM upstream for tests and benchmarks. It speaks three wire formats:
//! `POST /v1/responses` (OpenAI Responses), `POST /v1/chat/completions` (Chat Completions) and
//! `POST /v1/messages` (Anthropic Messages), streamed (SSE) or not.
//!
//! Behaviour is chosen by the model name: `mock` or `mock?tokens=N&in=N&cached=N&delay_ms=N&status=N&fail_first=N&think=1&cut=N`:
//! - `tokens`: output words (default 5), each a streamed chunk, `delay_ms` apart;
//! - `in`, `cached`: the input tokens it reports (default 11 and 0);
//! - `status`: answer every request with this HTTP error;
//! - `fail_first`: answer the first N requests for this model name (per wire format) with 503;
//! - `think`: reason (summary / thinking) before answering;
//! - `cut`: break the stream after N chunks, without finishing.
//!
//! With function tools and a user message last, it calls the first tool (`{"city":"Paris"}`);
//! with a tool result last, it answers `The tool said: RESULT`. `GET /_requests` returns the
//! last 100 request bodies, `DELETE /_requests` forgets them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

#[derive(Default)]
struct Shared {
    requests: Mutex<VecDeque<Value>>,
    failures: Mutex<HashMap<String, u64>>,
}

type St = Arc<Shared>;

pub fn router() -> axum::Router {
    axum::Router::new()
        .route("/v1/responses", post(responses))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/messages", post(messages))
        .route("/_requests", get(list_requests).delete(clear_requests))
        .with_state(Arc::new(Shared::default()))
}

pub async fn serve(listener: tokio::net::TcpListener) {
    use axum::serve::ListenerExt as _;
    // like a real upstream: every streamed chunk leaves at once
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router()).await.expect("serve");
}

/// Starts the mock on an ephemeral port in the background; returns its base URL (`http://ADDR/v1`).
pub async fn spawn() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener));
    format!("http://{addr}/v1")
}

#[derive(Clone)]
struct Plan {
    tokens: usize,
    input: u64,
    cached: u64,
    delay: Duration,
    status: Option<u16>,
    fail_first: u64,
    think: bool,
    cut: Option<usize>,
    stream: bool,
    /// The function to call, when the model should call one.
    call: Option<String>,
    /// The tool result to answer about, when the last item is one.
    tool_result: Option<String>,
}

fn plan(
    model: &str,
    body: &Value,
    stream: bool,
    call: Option<String>,
    tool_result: Option<String>,
) -> Plan {
    let mut p = Plan {
        tokens: 5,
        input: 11,
        cached: 0,
        delay: Duration::ZERO,
        status: None,
        fail_first: 0,
        think: false,
        cut: None,
        stream,
        call,
        tool_result,
    };
    if let Some((_, q)) = model.split_once('?') {
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, "1"));
            let n: u64 = v.parse().unwrap_or(0);
            match k {
                "tokens" => p.tokens = n as usize,
                "in" => p.input = n,
                "cached" => p.cached = n,
                "delay_ms" => p.delay = Duration::from_millis(n),
                "status" => p.status = Some(n as u16),
                "fail_first" => p.fail_first = n,
                "think" => p.think = n > 0,
                "cut" => p.cut = Some(n as usize),
                _ => {}
            }
        }
    }
    let _ = body;
    p
}

const WORDS: [&str; 5] = ["Hello", "from", "the", "mock", "upstream"];

fn words(p: &Plan) -> Vec<String> {
    if let Some(r) = &p.tool_result {
        return format!("The tool said: {r}")
            .split(' ')
            .map(str::to_string)
            .collect();
    }
    (0..p.tokens)
        .map(|i| WORDS[i % WORDS.len()].to_string())
        .collect()
}

fn record(st: &St, body: &Value) {
    let mut r = st.requests.lock().expect("lock");
    if r.len() >= 100 {
        r.pop_front();
    }
    r.push_back(body.clone());
}

/// An error answer when the plan asks for one.
fn failure(st: &St, model: &str, p: &Plan, format: Format) -> Option<Response> {
    let status = match p.status {
        Some(s) => s,
        None if p.fail_first > 0 => {
            let mut f = st.failures.lock().expect("lock");
            // counted per wire format and model name
            let key = format!("{}:{model}", format as u8);
            let n = f.entry(key).or_default();
            *n += 1;
            if *n <= p.fail_first { 503 } else { return None }
        }
        None => return None,
    };
    let body = match format {
        Format::Anthropic => {
            json!({"type": "error", "error": {"type": "api_error", "message": format!("mock error {status}")}})
        }
        _ => {
            json!({"error": {"message": format!("mock error {status}"), "type": "api_error", "code": null}})
        }
    };
    Some(
        (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(body),
        )
            .into_response(),
    )
}

#[derive(Clone, Copy)]
enum Format {
    Responses,
    Chat,
    Anthropic,
}

fn sse(kind: Option<&str>, v: &Value) -> Bytes {
    match kind {
        Some(k) => Bytes::from(format!("event: {k}\ndata: {v}\n\n")),
        None => Bytes::from(format!("data: {v}\n\n")),
    }
}

/// Streams `chunks`, `delay` apart; with `cut`, stops early without the rest.
fn stream_response(chunks: Vec<Bytes>, delay: Duration, cut: Option<usize>) -> Response {
    let limit = cut.unwrap_or(usize::MAX);
    let s = futures_util::stream::unfold(
        (chunks.into_iter().take(limit), 0usize),
        move |(mut it, i)| async move {
            let next = it.next()?;
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Some((Ok::<Bytes, std::io::Error>(next), (it, i + 1)))
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(s))
        .expect("response")
}

// ---------------------------------------------------------------- OpenAI Responses

fn last_item_kind(items: &[Value]) -> (&str, Option<String>) {
    match items.last() {
        Some(i) if i["type"] == "function_call_output" => (
            "tool_result",
            Some(
                i["output"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| i["output"].to_string()),
            ),
        ),
        Some(i) if i["role"] == "user" => ("user", None),
        _ => ("other", None),
    }
}

fn first_tool(tools: &Value) -> Option<String> {
    tools.as_array()?.iter().find_map(|t| {
        t["name"]
            .as_str()
            .or_else(|| t["function"]["name"].as_str())
            .map(str::to_string)
    })
}

async fn responses(State(st): State<St>, Json(body): Json<Value>) -> Response {
    record(&st, &body);
    let model = body["model"].as_str().unwrap_or("mock").to_string();
    let items = match &body["input"] {
        Value::Array(a) => a.clone(),
        Value::String(s) => vec![json!({"role": "user", "content": s})],
        _ => vec![],
    };
    let (last, result) = last_item_kind(&items);
    let call = if last == "user" {
        first_tool(&body["tools"])
    } else {
        None
    };
    let p = plan(&model, &body, body["stream"] == true, call, result);
    if let Some(r) = failure(&st, &model, &p, Format::Responses) {
        return r;
    }
    let id = "resp_mock";
    let usage = json!({"input_tokens": p.input, "input_tokens_details": {"cached_tokens": p.cached},
                       "output_tokens": p.tokens as u64, "output_tokens_details": {"reasoning_tokens": if p.think { 3 } else { 0 }},
                       "total_tokens": p.input + p.tokens as u64});
    let text_words = words(&p);
    let text = text_words.join(" ");
    let mut output = vec![];
    if p.think {
        output.push(json!({"id": "rs_mock", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Thinking it over."}], "encrypted_content": "enc_mock"}));
    }
    match &p.call {
        Some(name) => output.push(json!({"id": "fc_mock", "type": "function_call", "status": "completed", "call_id": "call_mock_1", "name": name, "arguments": "{\"city\":\"Paris\"}"})),
        None => output.push(json!({"id": "msg_mock", "type": "message", "status": "completed", "role": "assistant",
                                   "content": [{"type": "output_text", "text": text, "annotations": []}]})),
    }
    let complete = json!({"id": id, "object": "response", "created_at": 1, "status": "completed", "model": model,
                          "output": output, "usage": usage, "error": null, "incomplete_details": null});
    if !p.stream {
        return Json(complete).into_response();
    }
    let mut seq = 0u64;
    let mut ev = |kind: &str, mut v: Value| {
        v["type"] = json!(kind);
        v["sequence_number"] = json!(seq);
        seq += 1;
        sse(Some(kind), &v)
    };
    let shell = json!({"id": id, "object": "response", "created_at": 1, "status": "in_progress", "model": model, "output": []});
    let mut chunks = vec![
        ev("response.created", json!({"response": shell})),
        ev("response.in_progress", json!({"response": shell})),
    ];
    let mut index = 0;
    if p.think {
        chunks.push(ev("response.output_item.added", json!({"output_index": index, "item": {"id": "rs_mock", "type": "reasoning", "summary": []}})));
        chunks.push(ev("response.reasoning_summary_part.added", json!({"item_id": "rs_mock", "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}})));
        chunks.push(ev("response.reasoning_summary_text.delta", json!({"item_id": "rs_mock", "output_index": index, "summary_index": 0, "delta": "Thinking it over."})));
        chunks.push(ev("response.reasoning_summary_text.done", json!({"item_id": "rs_mock", "output_index": index, "summary_index": 0, "text": "Thinking it over."})));
        chunks.push(ev(
            "response.output_item.done",
            json!({"output_index": index, "item": output[0]}),
        ));
        index += 1;
    }
    match &p.call {
        Some(name) => {
            chunks.push(ev("response.output_item.added", json!({"output_index": index, "item": {"id": "fc_mock", "type": "function_call", "status": "in_progress", "call_id": "call_mock_1", "name": name, "arguments": ""}})));
            for part in ["{\"city\":", "\"Paris\"}"] {
                chunks.push(ev(
                    "response.function_call_arguments.delta",
                    json!({"item_id": "fc_mock", "output_index": index, "delta": part}),
                ));
            }
            chunks.push(ev("response.function_call_arguments.done", json!({"item_id": "fc_mock", "output_index": index, "arguments": "{\"city\":\"Paris\"}"})));
            chunks.push(ev(
                "response.output_item.done",
                json!({"output_index": index, "item": output[index]}),
            ));
        }
        None => {
            chunks.push(ev("response.output_item.added", json!({"output_index": index, "item": {"id": "msg_mock", "type": "message", "status": "in_progress", "role": "assistant", "content": []}})));
            chunks.push(ev("response.content_part.added", json!({"item_id": "msg_mock", "output_index": index, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}})));
            for (i, w) in text_words.iter().enumerate() {
                let delta = if i == 0 { w.clone() } else { format!(" {w}") };
                chunks.push(ev("response.output_text.delta", json!({"item_id": "msg_mock", "output_index": index, "content_index": 0, "delta": delta, "logprobs": []})));
            }
            chunks.push(ev("response.output_text.done", json!({"item_id": "msg_mock", "output_index": index, "content_index": 0, "text": text, "logprobs": []})));
            chunks.push(ev("response.content_part.done", json!({"item_id": "msg_mock", "output_index": index, "content_index": 0, "part": {"type": "output_text", "text": text, "annotations": []}})));
            chunks.push(ev(
                "response.output_item.done",
                json!({"output_index": index, "item": output[index]}),
            ));
        }
    }
    chunks.push(ev("response.completed", json!({"response": complete})));
    stream_response(chunks, p.delay, p.cut)
}

// ---------------------------------------------------------------- Chat Completions

async fn chat(State(st): State<St>, Json(body): Json<Value>) -> Response {
    record(&st, &body);
    let model = body["model"].as_str().unwrap_or("mock").to_string();
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let result =
        (last["role"] == "tool").then(|| last["content"].as_str().unwrap_or_default().to_string());
    let call = if last["role"] == "user" {
        first_tool(&body["tools"])
    } else {
        None
    };
    let p = plan(&model, &body, body["stream"] == true, call, result);
    if let Some(r) = failure(&st, &model, &p, Format::Chat) {
        return r;
    }
    let usage = json!({"prompt_tokens": p.input, "completion_tokens": p.tokens as u64, "total_tokens": p.input + p.tokens as u64,
                       "prompt_tokens_details": {"cached_tokens": p.cached}, "completion_tokens_details": {"reasoning_tokens": 0}});
    let text_words = words(&p);
    let text = text_words.join(" ");
    if !p.stream {
        let message = match &p.call {
            Some(name) => {
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_mock_1", "type": "function", "function": {"name": name, "arguments": "{\"city\":\"Paris\"}"}}]})
            }
            None if p.think => {
                json!({"role": "assistant", "content": text, "reasoning_content": "Thinking it over."})
            }
            None => json!({"role": "assistant", "content": text}),
        };
        let finish = if p.call.is_some() {
            "tool_calls"
        } else {
            "stop"
        };
        return Json(json!({"id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
                           "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        sse(
            None,
            &json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
                          "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
        )
    };
    let mut chunks = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    if p.think {
        chunks.push(chunk(
            json!({"reasoning_content": "Thinking it over."}),
            Value::Null,
        ));
    }
    let finish = match &p.call {
        Some(name) => {
            chunks.push(chunk(json!({"tool_calls": [{"index": 0, "id": "call_mock_1", "type": "function", "function": {"name": name, "arguments": ""}}]}), Value::Null));
            for part in ["{\"city\":", "\"Paris\"}"] {
                chunks.push(chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                    Value::Null,
                ));
            }
            "tool_calls"
        }
        None => {
            for (i, w) in text_words.iter().enumerate() {
                let delta = if i == 0 { w.clone() } else { format!(" {w}") };
                chunks.push(chunk(json!({"content": delta}), Value::Null));
            }
            "stop"
        }
    };
    chunks.push(chunk(json!({}), json!(finish)));
    if body["stream_options"]["include_usage"] == true {
        chunks.push(sse(None, &json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model, "choices": [], "usage": usage})));
    }
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    stream_response(chunks, p.delay, p.cut)
}

// ---------------------------------------------------------------- Anthropic Messages

async fn messages(State(st): State<St>, Json(body): Json<Value>) -> Response {
    record(&st, &body);
    let model = body["model"].as_str().unwrap_or("mock").to_string();
    let msgs = body["messages"].as_array().cloned().unwrap_or_default();
    let last = msgs.last().cloned().unwrap_or(Value::Null);
    let last_block = last["content"]
        .as_array()
        .and_then(|c| c.last().cloned())
        .unwrap_or(Value::Null);
    let result = (last_block["type"] == "tool_result").then(|| {
        last_block["content"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    let call = if last["role"] == "user" && result.is_none() {
        first_tool(&body["tools"])
    } else {
        None
    };
    let think = body["thinking"]["type"] == "enabled";
    let mut p = plan(&model, &body, body["stream"] == true, call, result);
    p.think |= think;
    if let Some(r) = failure(&st, &model, &p, Format::Anthropic) {
        return r;
    }
    let text_words = words(&p);
    let text = text_words.join(" ");
    let input_usage = json!({"input_tokens": p.input - p.cached, "cache_read_input_tokens": p.cached, "cache_creation_input_tokens": 0, "output_tokens": 1});
    let stop = if p.call.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    if !p.stream {
        let mut content = vec![];
        if p.think {
            content.push(json!({"type": "thinking", "thinking": "Thinking it over.", "signature": "sig_mock"}));
        }
        match &p.call {
            Some(name) => content.push(json!({"type": "tool_use", "id": "toolu_mock_1", "name": name, "input": {"city": "Paris"}})),
            None => content.push(json!({"type": "text", "text": text})),
        }
        let mut usage = input_usage.clone();
        usage["output_tokens"] = json!(p.tokens as u64);
        return Json(json!({"id": "msg_mock", "type": "message", "role": "assistant", "model": model, "content": content,
                           "stop_reason": stop, "stop_sequence": null, "usage": usage}))
        .into_response();
    }
    let ev = |kind: &str, v: Value| sse(Some(kind), &v);
    let mut chunks = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_mock", "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": null, "usage": input_usage}}),
    )];
    let mut index = 0;
    if p.think {
        chunks.push(ev("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": ""}})));
        chunks.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": "Thinking it over."}})));
        chunks.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": "sig_mock"}})));
        chunks.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    chunks.push(ev("ping", json!({"type": "ping"})));
    match &p.call {
        Some(name) => {
            chunks.push(ev("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": "toolu_mock_1", "name": name, "input": {}}})));
            for part in ["{\"city\":", "\"Paris\"}"] {
                chunks.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": part}})));
            }
        }
        None => {
            chunks.push(ev("content_block_start", json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})));
            for (i, w) in text_words.iter().enumerate() {
                let delta = if i == 0 { w.clone() } else { format!(" {w}") };
                chunks.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": delta}})));
            }
        }
    }
    chunks.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    ));
    chunks.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": p.tokens as u64}})));
    chunks.push(ev("message_stop", json!({"type": "message_stop"})));
    stream_response(chunks, p.delay, p.cut)
}

async fn list_requests(State(st): State<St>) -> Json<Value> {
    Json(json!(
        st.requests
            .lock()
            .expect("lock")
            .iter()
            .cloned()
            .collect::<Vec<_>>()
    ))
}

async fn clear_requests(State(st): State<St>) -> StatusCode {
    st.requests.lock().expect("lock").clear();
    StatusCode::NO_CONTENT
}
