//! The gateway behind `POST /v1/responses`: parse, resolve organization and model, build the
//! context (previous response or session), admit against limits, call the upstream (one retry
//! before the first byte), then answer — whole or as a stream — and meter exactly once.
//!
//! A streamed answer is produced by a task that reads the upstream to its end whatever the
//! client does: a client that disconnects stops receiving events, not the metering.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use sea_orm::{IntoActiveModel, QueryOrder, QuerySelect, QueryTrait};
use serde_json::{Value, json};
use std::future::Future;
use thesis_db::entities::{MetricType, chat_session, response, session_turn};
use thesis_llm::providers::ProviderEvent;
use thesis_llm::request::Truncation;
use thesis_llm::{
    ChatRequest, Emitter, Finish, Item, ProviderStream, ResponseMeta, ResponsesRequest, Usage,
};

use super::error::OpenAiError;
use crate::auth::{Caller, Member, OrgCtx};
use crate::billing::ledger::{self, Admission, NewUsage};
use crate::error::ApiError;
use crate::llm::ModelEntry;
use crate::state::AppState;

/// Output tokens assumed for admission when the request sets no `max_output_tokens`.
const DEFAULT_OUTPUT_ESTIMATE: u64 = 4096;

/// A gateway failure: either already OpenAI-shaped, or a server error the route's middleware
/// reshapes (keeping headers such as `Retry-After`).
pub enum GatewayError {
    OpenAi(OpenAiError),
    Api(ApiError),
}

impl From<OpenAiError> for GatewayError {
    fn from(e: OpenAiError) -> Self {
        GatewayError::OpenAi(e)
    }
}

impl From<ApiError> for GatewayError {
    fn from(e: ApiError) -> Self {
        GatewayError::Api(e)
    }
}

impl From<sea_orm::DbErr> for GatewayError {
    fn from(e: sea_orm::DbErr) -> Self {
        GatewayError::Api(e.into())
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        match self {
            GatewayError::OpenAi(e) => e.into_response(),
            GatewayError::Api(e) => e.into_response(),
        }
    }
}

/// `err`, unless the request's token is missing or bad: then that 401, which comes first.
pub async fn unauthorized_first(
    state: &AppState,
    headers: &HeaderMap,
    err: GatewayError,
) -> GatewayError {
    match Caller::from_headers(state, headers).await {
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => e.into(),
        _ => err,
    }
}

/// Everything decided before the upstream is called.
pub struct Prepared {
    /// Whether the client asked for a stream.
    pub stream: bool,
    req: ResponsesRequest,
    model: Arc<ModelEntry>,
    chat: ChatRequest,
    /// The context and this request's input, Responses JSON (stored with the response).
    conversation: Vec<Value>,
    input: Vec<Value>,
    org_id: Uuid,
    user_id: Uuid,
    session: Option<chat_session::Model>,
    admission: Admission,
    meta: ResponseMeta,
}

/// Rough token count of text: one per four characters.
fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

fn item_tokens(item: &Item) -> u64 {
    estimate_tokens(&item.text()) + 4
}

/// Drops the oldest context items until the estimate fits the window (never this request's
/// input), and any function results left without their call.
fn truncate(context: &mut Vec<Item>, input_tokens: u64, window: u64) {
    let mut total: u64 = context.iter().map(item_tokens).sum::<u64>() + input_tokens;
    while total > window && !context.is_empty() {
        total -= item_tokens(&context.remove(0));
        while matches!(context.first(), Some(Item::FunctionCallOutput { .. })) {
            total -= item_tokens(&context.remove(0));
        }
    }
}

/// Waits before looking again for a stored response that is not there (yet).
const RESPONSE_LOOKUP_RETRIES: [Duration; 2] =
    [Duration::from_millis(5), Duration::from_millis(20)];

/// The stored response `id` of one of `orgs`. A response is stored just after its client has it
/// (on this instance the caller waits for that, see `billing::recordings`); one answered by
/// another instance a moment ago is given a few milliseconds to land before it counts as
/// missing.
pub async fn find_response(
    state: &AppState,
    id: &str,
    orgs: &[Uuid],
) -> Result<Option<response::Model>, ApiError> {
    let mut waits = RESPONSE_LOOKUP_RETRIES.iter();
    loop {
        let found = response::Entity::find_by_id(id)
            .filter(response::Column::OrganizationId.is_in(orgs.iter().copied()))
            .one(&state.db)
            .await?;
        match (found, waits.next()) {
            (Some(r), _) => return Ok(Some(r)),
            (None, Some(wait)) => tokio::time::sleep(*wait).await,
            (None, None) => return Ok(None),
        }
    }
}

async fn load_previous(
    state: &AppState,
    org_id: Uuid,
    id: &str,
) -> Result<Vec<Item>, GatewayError> {
    state.recordings.settled(org_id).await;
    let stored = find_response(state, id, &[org_id]).await?.ok_or_else(|| {
        OpenAiError::not_found(
            format!("Previous response with id '{id}' not found."),
            Some("previous_response_id"),
            "previous_response_not_found",
        )
    })?;
    let mut items: Vec<Item> = stored
        .conversation
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| Item::from_value(v, "conversation").ok())
                .collect()
        })
        .unwrap_or_default();
    let output = stored.response["output"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    items.extend(thesis_llm::items::from_output(&output));
    Ok(items)
}

async fn load_session(
    state: &AppState,
    org_id: Uuid,
    user_id: Uuid,
    id: &str,
) -> Result<(chat_session::Model, Vec<Item>), GatewayError> {
    let session = chat_session::Entity::find_by_id(id)
        .filter(chat_session::Column::OrganizationId.eq(org_id))
        .filter(chat_session::Column::UserId.eq(user_id))
        .one(&state.db)
        .await?
        .ok_or_else(|| {
            OpenAiError::not_found(
                format!("Session '{id}' not found; create it with POST /v1/session."),
                Some("sessionId"),
                "session_not_found",
            )
        })?;
    let turns = session_turn::Entity::find()
        .filter(session_turn::Column::SessionId.eq(id))
        .order_by_asc(session_turn::Column::Seq)
        .all(&state.db)
        .await?;
    let mut items = vec![];
    for t in turns {
        if let Some(input) = t.input.as_array() {
            items.extend(
                input
                    .iter()
                    .filter_map(|v| Item::from_value(v, "session").ok()),
            );
        }
        if let Some(output) = t.output.as_array() {
            items.extend(thesis_llm::items::from_output(output));
        }
    }
    Ok((session, items))
}

/// Parses and checks the request, builds the context and admits it against the limits.
pub async fn prepare(
    state: &AppState,
    headers: &HeaderMap,
    body: &Value,
) -> Result<Prepared, GatewayError> {
    let parsed = ResponsesRequest::parse(body)
        .map_err(|e| OpenAiError::invalid(e.message, e.param))
        .and_then(|req| {
            let body_org = match &req.organization_id {
                Some(s) => Some(Uuid::parse_str(s).map_err(|_| {
                    OpenAiError::invalid(
                        "organizationId must be an organization id (UUID)",
                        Some("organizationId".into()),
                    )
                })?),
                None => None,
            };
            Ok((req, body_org))
        });
    let (req, body_org) = match parsed {
        Ok(p) => p,
        Err(e) => return Err(unauthorized_first(state, headers, e.into()).await),
    };
    let ctx = OrgCtx::<Member>::from_headers(state, headers, body_org).await?;
    let model = state.models.get(&req.model).ok_or_else(|| {
        OpenAiError::not_found(
            format!(
                "The model `{}` does not exist. Available: {}.",
                req.model,
                state.models.names().join(", ")
            ),
            Some("model"),
            "model_not_found",
        )
    })?;
    if req.previous_response_id.is_some() && req.session_id.is_some() {
        return Err(OpenAiError::invalid(
            "use either previous_response_id or sessionId, not both",
            Some("previous_response_id".into()),
        )
        .into());
    }
    let org_id = ctx.org_id();
    let user_id = ctx.caller.user.id;
    let (session, mut context) = match (&req.previous_response_id, &req.session_id) {
        (Some(prev), _) => (None, load_previous(state, org_id, prev).await?),
        (_, Some(sid)) => {
            let (s, items) = load_session(state, org_id, user_id, sid).await?;
            (Some(s), items)
        }
        _ => (None, vec![]),
    };
    let instruction_tokens = req
        .instructions
        .as_deref()
        .map(estimate_tokens)
        .unwrap_or(0);
    let input_tokens: u64 = req.input.iter().map(item_tokens).sum::<u64>() + instruction_tokens;
    if req.truncation == Truncation::Auto
        && let Some(window) = model.context_window
    {
        let budget = window.saturating_sub(req.max_output_tokens.unwrap_or(0));
        truncate(&mut context, input_tokens, budget);
    }
    let input: Vec<Value> = req.input.iter().map(Item::to_value).collect();
    let mut conversation: Vec<Value> = context.iter().map(Item::to_value).collect();
    conversation.extend(input.iter().cloned());
    let chat = req.to_chat(&model.upstream_model, context);

    // the context as sent (after truncation) and this request's input are both in `chat.items`
    let estimate_in = instruction_tokens + chat.items.iter().map(item_tokens).sum::<u64>();
    let estimate = model.cost(&Usage {
        input_tokens: estimate_in,
        cached_tokens: 0,
        output_tokens: req.max_output_tokens.unwrap_or(DEFAULT_OUTPUT_ESTIMATE),
        reasoning_tokens: 0,
    });
    let admission = state
        .leases
        .admit(state, &ctx.organization, estimate)
        .await?;

    let meta = ResponseMeta {
        id: thesis_llm::new_id("resp"),
        created_at: chrono::Utc::now().timestamp(),
        model: req.model.clone(),
        instructions: req.instructions.clone(),
        max_output_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        tool_choice: req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        tools: req.tools.clone(),
        truncation: req.truncation.as_str().to_string(),
        reasoning: req.reasoning.clone(),
        metadata: req.metadata.clone().map(Value::Object),
        previous_response_id: req.previous_response_id.clone(),
        store: req.store,
        parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
        text: req
            .extra
            .get("text")
            .cloned()
            .unwrap_or_else(|| json!({"format": {"type": "text"}})),
    };
    Ok(Prepared {
        stream: req.stream,
        req,
        model,
        chat,
        conversation,
        input,
        org_id,
        user_id,
        session,
        admission,
        meta,
    })
}

fn upstream_error(e: &thesis_llm::UpstreamError) -> OpenAiError {
    let status = StatusCode::from_u16(e.client_status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let kind = e.openai_type();
    OpenAiError::new(status, kind, format!("upstream: {e}")).with_code(match status.as_u16() {
        429 => "rate_limit_exceeded",
        400 => "upstream_rejected",
        504 => "upstream_timeout",
        _ => "upstream_error",
    })
}

/// Calls the upstream; one retry for a failure before its first byte (connection refused, 5xx,
/// timeout). On failure the admission is released and nothing is metered.
pub async fn open_upstream(state: &AppState, p: &Prepared) -> Result<ProviderStream, GatewayError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match p.model.provider.start(&p.chat, p.req.stream).await {
            Ok(s) => return Ok(s),
            Err(e) if attempt == 1 && e.retryable() => {
                tracing::warn!(model = %p.model.name, error = %e, "upstream failed before the first byte; retrying once");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                tracing::warn!(model = %p.model.name, error = %e, "upstream failed");
                if let Err(release) = state.leases.release(state, &p.admission).await {
                    tracing::error!(error = %release, "releasing a reservation failed; it expires by itself");
                }
                return Err(upstream_error(&e).into());
            }
        }
    }
}

/// Waits before each further attempt to record a response's usage when the database fails.
const RECORD_RETRIES: [Duration; 4] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(20),
];

/// Meters the response (exactly once: the response id is the idempotency key) and, in the same
/// transaction, stores it and the session turn. Should storing fail, the usage is still recorded
/// on its own: a response may go unstored, never unmetered. Runs after the client has its answer
/// (see `billing::recordings`), so a failing database is retried, and what could not be recorded
/// at all is logged whole.
async fn finalize(state: &AppState, p: &Prepared, emitter: &Emitter) {
    let (usage, estimated) = match emitter.usage() {
        Some(u) => (u, false),
        None => {
            // the upstream reported nothing (it failed, or does not report): estimate
            let input = p.chat.items.iter().map(item_tokens).sum::<u64>()
                + p.chat
                    .instructions
                    .as_deref()
                    .map(estimate_tokens)
                    .unwrap_or(0);
            let output: u64 = emitter
                .output()
                .iter()
                .map(|v| estimate_tokens(&v.to_string()))
                .sum();
            (
                Usage {
                    input_tokens: input,
                    output_tokens: output,
                    ..Usage::default()
                },
                true,
            )
        }
    };
    let new_usage = NewUsage {
        organization_id: p.org_id,
        user_id: Some(p.user_id),
        metric_type: MetricType::Tokens,
        model: Some(p.model.name.clone()),
        machine_id: None,
        quantity: (usage.input_tokens + usage.output_tokens) as f64,
        unit: "tokens".into(),
        input_tokens: Some(usage.input_tokens as i64),
        output_tokens: Some(usage.output_tokens as i64),
        cached_tokens: Some(usage.cached_tokens as i64),
        reasoning_tokens: Some(usage.reasoning_tokens as i64),
        cost_nanos: p.model.cost(&usage),
        idempotency_key: Some(p.meta.id.clone()),
        metadata: Some(json!({
            "responseId": p.meta.id,
            "sessionId": p.req.session_id,
            "upstreamModel": p.model.upstream_model,
            "status": emitter.status(),
            "estimated": estimated,
        })),
    };
    let mut attempt = 0;
    loop {
        match record_once(state, p, emitter, &usage, &new_usage).await {
            Ok(()) => return,
            Err(e) if attempt < RECORD_RETRIES.len() => {
                tracing::warn!(response = %p.meta.id, error = %e, "recording a response's usage failed; trying again");
                tokio::time::sleep(RECORD_RETRIES[attempt]).await;
                attempt += 1;
            }
            Err(e) => {
                tracing::error!(
                    response = %p.meta.id,
                    organization = %p.org_id,
                    model = %p.model.name,
                    input_tokens = usage.input_tokens,
                    cached_tokens = usage.cached_tokens,
                    output_tokens = usage.output_tokens,
                    cost_nanocents = new_usage.cost_nanos,
                    error = %e,
                    "the usage of a response could not be recorded"
                );
                return;
            }
        }
    }
}

/// One attempt at [`finalize`]'s writes.
async fn record_once(
    state: &AppState,
    p: &Prepared,
    emitter: &Emitter,
    usage: &Usage,
    new_usage: &NewUsage,
) -> Result<(), ApiError> {
    // the common case in one round trip: no trial to cover it, no session turn to number
    if p.session.is_none() {
        let mut batch = thesis_db::Batch::new(state.db.get_database_backend());
        if ledger::record_into_batch(&mut batch, &p.admission, new_usage.clone()).is_some() {
            if p.req.store {
                batch.push(&response::Entity::insert(stored_response(p, emitter)).into_query());
            }
            match batch.commit(&state.db).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(response = %p.meta.id, error = %e, "recording a response in one batch failed; recording it step by step")
                }
            }
        }
    }
    let together = async {
        let txn = thesis_db::begin_write(&state.db).await?;
        let (_, added) = ledger::record_in(&txn, Some(&p.admission), new_usage.clone()).await?;
        if added {
            store(&txn, p, emitter, usage).await?;
        }
        txn.commit().await?;
        Ok::<_, ApiError>(())
    };
    if let Err(e) = together.await {
        tracing::error!(response = %p.meta.id, error = %e, "storing a response failed; recording its usage alone");
        ledger::record(&state.db, Some(&p.admission), new_usage.clone()).await?;
    }
    Ok(())
}

/// Stores the response (`store`) and appends the session turn, inside the metering transaction.
async fn store(
    txn: &thesis_db::WriteTxn,
    p: &Prepared,
    emitter: &Emitter,
    usage: &Usage,
) -> Result<(), ApiError> {
    let now = thesis_db::now();
    if let Some(s) = &p.session {
        let current = chat_session::Entity::find_by_id(s.id.clone())
            .lock_exclusive()
            .one(txn)
            .await?;
        if let Some(current) = current {
            let seq = current.turn_count + 1;
            session_turn::ActiveModel {
                id: Set(thesis_db::new_id()),
                session_id: Set(current.id.clone()),
                seq: Set(seq),
                response_id: Set(Some(p.meta.id.clone())),
                model: Set(p.model.name.clone()),
                input: Set(json!(p.input)),
                output: Set(json!(emitter.output())),
                usage: Set(Some(usage_json(usage))),
                created_at: Set(now),
            }
            .insert(txn)
            .await?;
            let title = current.title.clone().or_else(|| {
                let text: String = p
                    .req
                    .input
                    .iter()
                    .map(Item::text)
                    .collect::<Vec<_>>()
                    .join(" ");
                let t: String = text.trim().chars().take(80).collect();
                (!t.is_empty()).then_some(t)
            });
            let mut active = current.into_active_model();
            active.turn_count = Set(seq);
            active.title = Set(title);
            active.updated_at = Set(now);
            active.update(txn).await?;
        }
    }
    if p.req.store {
        stored_response(p, emitter).insert(txn).await?;
    }
    Ok(())
}

/// The row that keeps a response for `GET /v1/responses/{id}` and `previous_response_id`.
fn stored_response(p: &Prepared, emitter: &Emitter) -> response::ActiveModel {
    response::ActiveModel {
        id: Set(p.meta.id.clone()),
        organization_id: Set(p.org_id),
        user_id: Set(Some(p.user_id)),
        session_id: Set(p.req.session_id.clone()),
        model: Set(p.model.name.clone()),
        status: Set(emitter.status().to_string()),
        conversation: Set(json!(p.conversation)),
        response: Set(emitter.response_object(true)),
        created_at: Set(thesis_db::now()),
    }
}

fn usage_json(u: &Usage) -> Value {
    u.to_json()
}

fn failure_of(e: &thesis_llm::UpstreamError) -> Finish {
    Finish::Failed {
        code: "upstream_error".into(),
        message: format!("upstream: {e}"),
    }
}

/// The whole answer as one response object.
pub async fn respond_whole(
    state: &AppState,
    p: Prepared,
    mut upstream: ProviderStream,
) -> Result<Response, GatewayError> {
    let mut emitter = Emitter::new(p.meta.clone(), false);
    let mut finish = None;
    while let Some(ev) = upstream.next().await {
        match ev {
            Ok(ProviderEvent::Delta(d)) => {
                emitter.push(d);
            }
            Ok(ProviderEvent::Done(f)) => {
                finish = Some(f);
                break;
            }
            Err(e) => {
                finish = Some(failure_of(&e));
                break;
            }
        }
    }
    let finish = finish.unwrap_or(Finish::Failed {
        code: "upstream_error".into(),
        message: "upstream: the answer ended early".into(),
    });
    let failed = match &finish {
        Finish::Failed { message, .. } => Some(message.clone()),
        _ => None,
    };
    emitter.finish(finish);
    let answer = match failed {
        // nothing was sent yet: the client gets an error, the partial usage is metered
        Some(message) => Err(
            OpenAiError::new(StatusCode::BAD_GATEWAY, "server_error", message)
                .with_code("upstream_error")
                .into(),
        ),
        None => Ok((StatusCode::OK, axum::Json(emitter.response_object(true))).into_response()),
    };
    if p.session.is_some() {
        // a session's next turn must find this one, whichever instance serves it
        finalize(state, &p, &emitter).await;
        return answer;
    }
    record_in_background(state.clone(), p, emitter, None);
    answer
}

/// The answer as server-sent events. The response body itself reads the upstream, as the client
/// reads it (no task or channel between them); should the client leave mid-stream, the body
/// hands what is left of the upstream to a background task that reads it to its end and meters
/// it (see [`SseBody`]'s `Drop`).
/// `in_flight` is held until the upstream has ended (also when the client left).
pub fn respond_streaming(
    state: &AppState,
    p: Prepared,
    upstream: ProviderStream,
    in_flight: tokio::sync::OwnedSemaphorePermit,
) -> Response {
    let mut emitter = Emitter::new(p.meta.clone(), true);
    let ready = emitter.start();
    let body = SseBody {
        run: Some(StreamRun {
            state: state.clone(),
            p,
            upstream,
            emitter,
            _in_flight: in_flight,
        }),
        ready,
        session_recorded: None,
        closing: vec![],
    };
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// A streamed response under way: what its body reads from and writes with.
struct StreamRun {
    state: AppState,
    p: Prepared,
    upstream: ProviderStream,
    emitter: Emitter,
    /// This response's place among those in flight (`[gateway] max_responses_in_flight`).
    _in_flight: tokio::sync::OwnedSemaphorePermit,
}

/// Events ready for the client are sent together, up to this many bytes at a time.
const SSE_CHUNK: usize = 64 * 1024;

impl StreamRun {
    /// Takes one upstream event into the emitter; the finish once the upstream has ended.
    fn take(
        &mut self,
        event: Option<Result<ProviderEvent, thesis_llm::UpstreamError>>,
        out: &mut Vec<Bytes>,
    ) -> Option<Finish> {
        match event {
            Some(Ok(ProviderEvent::Delta(d))) => {
                out.extend(self.emitter.push(d));
                None
            }
            Some(Ok(ProviderEvent::Done(f))) => Some(f),
            Some(Err(e)) => {
                tracing::warn!(response = %self.p.meta.id, error = %e, "upstream failed mid-stream");
                out.extend(
                    self.emitter
                        .error("upstream_error", &format!("upstream: {e}")),
                );
                Some(failure_of(&e))
            }
            None => Some(Finish::Failed {
                code: "upstream_error".into(),
                message: "upstream: the stream ended early".into(),
            }),
        }
    }

    fn record(self, done: Option<tokio::sync::oneshot::Sender<()>>) {
        record_in_background(self.state, self.p, self.emitter, done);
    }
}

/// Records a response's usage (and its turn, and the stored response) in the background, where
/// neither the client nor shutdown can cut it short; `done` is told when it is. Called before
/// the client can see the end, so that its next read of usage waits for this recording.
fn record_in_background(
    state: AppState,
    p: Prepared,
    emitter: Emitter,
    done: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let recording = state.recordings.start(p.org_id);
    let background = state.background.clone();
    background.spawn(async move {
        finalize(&state, &p, &emitter).await;
        drop(recording);
        if let Some(done) = done {
            let _ = done.send(());
        }
    });
}

/// The body of a streamed response (see [`respond_streaming`]).
struct SseBody {
    /// `None` once the upstream has ended (or the run was handed off).
    run: Option<StreamRun>,
    /// Events for the client, not yet sent.
    ready: Vec<Bytes>,
    /// A session's turn being recorded: its closing events wait for it, since the next turn may
    /// reach any instance at once.
    session_recorded: Option<tokio::sync::oneshot::Receiver<()>>,
    closing: Vec<Bytes>,
}

impl SseBody {
    fn end(&mut self, finish: Finish) {
        let Some(mut run) = self.run.take() else {
            return;
        };
        let closing = run.emitter.finish(finish);
        if run.p.session.is_some() {
            let (done, recorded) = tokio::sync::oneshot::channel();
            self.session_recorded = Some(recorded);
            self.closing = closing;
            run.record(Some(done));
        } else {
            self.ready.extend(closing);
            run.record(None);
        }
    }
}

impl futures_util::Stream for SseBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        // read what the upstream has ready (within one chunk), then send it all at once
        while let Some(run) = this.run.as_mut() {
            if this.ready.iter().map(Bytes::len).sum::<usize>() >= SSE_CHUNK {
                break;
            }
            let event = match run.upstream.poll_next_unpin(cx) {
                Poll::Pending => break,
                Poll::Ready(event) => event,
            };
            if let Some(finish) = run.take(event, &mut this.ready) {
                this.end(finish);
            }
        }
        if let Some(recorded) = this.session_recorded.as_mut()
            && this.ready.is_empty()
        {
            match std::pin::Pin::new(recorded).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(_) => {
                    this.session_recorded = None;
                    this.ready = std::mem::take(&mut this.closing);
                }
            }
        }
        match this.ready.len() {
            0 if this.run.is_none() && this.session_recorded.is_none() => Poll::Ready(None),
            0 => Poll::Pending,
            1 => Poll::Ready(Some(Ok(this.ready.remove(0)))),
            _ => Poll::Ready(Some(Ok(Bytes::from(
                std::mem::take(&mut this.ready).concat(),
            )))),
        }
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        // the client left mid-stream: read the upstream to its end and meter what it produced
        let Some(mut run) = self.run.take() else {
            return;
        };
        let background = run.state.background.clone();
        background.spawn(async move {
            let mut discard = vec![];
            let finish = loop {
                let event = run.upstream.next().await;
                discard.clear();
                if let Some(finish) = run.take(event, &mut discard) {
                    break finish;
                }
            };
            run.emitter.finish(finish);
            tracing::info!(response = %run.p.meta.id, "the client left mid-stream; the upstream was read to its end");
            run.record(None);
        });
    }
}
