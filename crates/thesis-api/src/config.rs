//! Settings: built-in defaults, then the TOML file, then `THESIS_*` environment variables.
//!
//! Every variable of the contract is read here, even where its feature lands later, so the
//! configuration table is complete. Secrets are wrapped in [`Secret`], whose `Debug` is redacted.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {message}")]
    Invalid { var: &'static str, message: String },
    #[error("could not read the configuration file {path}: {source}")]
    ReadFile {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {message}")]
    ParseFile { path: String, message: String },
    #[error("could not create or read the secret key file {path}: {source}")]
    SecretFile {
        path: String,
        source: std::io::Error,
    },
}

fn invalid(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineProvider {
    Local,
    Skypilot,
}

/// The fully resolved configuration of one server process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Secret<String>,
    /// External base URL without a trailing slash; `None` = `http://{bound address}`.
    pub public_url: Option<String>,
    /// Where the secret key came from: given, or the path of the generated key file.
    pub secret_key: SecretKeySource,
    pub config_path: Option<PathBuf>,
    pub admin_emails: Vec<String>,
    pub storage_url: String,
    pub smtp_url: Option<Secret<String>>,
    pub mail_from: String,
    pub stripe_secret_key: Option<Secret<String>>,
    pub stripe_webhook_secrets: Vec<Secret<String>>,
    pub stripe_api_url: String,
    pub stripe_price_id: Option<String>,
    pub machine_provider: MachineProvider,
    pub sky_bin: String,
    pub github_api_url: String,
    pub releases_repo: Option<String>,
    pub cron_enabled: bool,
    pub log_filter: String,
    pub log_format: LogFormat,
    pub file: FileConfig,
}

#[derive(Debug, Clone)]
pub enum SecretKeySource {
    Given(Secret<String>),
    File(PathBuf),
}

/// The parts of the TOML file that have no environment variable: models, machines, plans.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    #[serde(default)]
    pub machine_types: Vec<MachineTypeConfig>,
    #[serde(default)]
    pub machines: MachinesConfig,
    #[serde(default)]
    pub plans: PlansConfig,
    #[serde(default)]
    pub billing: BillingConfig,
    /// `[cron_schedule]`: cron job → interval in seconds, overriding the built-in schedule.
    #[serde(default)]
    pub cron_schedule: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub gateway: GatewayConfig,
}

/// `[gateway]`: limits of the LLM gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Responses (`POST /v1/responses`) this instance works on at once, streams included until
    /// their upstream has ended; one more is refused at once with 503 and `Retry-After`, so that
    /// an overload costs bounded memory instead of a queue that grows for as long as it lasts.
    #[serde(default = "default_max_in_flight")]
    pub max_responses_in_flight: usize,
}

fn default_max_in_flight() -> usize {
    4096
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_responses_in_flight: default_max_in_flight(),
        }
    }
}

/// Billing settings beyond the environment variables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingConfig {
    /// The Stripe billing meter's `event_name`; usage is reported to it in whole cents, so the
    /// payAsYouGo price should charge $0.01 per unit.
    #[serde(default = "default_meter_event")]
    pub stripe_meter_event: String,
    /// Where Stripe Checkout returns to; default `{public url}/billing?checkout=success|cancel`.
    #[serde(default)]
    pub checkout_success_url: Option<String>,
    #[serde(default)]
    pub checkout_cancel_url: Option<String>,
    /// Where the billing portal returns to; default `{public url}/billing`.
    #[serde(default)]
    pub portal_return_url: Option<String>,
}

impl Default for BillingConfig {
    fn default() -> Self {
        BillingConfig {
            stripe_meter_event: default_meter_event(),
            checkout_success_url: None,
            checkout_cancel_url: None,
            portal_return_url: None,
        }
    }
}

fn default_meter_event() -> String {
    "thesis_usage".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    pub provider: String,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub upstream_model: Option<String>,
    #[serde(default)]
    pub input_cents_per_mtok: f64,
    #[serde(default)]
    pub cached_input_cents_per_mtok: Option<f64>,
    #[serde(default)]
    pub output_cents_per_mtok: f64,
    /// Seconds to wait for the upstream's first byte (default 60).
    #[serde(default)]
    pub first_byte_timeout_secs: Option<u64>,
    /// Seconds a stream may stay silent (default 120).
    #[serde(default)]
    pub idle_timeout_secs: Option<u64>,
    /// The model's context window in tokens; with `truncation: "auto"`, the oldest context is
    /// dropped to fit.
    #[serde(default)]
    pub context_window: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineTypeConfig {
    pub cloud: String,
    pub machine_type: String,
    #[serde(default)]
    pub gpu_type: Option<String>,
    #[serde(default)]
    pub gpu_count: Option<u32>,
    pub price_per_hour_cents: f64,
    #[serde(default)]
    pub spot_price_per_hour_cents: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachinesConfig {
    #[serde(default)]
    pub local: LocalMachinesConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalMachinesConfig {
    #[serde(default)]
    pub notebook_command: String,
    #[serde(default)]
    pub core_command: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlansConfig {
    #[serde(default)]
    pub free: FreePlanConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreePlanConfig {
    #[serde(default = "default_daily_limit_cents")]
    pub daily_limit_cents: i64,
}

impl Default for FreePlanConfig {
    fn default() -> Self {
        FreePlanConfig {
            daily_limit_cents: default_daily_limit_cents(),
        }
    }
}

fn default_daily_limit_cents() -> i64 {
    100
}

/// The TOML file: the environment settings (same names, lower-case, without `THESIS_`) plus the
/// tables of [`FileConfig`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    bind: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    public_url: Option<String>,
    secret_key: Option<String>,
    admin_emails: Option<StringOrList>,
    storage_url: Option<String>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    stripe_secret_key: Option<String>,
    stripe_webhook_secret: Option<StringOrList>,
    stripe_api_url: Option<String>,
    stripe_price_id: Option<String>,
    machine_provider: Option<String>,
    sky_bin: Option<String>,
    github_api_url: Option<String>,
    releases_repo: Option<String>,
    cron: Option<String>,
    log: Option<String>,
    log_format: Option<String>,
    #[serde(default)]
    models: Vec<ModelConfig>,
    #[serde(default)]
    machine_types: Vec<MachineTypeConfig>,
    #[serde(default)]
    machines: MachinesConfig,
    #[serde(default)]
    plans: PlansConfig,
    #[serde(default)]
    billing: BillingConfig,
    #[serde(default)]
    cron_schedule: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    gateway: GatewayConfig,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn joined(self) -> String {
        match self {
            StringOrList::One(s) => s,
            StringOrList::Many(v) => v.join(","),
        }
    }
}

impl Settings {
    /// Loads settings from the process environment (and the TOML file it points at).
    pub fn from_env() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("THESIS_"))
            .collect();
        Self::load(&env)
    }

    /// Loads settings from the given variables; used by the binary and by tests.
    pub fn load(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let var = |name: &str| {
            env.get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let config_path = match var("THESIS_CONFIG") {
            Some(p) => Some(PathBuf::from(p)),
            None => {
                let default = PathBuf::from("./thesis.toml");
                default.exists().then_some(default)
            }
        };
        let raw = match &config_path {
            Some(path) => read_file(path)?,
            None => RawFile::default(),
        };

        // env wins over the file, the file over the default
        let pick =
            |name: &str, file: Option<String>| var(name).or(file.filter(|v| !v.trim().is_empty()));

        let bind_raw = pick("THESIS_BIND", raw.bind).unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind: SocketAddr = bind_raw.parse().map_err(|_| {
            invalid(
                "THESIS_BIND",
                format!("`{bind_raw}` is not an address like 127.0.0.1:8080"),
            )
        })?;

        let data_dir = PathBuf::from(
            pick("THESIS_DATA_DIR", raw.data_dir).unwrap_or_else(|| "./thesis-data".into()),
        );

        let database_url = pick("THESIS_DATABASE_URL", raw.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("thesis.db").display()));
        thesis_db::Backend::from_url(&database_url)
            .map_err(|e| invalid("THESIS_DATABASE_URL", e.to_string()))?;

        let public_url = match pick("THESIS_PUBLIC_URL", raw.public_url) {
            Some(u) => {
                let parsed = url::Url::parse(&u).map_err(|e| {
                    invalid("THESIS_PUBLIC_URL", format!("`{u}` is not a URL: {e}"))
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid(
                        "THESIS_PUBLIC_URL",
                        "must be an http:// or https:// URL",
                    ));
                }
                Some(u.trim_end_matches('/').to_string())
            }
            None => None,
        };

        let secret_key = match pick("THESIS_SECRET_KEY", raw.secret_key) {
            Some(k) if k.len() < 32 => {
                return Err(invalid(
                    "THESIS_SECRET_KEY",
                    "must be at least 32 characters long (e.g. `openssl rand -hex 32`)",
                ));
            }
            Some(k) => SecretKeySource::Given(Secret::new(k)),
            None => SecretKeySource::File(data_dir.join("secret.key")),
        };

        let admin_emails = pick(
            "THESIS_ADMIN_EMAILS",
            raw.admin_emails.map(StringOrList::joined),
        )
        .map(|v| {
            v.split(',')
                .map(|e| e.trim().to_lowercase())
                .filter(|e| !e.is_empty())
                .collect()
        })
        .unwrap_or_default();

        let storage_url = pick("THESIS_STORAGE_URL", raw.storage_url)
            .unwrap_or_else(|| format!("file://{}", absolute(&data_dir.join("objects")).display()));
        match storage_url.split_once("://") {
            Some(("file" | "s3" | "gs", rest)) if !rest.is_empty() => {}
            _ => {
                return Err(invalid(
                    "THESIS_STORAGE_URL",
                    format!(
                        "`{storage_url}` must be file:///path, s3://bucket[/prefix] or gs://bucket[/prefix]"
                    ),
                ));
            }
        }

        let smtp_url = pick("THESIS_SMTP_URL", raw.smtp_url);
        if let Some(u) = &smtp_url
            && !(u.starts_with("smtp://") || u.starts_with("smtps://"))
        {
            return Err(invalid(
                "THESIS_SMTP_URL",
                "must start with smtp:// or smtps:// (the value is not shown because it may hold a password)",
            ));
        }

        let mail_from = pick("THESIS_MAIL_FROM", raw.mail_from)
            .unwrap_or_else(|| "Thesis <no-reply@localhost>".into());
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "THESIS_MAIL_FROM",
                format!("`{mail_from}` is not a mailbox like `Thesis <no-reply@example.com>`"),
            ));
        }

        let stripe_webhook_secrets: Vec<Secret<String>> = pick(
            "THESIS_STRIPE_WEBHOOK_SECRET",
            raw.stripe_webhook_secret.map(StringOrList::joined),
        )
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Secret::new(s.to_string()))
                .collect()
        })
        .unwrap_or_default();

        let stripe_api_url = pick("THESIS_STRIPE_API_URL", raw.stripe_api_url)
            .unwrap_or_else(|| "https://api.stripe.com".into());
        check_http_url("THESIS_STRIPE_API_URL", &stripe_api_url)?;

        let machine_provider = match pick("THESIS_MACHINE_PROVIDER", raw.machine_provider)
            .as_deref()
            .unwrap_or("local")
        {
            "local" => MachineProvider::Local,
            "skypilot" => MachineProvider::Skypilot,
            other => {
                return Err(invalid(
                    "THESIS_MACHINE_PROVIDER",
                    format!("`{other}` is neither `local` nor `skypilot`"),
                ));
            }
        };

        let github_api_url = pick("THESIS_GITHUB_API_URL", raw.github_api_url)
            .unwrap_or_else(|| "https://api.github.com".into());
        check_http_url("THESIS_GITHUB_API_URL", &github_api_url)?;

        let releases_repo = pick("THESIS_RELEASES_REPO", raw.releases_repo);
        if let Some(repo) = &releases_repo {
            let ok = repo
                .split_once('/')
                .is_some_and(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'));
            if !ok {
                return Err(invalid(
                    "THESIS_RELEASES_REPO",
                    format!("`{repo}` is not of the form owner/name"),
                ));
            }
        }

        let cron_enabled = match pick("THESIS_CRON", raw.cron).as_deref().unwrap_or("on") {
            "on" => true,
            "off" => false,
            other => {
                return Err(invalid(
                    "THESIS_CRON",
                    format!("`{other}` is neither `on` nor `off`"),
                ));
            }
        };

        let log_filter = pick("THESIS_LOG", raw.log).unwrap_or_else(|| "info".into());
        let log_format = match pick("THESIS_LOG_FORMAT", raw.log_format)
            .as_deref()
            .unwrap_or("text")
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "THESIS_LOG_FORMAT",
                    format!("`{other}` is neither `text` nor `json`"),
                ));
            }
        };

        let file = FileConfig {
            models: raw.models,
            machine_types: raw.machine_types,
            machines: raw.machines,
            plans: raw.plans,
            billing: raw.billing,
            cron_schedule: raw.cron_schedule,
            gateway: raw.gateway,
        };
        if file.gateway.max_responses_in_flight == 0
            || file.gateway.max_responses_in_flight > tokio::sync::Semaphore::MAX_PERMITS
        {
            return Err(invalid(
                "gateway.max_responses_in_flight",
                format!("must be from 1 to {}", tokio::sync::Semaphore::MAX_PERMITS),
            ));
        }
        for (job, secs) in &file.cron_schedule {
            if !crate::cron::JOB_NAMES.contains(&job.as_str()) {
                return Err(invalid(
                    "cron_schedule",
                    format!(
                        "unknown job `{job}` (jobs: {})",
                        crate::cron::JOB_NAMES.join(", ")
                    ),
                ));
            }
            if *secs == 0 {
                return Err(invalid(
                    "cron_schedule",
                    format!("the interval of `{job}` must be at least 1 second"),
                ));
            }
        }
        if file.plans.free.daily_limit_cents < 0 {
            return Err(invalid(
                "plans.free.daily_limit_cents",
                "must not be negative",
            ));
        }

        Ok(Settings {
            bind,
            data_dir,
            database_url: Secret::new(database_url),
            public_url,
            secret_key,
            config_path,
            admin_emails,
            storage_url,
            smtp_url: smtp_url.map(Secret::new),
            mail_from,
            stripe_secret_key: pick("THESIS_STRIPE_SECRET_KEY", raw.stripe_secret_key)
                .map(Secret::new),
            stripe_webhook_secrets,
            stripe_api_url: stripe_api_url.trim_end_matches('/').to_string(),
            stripe_price_id: pick("THESIS_STRIPE_PRICE_ID", raw.stripe_price_id),
            machine_provider,
            sky_bin: pick("THESIS_SKY_BIN", raw.sky_bin).unwrap_or_else(|| "sky".into()),
            github_api_url: github_api_url.trim_end_matches('/').to_string(),
            releases_repo,
            cron_enabled,
            log_filter,
            log_format,
            file,
        })
    }

    /// The secret key bytes: the configured value, or the key generated once into the data dir.
    pub fn load_secret_key(&self) -> Result<Secret<Vec<u8>>, ConfigError> {
        match &self.secret_key {
            SecretKeySource::Given(k) => Ok(Secret::new(k.expose().as_bytes().to_vec())),
            SecretKeySource::File(path) => load_or_create_key_file(path),
        }
    }

    /// The database URL with any password hidden, for logs.
    pub fn database_url_for_logs(&self) -> String {
        redact_url(self.database_url.expose())
    }
}

fn check_http_url(var: &'static str, value: &str) -> Result<(), ConfigError> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(invalid(var, format!("`{value}` is not an http(s) URL"))),
    }
}

fn read_file(path: &Path) -> Result<RawFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.display().to_string(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::ParseFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Reads the key file, or creates it with 32 random bytes (hex) readable only by the owner.
/// `create_new` makes concurrent first starts agree on one key.
fn load_or_create_key_file(path: &Path) -> Result<Secret<Vec<u8>>, ConfigError> {
    use std::io::Write;
    let err = |source| ConfigError::SecretFile {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            let key = hex::encode(rand::random::<[u8; 32]>());
            file.write_all(key.as_bytes()).map_err(err)?;
            file.sync_all().map_err(err)?;
            Ok(Secret::new(key.into_bytes()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // another process may be writing it right now; wait for a complete key
            for _ in 0..50 {
                let key = std::fs::read_to_string(path).map_err(err)?;
                let key = key.trim();
                if key.len() >= 32 {
                    return Ok(Secret::new(key.as_bytes().to_vec()));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(err(std::io::Error::other(
                "the key file is shorter than 32 characters; delete it or set THESIS_SECRET_KEY",
            )))
        }
        Err(e) => Err(err(e)),
    }
}

/// Replaces the password of a URL with `***`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // never pick up a thesis.toml from the working directory in unit tests
        map.entry("THESIS_CONFIG".into())
            .or_insert_with(|| "/nonexistent/thesis.toml".into());
        map
    }

    #[test]
    fn defaults_need_nothing() {
        let mut e = env(&[]);
        e.remove("THESIS_CONFIG");
        let s = Settings::load(&e).expect("defaults load");
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert!(s.database_url.expose().starts_with("sqlite://"));
        assert!(s.storage_url.starts_with("file://"));
        assert!(s.cron_enabled);
        assert_eq!(s.file.plans.free.daily_limit_cents, 100);
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let err = Settings::load(&env(&[])).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/thesis.toml"));
    }

    #[test]
    fn unknown_database_scheme_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("t.toml");
        std::fs::write(&cfg, "").unwrap();
        let err = Settings::load(&env(&[
            ("THESIS_CONFIG", cfg.to_str().unwrap()),
            ("THESIS_DATABASE_URL", "mysql://x/y"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("THESIS_DATABASE_URL"), "{err}");
    }

    #[test]
    fn env_overrides_file_and_secrets_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("t.toml");
        std::fs::write(
            &cfg,
            "bind = \"127.0.0.1:9000\"\ncron = \"off\"\nstripe_secret_key = \"sk_test_file\"\n[plans.free]\ndaily_limit_cents = 7\n[[models]]\nname = \"m\"\nprovider = \"echo\"\n",
        )
        .unwrap();
        let s = Settings::load(&env(&[
            ("THESIS_CONFIG", cfg.to_str().unwrap()),
            ("THESIS_BIND", "127.0.0.1:9001"),
            ("THESIS_STRIPE_WEBHOOK_SECRET", "whsec_a, whsec_b"),
        ]))
        .unwrap();
        assert_eq!(s.bind.port(), 9001);
        assert!(!s.cron_enabled);
        assert_eq!(s.file.plans.free.daily_limit_cents, 7);
        assert_eq!(s.file.models.len(), 1);
        assert_eq!(s.stripe_webhook_secrets.len(), 2);
        let debug = format!("{s:?}");
        assert!(!debug.contains("sk_test_file"), "{debug}");
        assert!(!debug.contains("whsec_a"), "{debug}");
    }

    #[test]
    fn the_gateway_in_flight_limit_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("t.toml");
        let load = |toml: &str| {
            std::fs::write(&cfg, toml).unwrap();
            Settings::load(&env(&[("THESIS_CONFIG", cfg.to_str().unwrap())]))
        };
        assert_eq!(load("").unwrap().file.gateway.max_responses_in_flight, 4096);
        let s = load("[gateway]\nmax_responses_in_flight = 10\n").unwrap();
        assert_eq!(s.file.gateway.max_responses_in_flight, 10);
        let err = load("[gateway]\nmax_responses_in_flight = 0\n").unwrap_err();
        assert!(err.to_string().contains("max_responses_in_flight"), "{err}");
        let err = load("[gateway]\nmax_in_flight = 10\n").unwrap_err();
        assert!(err.to_string().contains("max_in_flight"), "{err}");
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("t.toml");
        std::fs::write(&cfg, "bnd = \"x\"\n").unwrap();
        let err = Settings::load(&env(&[("THESIS_CONFIG", cfg.to_str().unwrap())])).unwrap_err();
        assert!(err.to_string().contains("bnd"), "{err}");
    }

    #[test]
    fn short_secret_key_is_refused_and_url_passwords_are_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("t.toml");
        std::fs::write(&cfg, "").unwrap();
        let err = Settings::load(&env(&[
            ("THESIS_CONFIG", cfg.to_str().unwrap()),
            ("THESIS_SECRET_KEY", "short"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("THESIS_SECRET_KEY"));
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
    }

    #[test]
    fn key_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let a = load_or_create_key_file(&path).unwrap();
        let b = load_or_create_key_file(&path).unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 64);
    }
}
