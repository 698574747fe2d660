//! The LLM gateway against a local fake upstream speaking the real wire formats.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

const PROVIDERS: [&str; 3] = ["openai", "openai-chat", "anthropic"];

/// `[[models]]` for every provider and behaviour of the mock, named `{provider}{suffix}`.
fn models_toml(mock: &str, extra: &str) -> String {
    let variants = [
        ("", "mock?in=20&cached=5&tokens=6"),
        ("-slow", "mock?in=20&cached=5&tokens=200&delay_ms=10"),
        ("-cut", "mock?in=20&tokens=50&cut=6"),
        ("-think", "mock?in=20&tokens=4&think=1"),
        ("-429", "mock?status=429"),
        ("-500", "mock?status=500"),
        ("-400", "mock?status=400"),
        ("-flaky", "mock?in=20&tokens=3&fail_first=1"),
    ];
    let mut s = String::from(extra);
    for p in PROVIDERS {
        for (suffix, upstream) in variants {
            s.push_str(&format!(
                "[[models]]\nname = \"{p}{suffix}\"\nprovider = \"{p}\"\nbase_url = \"{mock}\"\nupstream_model = \"{upstream}\"\n\
                 input_cents_per_mtok = 100\ncached_input_cents_per_mtok = 10\noutput_cents_per_mtok = 400\n\n"
            ));
        }
    }
    s
}

struct Gw {
    app: TestApp,
    mock: String,
    user: TestUser,
    org_id: String,
}

async fn gateway_with(extra_toml: &str, vars: &[(&str, &str)]) -> Gw {
    let mock = thesis_mock_llm::spawn().await;
    let app = TestApp::spawn_full(vars, &models_toml(&mock, extra_toml), None).await;
    let user = app.signup("dev@example.com").await;
    let org = app.create_org(&user.token, "Lab").await;
    Gw {
        app,
        mock,
        user,
        org_id: org["id"].as_str().unwrap().to_string(),
    }
}

async fn gateway() -> Gw {
    // a generous free limit: these tests are about the gateway, not the limits
    gateway_with("[plans.free]\ndaily_limit_cents = 100000\n", &[]).await
}

async fn create(gw: &Gw, body: Value) -> (StatusCode, Value) {
    gw.app
        .post("/v1/responses", Some(&gw.user.token), body)
        .await
}

/// Parses an SSE body into (event name, data) pairs.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (name, serde_json::from_str(&data).unwrap_or(Value::Null))
        })
        .collect()
}

async fn stream(gw: &Gw, body: Value) -> (StatusCode, Vec<(String, Value)>) {
    let res = gw
        .app
        .client
        .post(gw.app.url("/v1/responses"))
        .bearer_auth(&gw.user.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    if status == StatusCode::OK {
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
    }
    (status, events(&res.text().await.unwrap()))
}

async fn upstream_requests(gw: &Gw) -> Vec<Value> {
    let url = gw.mock.trim_end_matches("/v1").to_string() + "/_requests";
    reqwest::get(url)
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

/// How many of the tasks answered `true` (each a request that succeeded).
async fn successes(tasks: Vec<tokio::task::JoinHandle<bool>>) -> i64 {
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() {
            ok += 1;
        }
    }
    ok
}

async fn usage_records(gw: &Gw) -> Vec<Value> {
    let (_, r) = gw
        .app
        .get("/v1/usage-record?limit=100", Some(&gw.user.token))
        .await;
    r.as_array().cloned().unwrap_or_default()
}

/// Cost in cents of `uncached` + `cached` input and `output` tokens at 100 / 10 / 400 cents per
/// million tokens.
fn cost(uncached: i64, cached: i64, output: i64) -> f64 {
    (uncached * 100_000 + cached * 10_000 + output * 400_000) as f64 / 1e9
}

fn check_stream_shape(evs: &[(String, Value)]) -> Value {
    assert_eq!(evs[0].0, "response.created", "{evs:?}");
    assert_eq!(evs[1].0, "response.in_progress");
    let id = evs[0].1["response"]["id"].as_str().unwrap().to_string();
    for (i, (name, data)) in evs.iter().enumerate() {
        assert_eq!(data["type"], name.as_str(), "the event name and type agree");
        assert_eq!(
            data["sequence_number"], i as u64,
            "sequence numbers count up: {name}"
        );
        if let Some(r) = data.get("response") {
            assert_eq!(r["id"], id.as_str(), "one response id throughout");
        }
    }
    evs.last().unwrap().1["response"].clone()
}

#[tokio::test]
async fn every_provider_answers_whole_and_streamed_with_exact_usage() {
    let gw = gateway().await;
    for p in PROVIDERS {
        let (status, r) = create(
            &gw,
            json!({"model": p, "input": "Say hello", "instructions": "Be brief."}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{p}: {r}");
        assert_eq!(r["object"], "response");
        assert_eq!(r["status"], "completed");
        assert_eq!(r["model"], p, "the model as the client named it");
        assert!(r["id"].as_str().unwrap().starts_with("resp_"));
        assert_eq!(
            r["output_text"], "Hello from the mock upstream Hello",
            "{p}"
        );
        assert_eq!(r["output"][0]["type"], "message");
        assert_eq!(r["usage"]["input_tokens"], 20, "{p}: {r}");
        assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 5);
        assert_eq!(r["usage"]["output_tokens"], 6);
        assert_eq!(r["tool_calls"], json!([]));

        let (status, evs) = stream(
            &gw,
            json!({"model": p, "input": "Say hello", "stream": true}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let final_response = check_stream_shape(&evs);
        assert_eq!(evs.last().unwrap().0, "response.completed", "{p}");
        assert_eq!(
            final_response["output_text"],
            "Hello from the mock upstream Hello"
        );
        let deltas: String = evs
            .iter()
            .filter(|(n, _)| n == "response.output_text.delta")
            .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(deltas, "Hello from the mock upstream Hello");
        let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
        for expected in [
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
        ] {
            assert!(names.contains(&expected), "{p}: missing {expected}");
        }
    }
    // six responses, each metered once at the model's prices
    let records = usage_records(&gw).await;
    assert_eq!(records.len(), 6);
    for r in &records {
        assert_eq!(r["metricType"], "tokens");
        assert_eq!(r["inputTokens"], 20);
        assert_eq!(r["cachedTokens"], 5);
        assert_eq!(r["outputTokens"], 6);
        assert_eq!(r["costCents"].as_f64().unwrap(), cost(15, 5, 6));
        assert!(PROVIDERS.contains(&r["model"].as_str().unwrap()));
    }
}

#[tokio::test]
async fn function_calling_round_trip_on_every_provider() {
    let gw = gateway().await;
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather of a city",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    for p in PROVIDERS {
        for streamed in [false, true] {
            let body = json!({"model": p, "input": "Weather in Paris?", "tools": tools, "stream": streamed});
            let first = if streamed {
                let (status, evs) = stream(&gw, body).await;
                assert_eq!(status, StatusCode::OK);
                let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
                assert!(
                    names.contains(&"response.function_call_arguments.delta"),
                    "{p}: {names:?}"
                );
                assert!(
                    names.contains(&"response.function_call_arguments.done"),
                    "{p}"
                );
                check_stream_shape(&evs)
            } else {
                let (status, r) = create(&gw, body).await;
                assert_eq!(status, StatusCode::OK, "{r}");
                r
            };
            let call = &first["output"][0];
            assert_eq!(call["type"], "function_call", "{p}: {first}");
            assert_eq!(call["name"], "get_weather");
            assert_eq!(
                serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
                json!({"city": "Paris"})
            );
            let call_id = call["call_id"].as_str().unwrap().to_string();
            assert_eq!(first["tool_calls"][0]["id"], call_id.as_str());
            assert_eq!(first["tool_calls"][0]["function"]["name"], "get_weather");

            // send the result back with the call: the model answers about it
            let (status, second) = create(
                &gw,
                json!({"model": p, "tools": tools, "input": [
                    {"role": "user", "content": "Weather in Paris?"},
                    {"type": "function_call", "call_id": call_id, "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                    {"type": "function_call_output", "call_id": call_id, "output": "sunny, 21C"},
                ]}),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{second}");
            assert_eq!(second["output_text"], "The tool said: sunny, 21C", "{p}");
        }
    }
    // what the Chat Completions and Anthropic upstreams were sent for the second turn
    let requests = upstream_requests(&gw).await;
    let chat = requests
        .iter()
        .rev()
        .find(|r| r["messages"].is_array() && r.get("max_tokens").is_none())
        .unwrap();
    let roles: Vec<&str> = chat["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool"]);
    assert_eq!(
        chat["messages"][1]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(
        chat["tools"][0]["function"]["parameters"]["required"][0],
        "city"
    );
    let anthropic = requests
        .iter()
        .rev()
        .find(|r| r.get("max_tokens").is_some())
        .unwrap();
    let blocks: Vec<&str> = anthropic["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| {
            m["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["type"].as_str().unwrap())
        })
        .collect();
    assert_eq!(blocks, ["text", "tool_use", "tool_result"]);
    assert_eq!(
        anthropic["tools"][0]["input_schema"]["properties"]["city"]["type"],
        "string"
    );
}

#[tokio::test]
async fn reasoning_and_thinking_become_reasoning_items() {
    let gw = gateway().await;
    for p in PROVIDERS {
        let model = format!("{p}-think");
        let (status, evs) = stream(&gw, json!({"model": model, "input": "Think first", "stream": true, "reasoning": {"effort": "low"}, "max_output_tokens": 4000})).await;
        assert_eq!(status, StatusCode::OK);
        let r = check_stream_shape(&evs);
        assert_eq!(r["output"][0]["type"], "reasoning", "{p}: {r}");
        assert_eq!(r["output"][0]["summary"][0]["text"], "Thinking it over.");
        assert_eq!(r["output"][1]["type"], "message");
        let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            names.contains(&"response.reasoning_summary_text.delta"),
            "{p}: {names:?}"
        );
    }
    // Anthropic's thinking signature goes back with the next turn
    let (_, first) = create(&gw, json!({"model": "anthropic-think", "input": "Think first", "reasoning": {"effort": "low"}, "max_output_tokens": 4000})).await;
    assert_eq!(first["output"][0]["encrypted_content"], "sig_mock");
    let (status, _) = create(
        &gw,
        json!({"model": "anthropic-think", "previous_response_id": first["id"], "input": "And now?", "reasoning": {"effort": "low"}, "max_output_tokens": 4000}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let last = upstream_requests(&gw).await.pop().unwrap();
    assert_eq!(last["thinking"]["budget_tokens"], 1024);
    let assistant = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "assistant")
        .unwrap();
    assert_eq!(assistant["content"][0]["type"], "thinking");
    assert_eq!(assistant["content"][0]["signature"], "sig_mock");
}

#[tokio::test]
async fn upstream_errors_map_to_openai_errors_and_meter_nothing() {
    let gw = gateway().await;
    for p in PROVIDERS {
        for (suffix, status, kind) in [
            ("-429", StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
            ("-500", StatusCode::BAD_GATEWAY, "api_error"),
            ("-400", StatusCode::BAD_REQUEST, "invalid_request_error"),
        ] {
            let (s, body) =
                create(&gw, json!({"model": format!("{p}{suffix}"), "input": "x"})).await;
            assert_eq!(s, status, "{p}{suffix}: {body}");
            assert_eq!(body["error"]["type"], kind, "{p}{suffix}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("mock error"),
                "{body}"
            );
        }
    }
    assert!(
        usage_records(&gw).await.is_empty(),
        "failed calls are not metered"
    );
    // 5xx is retried once before the first byte; 429 and 400 are not
    let requests = upstream_requests(&gw).await;
    assert_eq!(requests.len(), 3 * (1 + 2 + 1));
    let held = gw.app.held_nanos().await;
    assert_eq!(held, 0, "reservations are released");
}

#[tokio::test]
async fn a_failure_before_the_first_byte_is_retried_once() {
    let gw = gateway().await;
    for p in PROVIDERS {
        let (status, r) = create(&gw, json!({"model": format!("{p}-flaky"), "input": "x"})).await;
        assert_eq!(status, StatusCode::OK, "{p}: {r}");
        assert_eq!(r["output_text"], "Hello from the");
    }
    assert_eq!(usage_records(&gw).await.len(), 3, "metered once each");
    assert_eq!(upstream_requests(&gw).await.len(), 6);
}

#[tokio::test]
async fn a_stream_broken_mid_way_ends_with_error_and_failed() {
    let gw = gateway().await;
    for p in PROVIDERS {
        let (status, evs) = stream(
            &gw,
            json!({"model": format!("{p}-cut"), "input": "x", "stream": true}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{p}");
        let r = check_stream_shape(&evs);
        let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"error"), "{p}: {names:?}");
        assert_eq!(evs.last().unwrap().0, "response.failed");
        assert_eq!(r["status"], "failed");
        assert!(r["error"]["message"].as_str().unwrap().contains("upstream"));
    }
    // what was produced is metered (estimated), and nothing stays reserved
    let records = usage_records(&gw).await;
    assert_eq!(records.len(), 3);
    let held = gw.app.held_nanos().await;
    assert_eq!(held, 0);
}

/// A client that drops a stream halfway still leaves an exact usage record: the upstream is read
/// to its end and its reported usage metered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_dropping_a_stream_halfway_leaves_an_exact_usage_record() {
    let gw = gateway().await;
    for p in PROVIDERS {
        let res = gw
            .app
            .client
            .post(gw.app.url("/v1/responses"))
            .bearer_auth(&gw.user.token)
            .json(&json!({"model": format!("{p}-slow"), "input": "Write a lot", "stream": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let mut body = res.bytes_stream();
        let mut seen = String::new();
        while seen.matches("output_text.delta").count() < 20 {
            let chunk = body.next().await.unwrap().unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        drop(body); // the client goes away after about a tenth of the answer
    }
    // the 200-token streams take about 2 s each to finish upstream
    let mut records = vec![];
    for _ in 0..100 {
        records = usage_records(&gw).await;
        if records.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(records.len(), 3, "{records:?}");
    for r in &records {
        assert_eq!(r["inputTokens"], 20, "{r}");
        assert_eq!(r["cachedTokens"], 5);
        assert_eq!(r["outputTokens"], 200, "the whole answer is metered: {r}");
        assert_eq!(r["costCents"].as_f64().unwrap(), cost(15, 5, 200));
    }
}

#[tokio::test]
async fn streamed_events_reach_the_client_as_they_come() {
    // 200 deltas, 10 ms apart upstream: the gateway may send events that are ready together in
    // one chunk, but must not hold them back for later ones
    let gw = gateway().await;
    let res = gw
        .app
        .client
        .post(gw.app.url("/v1/responses"))
        .bearer_auth(&gw.user.token)
        .json(&json!({"model": "openai-slow", "input": "Write a lot", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.bytes_stream();
    let (mut chunks_with_deltas, mut deltas, mut text) = (0, 0, String::new());
    while let Some(chunk) = body.next().await {
        let chunk = String::from_utf8_lossy(&chunk.unwrap()).into_owned();
        let n = chunk.matches("event: response.output_text.delta").count();
        if n > 0 {
            chunks_with_deltas += 1;
            deltas += n;
        }
        text.push_str(&chunk);
    }
    assert_eq!(deltas, 200);
    assert!(text.contains("event: response.completed"), "{text}");
    assert!(
        chunks_with_deltas >= 20,
        "200 deltas spread over 2 s came in only {chunks_with_deltas} chunks"
    );
}

/// A free daily limit of 50 cents and a model `metered` whose responses cost exactly what
/// admission estimates (output tokens only, 7 of them with `max_output_tokens: 7`), with a
/// sub-cent remainder so that any rounding would show.
async fn metered_toml() -> String {
    let mock = thesis_mock_llm::spawn().await;
    format!(
        "[plans.free]\ndaily_limit_cents = 50\n\n[[models]]\nname = \"metered\"\nprovider = \"openai\"\n\
         base_url = \"{mock}\"\nupstream_model = \"mock?in=9&tokens=7&delay_ms=2\"\n\
         input_cents_per_mtok = 0\noutput_cents_per_mtok = 100000.123\n"
    )
}

/// Nano-cents a `metered` response costs, and the daily limit in nano-cents.
const METERED_COST: i64 = 7 * 100_000_123;
const METERED_LIMIT: i64 = 50 * 1_000_000_000;

/// 200 concurrent `POST /v1/responses` (half of them streamed) against the free daily limit:
/// the ledger is exact and usage stops within one response's cost of the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_responses_stop_at_the_limit_and_the_ledger_is_exact() {
    let toml = metered_toml().await;
    let app = TestApp::spawn_full(&[], &toml, None).await;
    let user = app.signup("dev@example.com").await;
    app.create_org(&user.token, "Lab").await;
    let (cost, limit) = (METERED_COST, METERED_LIMIT);

    let mut tasks = Vec::new();
    for i in 0..200 {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/v1/responses"),
            user.token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let streamed = i % 2 == 0;
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"model": "metered", "input": "Count to seven.",
                              "max_output_tokens": 7, "stream": streamed}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            let text = res.text().await.unwrap();
            if status == StatusCode::OK && streamed {
                let evs = events(&text);
                assert_eq!(evs.last().unwrap().0, "response.completed", "{text}");
            } else if status == StatusCode::OK {
                let body: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(body["status"], "completed", "{body}");
            } else {
                assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
                let body: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
            }
            status == StatusCode::OK
        }));
    }
    let ok = successes(tasks).await;
    let total = ok * cost;
    assert!(
        total >= limit,
        "stopped early: {ok} responses, {total} < {limit}"
    );
    assert!(
        total < limit + cost,
        "overshot by more than one response: {ok} responses, {total} vs {limit}"
    );

    // every total the API reports is the sum of the records, to the nano-cent
    let expected_cents = total as f64 / 1e9;
    let (_, s) = app.get("/v1/usage-record/summary", Some(&user.token)).await;
    assert_eq!(s["records"], ok, "{s}");
    assert_eq!(s["costCents"].as_f64().unwrap(), expected_cents, "{s}");
    let (_, page) = app
        .get(
            "/v1/organization/billing/usage-history?limit=100",
            Some(&user.token),
        )
        .await;
    assert_eq!(page["total"], ok);
    let (_, r) = app
        .get("/v1/organization/rate-limit", Some(&user.token))
        .await;
    assert_eq!(r["usedCents"].as_f64().unwrap(), expected_cents, "{r}");
    assert_eq!(r["limited"], true);
    let (_, b) = app.get("/v1/organization/billing", Some(&user.token)).await;
    assert_eq!(b["usageThisPeriodCents"].as_f64().unwrap(), expected_cents);
    let held = app.held_nanos().await;
    assert_eq!(held, 0, "no reservation is left behind");
    // and one more is refused
    let (status, _) = app
        .post(
            "/v1/responses",
            Some(&user.token),
            json!({"model": "metered", "input": "again", "max_output_tokens": 7}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn limits_are_checked_before_the_upstream_call() {
    let gw = gateway_with("[plans.free]\ndaily_limit_cents = 0\n", &[]).await;
    let (status, headers, body) = gw
        .app
        .call_full(
            Method::POST,
            "/v1/responses",
            Some(&gw.user.token),
            Some(json!({"model": "openai", "input": "x"})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(headers.get("retry-after").is_some());
    assert!(
        upstream_requests(&gw).await.is_empty(),
        "the upstream was not called"
    );

    // payAsYouGo with a usage limit reached: 402
    gw.app
        .post(
            "/v1/organization/billing/checkout",
            Some(&gw.user.token),
            json!({"plan": "payAsYouGo"}),
        )
        .await;
    gw.app
        .put(
            "/v1/organization/billing/usage-limit",
            Some(&gw.user.token),
            json!({"limit": 0}),
        )
        .await;
    let (status, body) = create(&gw, json!({"model": "openai", "input": "x"})).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(body["error"]["type"], "insufficient_quota");
    gw.app
        .put(
            "/v1/organization/billing/usage-limit",
            Some(&gw.user.token),
            json!({"limit": null}),
        )
        .await;
    let (status, _) = create(&gw, json!({"model": "openai", "input": "x"})).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn request_validation_is_openai_shaped() {
    let gw = gateway().await;
    for (body, param) in [
        (json!({"input": "x"}), "model"),
        (json!({"model": "openai"}), "input"),
        (
            json!({"model": "openai", "input": "x", "temperature": 5}),
            "temperature",
        ),
        (
            json!({"model": "openai", "input": "x", "max_output_tokens": -1}),
            "max_output_tokens",
        ),
        (
            json!({"model": "openai", "input": "x", "truncation": "sometimes"}),
            "truncation",
        ),
        (
            json!({"model": "openai", "input": [{"role": "user"}]}),
            "input[0].content",
        ),
        (
            json!({"model": "openai", "input": "x", "organizationId": "nope"}),
            "organizationId",
        ),
        (
            json!({"model": "openai", "input": "x", "sessionId": "a", "previous_response_id": "b"}),
            "previous_response_id",
        ),
    ] {
        let (status, res) = create(&gw, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {res}");
        assert_eq!(res["error"]["type"], "invalid_request_error");
        assert_eq!(res["error"]["param"], param, "{res}");
    }
    let (status, res) = create(&gw, json!({"model": "gpt-nothing", "input": "x"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(res["error"]["code"], "model_not_found");
    let raw = gw
        .app
        .client
        .post(gw.app.url("/v1/responses"))
        .bearer_auth(&gw.user.token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(raw.json::<Value>().await.unwrap()["error"]["message"].is_string());
    let raw = gw
        .app
        .client
        .post(gw.app.url("/v1/responses"))
        .bearer_auth(&gw.user.token)
        .header("content-type", "application/json")
        .body("{\"model\":")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        raw.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
    // another organization is 403
    let other = gw.app.signup("other@example.com").await;
    let theirs = gw.app.create_org(&other.token, "Other").await;
    let (status, res) = create(
        &gw,
        json!({"model": "openai", "input": "x", "organizationId": theirs["id"]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{res}");
    assert_eq!(res["error"]["type"], "permission_error");
}

#[tokio::test]
async fn stored_responses_chain_and_stay_in_their_organization() {
    let gw = gateway().await;
    let (_, first) = create(
        &gw,
        json!({"model": "openai-chat", "input": "My name is Ada."}),
    )
    .await;
    let id = first["id"].as_str().unwrap();
    let (status, got) = gw
        .app
        .get(&format!("/v1/responses/{id}"), Some(&gw.user.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, first);

    let (status, second) = create(
        &gw,
        json!({"model": "openai-chat", "input": "What is my name?", "previous_response_id": id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["previous_response_id"], id);
    let sent = upstream_requests(&gw).await.pop().unwrap();
    let texts: Vec<String> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        texts,
        [
            "My name is Ada.",
            "Hello from the mock upstream Hello",
            "What is my name?"
        ]
    );

    // a third turn carries both earlier ones
    let (_, third) = create(
        &gw,
        json!({"model": "openai-chat", "input": "Again?", "previous_response_id": second["id"]}),
    )
    .await;
    assert_eq!(third["status"], "completed");
    assert_eq!(
        upstream_requests(&gw).await.pop().unwrap()["messages"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    // store: false keeps nothing
    let (_, unstored) = create(
        &gw,
        json!({"model": "openai-chat", "input": "x", "store": false}),
    )
    .await;
    let (status, res) = gw
        .app
        .get(
            &format!("/v1/responses/{}", unstored["id"].as_str().unwrap()),
            Some(&gw.user.token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(res["error"]["type"], "invalid_request_error");

    // another organization can neither read nor continue it
    let other = gw.app.signup("other@example.com").await;
    gw.app.create_org(&other.token, "Other").await;
    assert_eq!(
        gw.app
            .get(&format!("/v1/responses/{id}"), Some(&other.token))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, res) = gw
        .app
        .post(
            "/v1/responses",
            Some(&other.token),
            json!({"model": "openai-chat", "input": "x", "previous_response_id": id}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{res}");
    assert_eq!(res["error"]["param"], "previous_response_id");
    assert_eq!(
        gw.app
            .delete(&format!("/v1/responses/{id}"), Some(&other.token))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    let (status, deleted) = gw
        .app
        .delete(&format!("/v1/responses/{id}"), Some(&gw.user.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        deleted,
        json!({"id": id, "object": "response", "deleted": true})
    );
    assert_eq!(
        gw.app
            .get(&format!("/v1/responses/{id}"), Some(&gw.user.token))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn sessions_keep_the_transcript_and_give_context() {
    let gw = gateway().await;
    let (status, s) = gw
        .app
        .call(
            Method::POST,
            "/v1/session?sessionId=chat-1",
            Some(&gw.user.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    assert_eq!(s["id"], "chat-1");
    assert_eq!(s["turnCount"], 0);
    // idempotent for its owner
    let (status, again) = gw
        .app
        .call(
            Method::POST,
            "/v1/session?sessionId=chat-1",
            Some(&gw.user.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["createdAt"], s["createdAt"]);
    let (status, generated) = gw
        .app
        .call(Method::POST, "/v1/session", Some(&gw.user.token), None)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(generated["id"].as_str().unwrap().starts_with("sess_"));

    let (status, r1) = create(
        &gw,
        json!({"model": "anthropic", "input": "Remember the number 7.", "sessionId": "chat-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r1}");
    let (status, evs) = stream(&gw, json!({"model": "anthropic", "input": "Which number?", "sessionId": "chat-1", "stream": true})).await;
    assert_eq!(status, StatusCode::OK);
    check_stream_shape(&evs);
    let sent = upstream_requests(&gw).await.pop().unwrap();
    let texts: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Remember the number 7.",
            "Hello from the mock upstream Hello",
            "Which number?"
        ]
    );

    let (status, revealed) = gw
        .app
        .get("/v1/session/reveal/chat-1", Some(&gw.user.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revealed["turnCount"], 2);
    assert_eq!(revealed["title"], "Remember the number 7.");
    let turns = revealed["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0]["responseId"], r1["id"]);
    assert_eq!(turns[1]["input"][0]["content"][0]["text"], "Which number?");
    assert_eq!(turns[1]["output"][0]["type"], "message");

    let (_, list) = gw.app.get("/v1/session", Some(&gw.user.token)).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["id"], "chat-1", "most recently used first");
    assert_eq!(
        gw.app
            .get("/v1/session/check/chat-1", Some(&gw.user.token))
            .await
            .1,
        json!({"exists": true})
    );
    assert_eq!(
        gw.app
            .get("/v1/session/check/nope", Some(&gw.user.token))
            .await
            .1,
        json!({"exists": false})
    );

    // another user: not theirs
    let other = gw.app.signup("other@example.com").await;
    gw.app
        .invite(&gw.user.token, &gw.org_id, "other@example.com", "member")
        .await;
    gw.app.accept_invite_from_mail("other@example.com").await;
    assert_eq!(
        gw.app
            .get("/v1/session/reveal/chat-1", Some(&other.token))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        gw.app
            .get("/v1/session/check/chat-1", Some(&other.token))
            .await
            .1,
        json!({"exists": false})
    );
    assert_eq!(
        gw.app
            .delete("/v1/session/chat-1", Some(&other.token))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = gw
        .app
        .call(
            Method::POST,
            "/v1/session?sessionId=chat-1",
            Some(&other.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, res) = gw
        .app
        .post(
            "/v1/responses",
            Some(&other.token),
            json!({"model": "anthropic", "input": "x", "sessionId": "chat-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{res}");
    assert_eq!(res["error"]["code"], "session_not_found");

    let (status, res) = gw
        .app
        .call(
            Method::POST,
            "/v1/session?sessionId=bad%20id",
            Some(&gw.user.token),
            None,
        )
        .await;
    assert_validation(status, &res, "sessionId");

    let (status, deleted) = gw
        .app
        .delete("/v1/session/chat-1", Some(&gw.user.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["id"], "chat-1");
    assert_eq!(
        gw.app
            .get("/v1/session/reveal/chat-1", Some(&gw.user.token))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn truncation_auto_drops_the_oldest_context() {
    let mock = thesis_mock_llm::spawn().await;
    let toml = format!(
        "[plans.free]\ndaily_limit_cents = 100000\n[[models]]\nname = \"small\"\nprovider = \"openai-chat\"\nbase_url = \"{mock}\"\nupstream_model = \"mock\"\ncontext_window = 60\n"
    );
    let app = TestApp::spawn_full(&[], &toml, None).await;
    let user = app.signup("t@example.com").await;
    app.create_org(&user.token, "T").await;
    let long = "word ".repeat(40); // about 50 tokens
    let (_, first) = app
        .post(
            "/v1/responses",
            Some(&user.token),
            json!({"model": "small", "input": long}),
        )
        .await;
    let next = json!({"model": "small", "input": "short", "previous_response_id": first["id"]});
    let (status, _) = app
        .post("/v1/responses", Some(&user.token), next.clone())
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut auto = next.clone();
    auto["truncation"] = json!("auto");
    let (status, _) = app.post("/v1/responses", Some(&user.token), auto).await;
    assert_eq!(status, StatusCode::OK);
    let url = mock.trim_end_matches("/v1").to_string() + "/_requests";
    let requests: Vec<Value> = reqwest::get(url).await.unwrap().json().await.unwrap();
    let disabled = requests[1]["messages"].as_array().unwrap().len();
    let truncated = requests[2]["messages"].as_array().unwrap().len();
    assert_eq!(disabled, 3, "truncation disabled sends everything");
    assert!(
        truncated < disabled,
        "auto dropped the oldest context: {}",
        requests[2]
    );
    assert_eq!(
        requests[2]["messages"].as_array().unwrap().last().unwrap()["content"],
        "short"
    );
}

#[tokio::test]
async fn the_echo_model_needs_no_network() {
    let app = TestApp::spawn().await;
    let user = app.signup("e@example.com").await;
    app.create_org(&user.token, "E").await;
    let (status, r) = app
        .post(
            "/v1/responses",
            Some(&user.token),
            json!({"model": "thesis-echo", "input": "ping"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["output_text"], "Echo: ping");
    assert!(r["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let (_, records) = app.get("/v1/usage-record", Some(&user.token)).await;
    assert_eq!(records[0]["model"], "thesis-echo");
    assert_eq!(
        records[0]["costCents"], 0.0,
        "the built-in echo model is free"
    );
}

/// A response's usage is recorded just after its client has the answer; until it lands, the
/// routes that read usage or stored responses of that organization wait for it on this
/// instance (others do not).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_reads_wait_for_recordings_in_flight() {
    let gw = gateway().await;
    let (status, body) = create(&gw, json!({"model": "openai", "input": "hi"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let org = uuid::Uuid::parse_str(&gw.org_id).unwrap();

    // a recording of the organization still in flight holds its usage and response reads
    let recording = gw.app.state.recordings.start(org);
    let token = gw.user.token.clone();
    let reads = [
        "/v1/usage-record".to_string(),
        "/v1/usage-record/summary".to_string(),
        "/v1/organization/billing".to_string(),
        "/v1/organization/rate-limit".to_string(),
        "/v1/organization/billing/usage-history".to_string(),
        format!("/v1/responses/{id}"),
    ];
    let mut waiting = vec![];
    for path in &reads {
        let (client, url, token) = (gw.app.client.clone(), gw.app.url(path), token.clone());
        waiting.push(tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    // while other routes answer at once
    let (status, _) = gw.app.get("/v1/organization", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (path, w) in reads.iter().zip(&waiting) {
        assert!(
            !w.is_finished(),
            "{path} answered before the recording landed"
        );
    }
    drop(recording);
    for (path, w) in reads.iter().zip(waiting) {
        let status = tokio::time::timeout(Duration::from_secs(5), w)
            .await
            .unwrap_or_else(|_| panic!("{path} kept waiting"))
            .unwrap();
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    // and a new response of the organization is not held up by its own recordings
    let _again = gw.app.state.recordings.start(org);
    let (status, _) = tokio::time::timeout(
        Duration::from_secs(5),
        create(&gw, json!({"model": "openai", "input": "again"})),
    )
    .await
    .expect("responses do not wait for recordings");
    assert_eq!(status, StatusCode::OK);
}

/// Responses are admitted from a usage lease in memory: the database is written for a lease now
/// and then, not for each response, and nothing stays held once the lease is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn responses_are_admitted_from_a_lease() {
    let gw = gateway().await;
    let (from_lease, granted, own) = gw.app.state.leases.counts();
    assert_eq!((from_lease, granted, own), (0, 0, 0));
    for i in 0..20 {
        let (status, body) =
            create(&gw, json!({"model": "openai", "input": format!("hi {i}")})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (from_lease, granted, own) = gw.app.state.leases.counts();
    assert_eq!(from_lease + granted + own, 20);
    assert!(
        granted <= 2,
        "a lease covers several responses: {granted} leases for 20"
    );
    assert_eq!(
        own, 0,
        "far from the limit no response needs a reservation of its own"
    );
    let records = usage_records(&gw).await;
    assert_eq!(records.len(), 20);
    assert_eq!(
        gw.app.held_nanos().await,
        0,
        "nothing is held once given back"
    );
}

/// Under a steady stream of responses a lease is renewed in the background before it runs out:
/// after the first, no response waits for a lease to be granted, and every one is metered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leases_are_renewed_before_they_run_out() {
    let gw = gateway().await;
    for i in 0..48 {
        let (status, body) =
            create(&gw, json!({"model": "openai", "input": format!("hi {i}")})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // a steady rate: time for a renewal to land before the lease's other half is spent
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let (from_lease, granted, own) = gw.app.state.leases.counts();
    let renewed = gw.app.state.leases.renewals();
    assert_eq!(
        (from_lease, granted, own),
        (47, 1, 0),
        "only the first response waited for a lease ({renewed} renewals)"
    );
    assert!(renewed >= 1, "the lease was renewed: {renewed}");
    assert_eq!(usage_records(&gw).await.len(), 48);
    let metrics = gw
        .app
        .client
        .get(gw.app.url("/metrics"))
        .send()
        .await
        .unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("usage_leases_renewed_total"),
        "renewals are counted in /metrics"
    );
    assert_eq!(
        gw.app.held_nanos().await,
        0,
        "old leases and the current one are all given back"
    );
}

/// Past `[gateway] max_responses_in_flight` a response is refused at once (503 in OpenAI's shape,
/// with `Retry-After`) until one in flight ends; a stream counts until its upstream has ended,
/// also after its client left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn responses_past_the_in_flight_limit_are_refused_until_one_ends() {
    let gw = gateway_with(
        "[gateway]\nmax_responses_in_flight = 2\n[plans.free]\ndaily_limit_cents = 100000\n",
        &[],
    )
    .await;
    let stream = || {
        gw.app
            .client
            .post(gw.app.url("/v1/responses"))
            .bearer_auth(&gw.user.token)
            .json(&json!({"model": "openai-slow", "input": "hi", "stream": true}))
            .send()
    };
    // two slow streams (200 words, 10 ms apart) hold both places for about two seconds
    let kept = stream().await.unwrap();
    let left = stream().await.unwrap();
    assert_eq!(
        (kept.status(), left.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let res = gw
        .app
        .client
        .post(gw.app.url("/v1/responses"))
        .bearer_auth(&gw.user.token)
        .json(&json!({"model": "openai", "input": "one more"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "server_error", "{body}");
    assert_eq!(body["error"]["code"], "server_overloaded", "{body}");
    // a client leaving mid-stream keeps its place while its upstream is read to the end
    drop(left);
    let (status, body) = create(&gw, json!({"model": "openai", "input": "still full"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // once the streams have ended, responses are admitted again, and none was metered twice
    let text = kept.text().await.unwrap();
    assert_eq!(events(&text).last().unwrap().0, "response.completed");
    let mut admitted = false;
    for _ in 0..100 {
        let (status, _) = create(&gw, json!({"model": "openai", "input": "again"})).await;
        if status == StatusCode::OK {
            admitted = true;
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted, "a place came free once the streams ended");
    // the stream whose client left frees its place once its upstream has ended (its recording
    // under way by then, which reads of usage wait for)
    let places = &gw.app.state.responses_in_flight;
    for _ in 0..100 {
        if places.available_permits() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(places.available_permits(), 2, "both places came free");
    let records = usage_records(&gw).await;
    assert_eq!(
        records.len(),
        3,
        "two streams and one answer, each metered once: {records:?}"
    );
}

/// A trial claimed while a lease is held covers the very next response: the claim moves the
/// auth generation, and a lease granted before it is not used any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trial_claimed_under_a_lease_covers_the_next_response() {
    let gw = gateway_with(
        "[plans.free]\ndaily_limit_cents = 100000\n",
        &[("THESIS_ADMIN_EMAILS", "root@example.com")],
    )
    .await;
    for _ in 0..3 {
        let (status, _) = create(&gw, json!({"model": "openai", "input": "before"})).await;
        assert_eq!(status, StatusCode::OK);
    }
    let root = gw.app.signup("root@example.com").await;
    let (status, body) = gw
        .app
        .post(
            &format!("/v1/admin/organizations/{}/trials", gw.org_id),
            Some(&root.token),
            json!({"lengthDays": 7, "maxUsageAllowanceCents": 500}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = gw
        .app
        .post(
            "/v1/organization/claim-trial",
            Some(&gw.user.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = create(&gw, json!({"model": "openai", "input": "after"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, page) = gw
        .app
        .get(
            "/v1/organization/billing/usage-history?limit=1",
            Some(&gw.user.token),
        )
        .await;
    let (_, t) = gw
        .app
        .get("/v1/organization/trial", Some(&gw.user.token))
        .await;
    assert!(
        t["trial"]["usedCents"].as_f64().unwrap() > 0.0,
        "the response after the claim is covered: {t} / {page}"
    );
}

/// Two instances admitting from leases against one limit: together they never pass it by more
/// than one response, and they stop short of it by at most one lease (a tenth of the limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn two_instances_with_leases_hold_one_limit() {
    let toml = metered_toml().await;
    let a = TestApp::spawn_full(&[], &toml, None).await;
    let b = TestApp::spawn_full(&[], &toml, Some(&a)).await;
    let user = a.signup("dev@example.com").await;
    a.create_org(&user.token, "Lab").await;
    let (cost, limit) = (METERED_COST, METERED_LIMIT);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let app = if i % 2 == 0 { &a } else { &b };
        let (client, url, token) = (
            app.client.clone(),
            app.url("/v1/responses"),
            user.token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"model": "metered", "input": "Count to seven.", "max_output_tokens": 7}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            assert!(
                status == StatusCode::OK || status == StatusCode::TOO_MANY_REQUESTS,
                "{status}: {}",
                res.text().await.unwrap()
            );
            status == StatusCode::OK
        }));
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let ok = successes(tasks).await;
    let total = ok * cost;
    assert!(
        total < limit + cost,
        "passed the limit: {ok} responses, {total} vs {limit}"
    );
    assert!(
        total >= limit - limit / 10 - cost,
        "stopped far short of the limit: {ok} responses, {total} vs {limit}"
    );
    let (_, s) = a.get("/v1/usage-record/summary", Some(&user.token)).await;
    let (_, s_b) = b.get("/v1/usage-record/summary", Some(&user.token)).await;
    assert_eq!(s["records"], ok, "{s}");
    assert_eq!(s_b["records"], ok, "{s_b}");
    assert_eq!(s["costCents"].as_f64().unwrap(), total as f64 / 1e9);
    // a stopped instance gives its lease back; nothing else is held
    b.stop().await;
    assert_eq!(a.held_nanos().await, 0);
    a.stop().await;
}
