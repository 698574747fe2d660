//! Building the application and serving it: the binary and the tests start it the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_scalar::{Scalar, Servable};

use crate::config::Settings;
use crate::integrations::mail::Mailer;
use crate::integrations::stripe::StripeClient;
use crate::openapi::ApiDoc;
use crate::state::AppState;
use crate::{features, telemetry};

/// Default request body limit; routes that take more set their own.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// How long shutdown waits for background work (mail delivery, ...).
const BACKGROUND_DRAIN: Duration = Duration::from_secs(30);

/// Every route with its OpenAPI description: `/v1/...` plus the operational routes.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/v1", features::v1_router())
        .merge(features::system::router())
}

/// The OpenAPI document (no database needed).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

pub struct App {
    pub state: AppState,
    router: Router,
}

impl App {
    /// Connects to the database, applies migrations and assembles the router. `local_addr` is the
    /// bound address, the default public URL.
    pub async fn build(settings: Settings, local_addr: SocketAddr) -> anyhow::Result<App> {
        // install the metrics recorder before the first request is counted
        telemetry::metrics_handle();
        tracing::info!(database = %settings.database_url_for_logs(), "connecting to the database");
        let db = thesis_db::connect(settings.database_url.expose()).await?;
        thesis_db::migrate(&db)
            .await
            .map_err(|e| anyhow::anyhow!("applying migrations: {e}"))?;
        let secret = settings.load_secret_key()?;
        let mailer = Mailer::from_settings(&settings)?;
        // one TLS provider for every outgoing HTTPS client
        let _ = rustls::crypto::ring::default_provider().install_default();
        let stripe = settings
            .stripe_secret_key
            .clone()
            .map(|key| Arc::new(StripeClient::new(&settings.stripe_api_url, key)));
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local_addr}"));
        let models = crate::llm::Models::from_settings(&settings)?;
        let responses_in_flight = Arc::new(tokio::sync::Semaphore::new(
            settings.file.gateway.max_responses_in_flight,
        ));
        let state = AppState {
            db,
            models: Arc::new(models),
            admin_emails: settings.admin_emails.clone().into(),
            settings: Arc::new(settings),
            secret: Arc::new(secret),
            public_url: public_url.into(),
            mailer: Arc::new(mailer),
            stripe,
            auth_cache: Default::default(),
            responses_in_flight,
            leases: Default::default(),
            recordings: Default::default(),
            background: TaskTracker::new(),
            shutdown: tokio_util::sync::CancellationToken::new(),
        };
        let router = build_router(state.clone());
        Ok(App { state, router })
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests and background work.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        if self.state.settings.cron_enabled {
            crate::cron::spawn(self.state.clone(), self.state.shutdown.clone());
        } else {
            tracing::info!("the cron scheduler is off (THESIS_CRON=off)");
        }
        spawn_checkpointer(&self.state);
        spawn_auth_generation_poller(&self.state).await;
        crate::billing::leases::spawn_keeper(&self.state);
        telemetry::spawn_metrics_upkeep(&self.state);
        tracing::info!("listening on http://{addr}");
        // Without TCP_NODELAY, each small write after the first (SSE events, a body after its
        // headers) waits for the client's delayed ACK: about 40 ms per streamed response.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "could not set TCP_NODELAY on a connection");
            }
        });
        axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        tracing::info!("stopped accepting requests; draining background work");
        self.state.shutdown.cancel();
        self.state.background.close();
        if tokio::time::timeout(BACKGROUND_DRAIN, self.state.background.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "background work still running after {BACKGROUND_DRAIN:?}; exiting anyway"
            );
        }
        self.state.db.clone().close().await.ok();
        Ok(())
    }
}

/// How often the SQLite write-ahead log is copied into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Checkpoints SQLite's write-ahead log in the background, so that no request's commit pays for
/// it (a checkpoint writes and syncs the database file: milliseconds). Nothing on PostgreSQL.
fn spawn_checkpointer(state: &AppState) {
    if state.db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return;
    }
    let (db, mut ticks) = (state.db.clone(), state.ticks(CHECKPOINT_INTERVAL));
    state.background.spawn(async move {
        while ticks.next().await {
            if let Err(e) = thesis_db::checkpoint(&db).await {
                tracing::warn!(error = %e, "checkpointing the SQLite write-ahead log failed");
            }
        }
    });
}

/// Reads the auth generation now and then every `auth::cache::POLL_INTERVAL`, so that the
/// authentication cache follows changes made through any instance.
async fn spawn_auth_generation_poller(state: &AppState) {
    if let Err(e) = state.auth_cache.refresh(&state.db).await {
        tracing::warn!(error = %e, "reading the auth generation failed; authentication is not cached until it succeeds");
    }
    let state = state.clone();
    state.background.clone().spawn(async move {
        let mut ticks = state.ticks(crate::auth::cache::POLL_INTERVAL);
        let mut failing = false;
        while ticks.next().await {
            match state.auth_cache.refresh(&state.db).await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!("reading the auth generation works again");
                }
                Ok(_) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "reading the auth generation failed; authentication is not cached until it succeeds");
                }
                Err(_) => {}
            }
        }
    });
}

/// After a request that may have changed who can do what (any write but a response of the
/// gateway, whatever its status), reads the auth generation before answering: on this instance, nothing
/// cached from before the change is served afterwards.
async fn refresh_auth_after_changes(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::Method;
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && req.uri().path() != "/v1/responses";
    let response = next.run(req).await;
    if changes && let Err(e) = state.auth_cache.refresh(&state.db).await {
        tracing::warn!(error = %e, "reading the auth generation after a change failed; dropping the authentication cache");
        state.auth_cache.clear();
    }
    response
}

fn build_router(state: AppState) -> Router {
    let (router, openapi) = api_router().split_for_parts();
    let spec_json: Arc<str> = openapi
        .to_json()
        .expect("the OpenAPI document serializes")
        .into();
    let request_id = HeaderName::from_static(telemetry::REQUEST_ID_HEADER);

    router
        .route(
            "/openapi.json",
            get(move || {
                let spec = spec_json.clone();
                async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], spec.to_string()) }
            }),
        )
        .merge(Router::from(Scalar::with_url("/docs", openapi)))
        .fallback(features::stubs::not_found)
        .method_not_allowed_fallback(features::stubs::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refresh_auth_after_changes,
        ))
        .layer(axum::middleware::from_fn(telemetry::track_metrics))
        .layer(CatchPanicLayer::custom(telemetry::panic_response))
        .layer(axum::middleware::from_fn(telemetry::finish_errors))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get(telemetry::REQUEST_ID_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                })
                .on_request(())
                .on_response(
                    |res: &axum::http::Response<_>, latency: Duration, _span: &tracing::Span| {
                        let status = res.status().as_u16();
                        let latency_ms = latency.as_secs_f64() * 1000.0;
                        if status >= 500 {
                            tracing::warn!(status, latency_ms, "request finished");
                        } else {
                            tracing::info!(status, latency_ms, "request finished");
                        }
                    },
                )
                // 5xx are logged above, and a 500's cause by `telemetry::finish_errors`
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
