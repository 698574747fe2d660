#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use thesis_api::{App, Settings};
use tokio::sync::oneshot;

/// The PostgreSQL server to test against, if any.
pub fn postgres_server() -> Option<String> {
    std::env::var("THESIS_TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim_end_matches('/').to_string())
}

/// A running server with its own data directory and database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: TempDir,
    pub env: HashMap<String, String>,
    pub database_url: String,
    /// The server's state, to reach behind its back in failure tests.
    pub state: thesis_api::state::AppState,
    pg_database: Option<(String, String)>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub struct TestUser {
    pub id: String,
    pub email: String,
    pub token: String,
}

static LOG: std::sync::Once = std::sync::Once::new();

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// Starts a server with extra `THESIS_*` variables.
    pub async fn spawn_with(vars: &[(&str, &str)]) -> TestApp {
        Self::spawn_full(vars, "", None).await
    }

    /// Starts a server with extra variables, a TOML configuration, and optionally the database
    /// of another test app (to run several instances on one database).
    pub async fn spawn_full(
        vars: &[(&str, &str)],
        toml: &str,
        share_db_with: Option<&TestApp>,
    ) -> TestApp {
        LOG.call_once(|| {
            let filter = std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into());
            thesis_api::telemetry::init_logging(&filter, thesis_api::config::LogFormat::Text);
        });
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config = data_dir.path().join("thesis.toml");
        std::fs::write(&config, toml).expect("config file");

        let (database_url, pg_database) = match (share_db_with, postgres_server()) {
            (Some(other), _) => (other.database_url.clone(), None),
            (None, Some(server)) => {
                let name = format!("thesis_test_{}", uuid::Uuid::new_v4().simple());
                let admin = format!("{server}/postgres");
                let db = sea_orm::Database::connect(&admin)
                    .await
                    .expect("connect to PostgreSQL");
                use sea_orm::ConnectionTrait;
                db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                db.close().await.ok();
                (format!("{server}/{name}"), Some((admin, name)))
            }
            (None, None) => (
                format!("sqlite://{}", data_dir.path().join("thesis.db").display()),
                None,
            ),
        };

        let mut env: HashMap<String, String> = HashMap::new();
        env.insert("THESIS_CONFIG".into(), config.display().to_string());
        env.insert(
            "THESIS_DATA_DIR".into(),
            data_dir.path().display().to_string(),
        );
        env.insert("THESIS_DATABASE_URL".into(), database_url.clone());
        env.insert("THESIS_BIND".into(), "127.0.0.1:0".into());
        env.insert("THESIS_CRON".into(), "off".into());
        if let Some(other) = share_db_with {
            // instances of one deployment share the secret key
            env.insert(
                "THESIS_SECRET_KEY".into(),
                std::fs::read_to_string(other.data_dir.path().join("secret.key"))
                    .unwrap_or_else(|_| "x".repeat(64)),
            );
        }
        for (k, v) in vars {
            env.insert(k.to_string(), v.to_string());
        }
        let settings = Settings::load(&env).expect("settings");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        let app = App::build(settings, addr).await.expect("build app");
        let state = app.state.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.serve(listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        TestApp {
            addr,
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            data_dir,
            env,
            database_url,
            state,
            pg_database,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; `body` is sent as JSON when given. Returns status, headers and JSON body
    /// (Null when empty, a string when not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.call_full(method, path, token, body, &[]).await;
        (status, body)
    }

    pub async fn call_full(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, value)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }
    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, token, Some(body)).await
    }
    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, token, None).await
    }

    /// Signs a user up; `email` is used as given.
    pub async fn signup(&self, email: &str) -> TestUser {
        let (status, body) = self
            .post(
                "/v1/auth/signup",
                None,
                json!({"email": email, "password": "correct-horse", "name": email.split('@').next().unwrap()}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "signup {email}: {body}");
        TestUser {
            id: body["user"]["id"].as_str().unwrap().to_string(),
            email: email.to_string(),
            token: body["token"].as_str().unwrap().to_string(),
        }
    }

    /// Creates an organization owned by `token`'s user; returns it.
    pub async fn create_org(&self, token: &str, name: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/organization",
                Some(token),
                json!({"name": name, "email": "billing@example.com", "type": "team"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create org: {body}");
        body
    }

    /// Invites `email` into `org_id` with `role` as `token`; returns the membership.
    pub async fn invite(&self, token: &str, org_id: &str, email: &str, role: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/membership",
                Some(token),
                json!({"organizationId": org_id, "email": email, "role": role}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "invite {email}: {body}");
        body
    }

    pub fn outbox(&self) -> PathBuf {
        self.data_dir.path().join("outbox")
    }

    /// Every mail in the outbox (raw `.eml` text, quoted-printable soft breaks undone).
    pub fn mails(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.outbox()) else {
            return vec![];
        };
        let mut files: Vec<_> = dir
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| decode_mail(&std::fs::read_to_string(p).unwrap()))
            .collect()
    }

    /// Waits (up to 10 s) for a mail to `to` whose text contains `needle`.
    pub async fn wait_for_mail(&self, to: &str, needle: &str) -> String {
        for _ in 0..200 {
            if let Some(m) = self
                .mails()
                .into_iter()
                .find(|m| m.contains(&format!("To: {to}")) && m.contains(needle))
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no mail to {to} containing {needle:?}; outbox: {:?}",
            self.mails()
        );
    }

    /// Accepts an invitation with the link from its mail; returns the status and body.
    pub async fn accept_invite_from_mail(&self, email: &str) -> (StatusCode, Value) {
        let mail = self.wait_for_mail(email, "accept-invite-via-email").await;
        let link = extract_link(&mail, "/v1/public/organization-member/");
        let path = link
            .strip_prefix(&self.base)
            .expect("link to this server")
            .to_string();
        self.get(&path, None).await
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some((admin, name)) = self.pg_database.take() {
            // drop the per-test database; FORCE ends the server's remaining connections
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    use sea_orm::ConnectionTrait;
                    if let Ok(db) = sea_orm::Database::connect(&admin).await {
                        let _ = db
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                        db.close().await.ok();
                    }
                });
            })
            .join();
        }
    }
}

/// Undoes quoted-printable soft line breaks and `=3D`, enough to read links in test mails.
pub fn decode_mail(raw: &str) -> String {
    raw.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The first URL in `text` containing `needle`.
pub fn extract_link(text: &str, needle: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("http") && w.contains(needle))
        .unwrap_or_else(|| panic!("no link with {needle} in mail:\n{text}"))
        .to_string()
}

/// The value of `token=` in a text.
pub fn extract_token(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|| panic!("no line starting with {label:?} in:\n{text}"))
}

/// Asserts the JSON error shape and returns its message.
pub fn assert_error(body: &Value, status: StatusCode) -> Value {
    assert_eq!(body["statusCode"], status.as_u16(), "body: {body}");
    assert_eq!(
        body["error"],
        status.canonical_reason().unwrap(),
        "body: {body}"
    );
    assert!(
        body["message"].is_string() || body["message"].is_array(),
        "body: {body}"
    );
    body["message"].clone()
}

/// Asserts a 400 whose message list names `field`.
pub fn assert_validation(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "expected 400 for {field}: {body}"
    );
    let message = assert_error(body, StatusCode::BAD_REQUEST);
    let text = message.to_string();
    assert!(
        text.contains(field),
        "message does not name {field}: {text}"
    );
}

/// Whether a Python module used as a test peer is importable. When it is not, peer tests skip,
/// unless `THESIS_REQUIRE_PEERS=1` (set by `.ci/run`), where its absence fails the test.
pub fn python_peer_available(module: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("THESIS_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
            panic!(
                "the Python test peer `{module}` is missing (pip install -r .ci/requirements.txt)"
            );
        }
        eprintln!(
            "skipping: Python module `{module}` is not installed (run .ci/run to install test peers)"
        );
    }
    ok
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something listens on `port`.
pub async fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port}");
}

impl TestApp {
    /// Records usage of `cost_cents` for an organization through the ledger, as a
    /// usage-creating feature does (admission first; refused when a limit is reached).
    pub async fn use_cents(
        &self,
        org_id: &str,
        cost_cents: f64,
    ) -> Result<(), thesis_api::error::ApiError> {
        use thesis_api::billing::ledger;
        let org = uuid::Uuid::parse_str(org_id).unwrap();
        let cost = (cost_cents * 1e9).round() as i64;
        let admission = ledger::admit_org_id(
            &self.state.db,
            self.state.free_daily_limit_cents(),
            org,
            cost,
        )
        .await?;
        ledger::record(&self.state.db, Some(&admission), usage(org, cost)).await?;
        Ok(())
    }
}

/// A token usage of `cost_nanos` for `org`.
pub fn usage(org: uuid::Uuid, cost_nanos: i64) -> thesis_api::billing::ledger::NewUsage {
    thesis_api::billing::ledger::NewUsage {
        organization_id: org,
        user_id: None,
        metric_type: thesis_db::entities::MetricType::Tokens,
        model: Some("test-model".into()),
        machine_id: None,
        quantity: 1000.0,
        unit: "tokens".into(),
        input_tokens: Some(600),
        output_tokens: Some(400),
        cached_tokens: Some(0),
        reasoning_tokens: Some(0),
        cost_nanos,
        idempotency_key: None,
        metadata: None,
    }
}

impl TestApp {
    /// Nano-cents still reserved for requests in flight, once this instance's usage leases have
    /// been given back (what a lease holds for requests to come is not "in flight").
    pub async fn held_nanos(&self) -> i64 {
        use sea_orm::{EntityTrait, QuerySelect};
        self.state.leases.give_back(&self.state, true).await;
        let total: Option<i64> = thesis_db::entities::usage_reservation::Entity::find()
            .select_only()
            .column_as(
                sea_orm::sea_query::Expr::cust(
                    "CAST(COALESCE(SUM(amount_nanocents), 0) AS BIGINT)",
                ),
                "total",
            )
            .into_tuple()
            .one(&self.state.db)
            .await
            .unwrap();
        total.unwrap_or(0)
    }
}
