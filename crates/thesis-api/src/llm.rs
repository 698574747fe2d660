//! The models this server offers: the `[[models]]` of the configuration and the built-in
//! `thesis-echo`, each with its provider, upstream name and prices.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use thesis_llm::{Provider, ProviderKind, Usage};

use crate::billing::money::{price_per_mtok_to_nanos_per_token, token_cost};
use crate::config::{ModelConfig, Settings};

/// The built-in model that answers without any network.
pub const ECHO_MODEL: &str = "thesis-echo";

pub struct ModelEntry {
    /// What clients send as `model` (and what usage records name).
    pub name: String,
    pub upstream_model: String,
    pub provider: Provider,
    pub input_nanos_per_token: i64,
    pub cached_nanos_per_token: i64,
    pub output_nanos_per_token: i64,
    pub context_window: Option<u64>,
}

impl ModelEntry {
    /// Cost of a response's tokens, in nano-cents.
    pub fn cost(&self, u: &Usage) -> i64 {
        let cached = u.cached_tokens.min(u.input_tokens) as i64;
        let uncached = u.input_tokens as i64 - cached;
        token_cost(uncached, self.input_nanos_per_token)
            + token_cost(cached, self.cached_nanos_per_token)
            + token_cost(u.output_tokens as i64, self.output_nanos_per_token)
    }
}

#[derive(Default)]
pub struct Models {
    by_name: HashMap<String, Arc<ModelEntry>>,
}

#[derive(Debug, thiserror::Error)]
#[error("[[models]] `{model}`: {message}")]
pub struct ModelConfigError {
    pub model: String,
    pub message: String,
}

/// The HTTP client every upstream shares: connection reuse, no Nagle delay, bounded pools.
pub fn upstream_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(2048)
        .tcp_nodelay(true)
        .user_agent(thesis_llm::providers::USER_AGENT_VALUE)
        .build()
        .expect("the HTTP client builds")
}

fn entry(
    cfg: &ModelConfig,
    http: &reqwest::Client,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ModelEntry, ModelConfigError> {
    let err = |message: String| ModelConfigError {
        model: cfg.name.clone(),
        message,
    };
    if cfg.name.trim().is_empty() {
        return Err(err("name must not be empty".into()));
    }
    let kind = ProviderKind::parse(&cfg.provider).ok_or_else(|| {
        err(format!(
            "provider `{}` is not one of openai, openai-chat, anthropic, echo",
            cfg.provider
        ))
    })?;
    for (field, price) in [
        ("input_cents_per_mtok", cfg.input_cents_per_mtok),
        ("output_cents_per_mtok", cfg.output_cents_per_mtok),
        (
            "cached_input_cents_per_mtok",
            cfg.cached_input_cents_per_mtok.unwrap_or(0.0),
        ),
    ] {
        if !(0.0..=1e9).contains(&price) {
            return Err(err(format!("{field} must be a price of 0 or more")));
        }
    }
    let base_url = match (kind, &cfg.base_url) {
        (ProviderKind::Echo, _) => String::new(),
        (_, Some(u)) if u.starts_with("http://") || u.starts_with("https://") => u.clone(),
        (_, Some(u)) => return Err(err(format!("base_url `{u}` is not an http(s) URL"))),
        (_, None) => return Err(err("base_url is required for this provider".into())),
    };
    let api_key = match &cfg.api_key_env {
        Some(var) => Some(
            env(var)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| err(format!("the variable {var} (api_key_env) is not set")))?,
        ),
        None => None,
    };
    let input = price_per_mtok_to_nanos_per_token(cfg.input_cents_per_mtok);
    Ok(ModelEntry {
        name: cfg.name.clone(),
        upstream_model: cfg
            .upstream_model
            .clone()
            .unwrap_or_else(|| cfg.name.clone()),
        provider: Provider::new(
            kind,
            &base_url,
            api_key,
            http.clone(),
            Duration::from_secs(cfg.first_byte_timeout_secs.unwrap_or(60)),
            Duration::from_secs(cfg.idle_timeout_secs.unwrap_or(120)),
        )
        .map_err(err)?,
        input_nanos_per_token: input,
        cached_nanos_per_token: cfg
            .cached_input_cents_per_mtok
            .map(price_per_mtok_to_nanos_per_token)
            .unwrap_or(input),
        output_nanos_per_token: price_per_mtok_to_nanos_per_token(cfg.output_cents_per_mtok),
        context_window: cfg.context_window,
    })
}

impl Models {
    /// The configured models plus `thesis-echo` (free unless configured otherwise).
    pub fn from_settings(settings: &Settings) -> Result<Models, ModelConfigError> {
        let http = upstream_client();
        let env = |var: &str| std::env::var(var).ok();
        let mut by_name = HashMap::new();
        for cfg in &settings.file.models {
            let e = entry(cfg, &http, &env)?;
            if by_name.insert(e.name.clone(), Arc::new(e)).is_some() {
                return Err(ModelConfigError {
                    model: cfg.name.clone(),
                    message: "the name is used twice".into(),
                });
            }
        }
        if !by_name.contains_key(ECHO_MODEL) {
            let echo = ModelConfig {
                name: ECHO_MODEL.into(),
                provider: "echo".into(),
                base_url: None,
                api_key_env: None,
                upstream_model: None,
                input_cents_per_mtok: 0.0,
                cached_input_cents_per_mtok: None,
                output_cents_per_mtok: 0.0,
                first_byte_timeout_secs: None,
                idle_timeout_secs: None,
                context_window: None,
            };
            by_name.insert(ECHO_MODEL.into(), Arc::new(entry(&echo, &http, &env)?));
        }
        Ok(Models { by_name })
    }

    pub fn get(&self, name: &str) -> Option<Arc<ModelEntry>> {
        self.by_name.get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_name.keys().cloned().collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(base_url: &str, key_var: Option<&str>) -> ModelConfig {
        ModelConfig {
            name: "m".into(),
            provider: "openai".into(),
            base_url: Some(base_url.into()),
            api_key_env: key_var.map(Into::into),
            upstream_model: None,
            input_cents_per_mtok: 1.0,
            cached_input_cents_per_mtok: None,
            output_cents_per_mtok: 1.0,
            first_byte_timeout_secs: None,
            idle_timeout_secs: None,
            context_window: None,
        }
    }

    fn build(cfg: &ModelConfig, key: &str) -> Result<ModelEntry, ModelConfigError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let key = key.to_string();
        entry(cfg, &reqwest::Client::new(), &move |_| Some(key.clone()))
    }

    #[test]
    fn a_model_is_checked_when_the_configuration_is_read() {
        assert!(build(&model("http://127.0.0.1:9/v1", Some("K")), "sk-1").is_ok());
        let e = build(&model("http://exa mple/v1", None), "").err().unwrap();
        assert!(e.message.contains("not a valid URL"), "{}", e.message);
        let e = build(&model("ftp://example.com", None), "").err().unwrap();
        assert!(e.message.contains("not an http(s) URL"), "{}", e.message);
        // a key no header can carry is refused, and not repeated in the error
        let e = build(&model("http://127.0.0.1:9/v1", Some("K")), "sk-\nsecret")
            .err()
            .unwrap();
        assert!(e.message.contains("API key"), "{}", e.message);
        assert!(!e.message.contains("secret"), "{}", e.message);
    }
}
