//! The command line: `serve` (default), `migrate`, `user create`, `api-key create`, `cron run`,
//! `openapi`.

use clap::{Parser, Subcommand};
use sea_orm::prelude::*;
use thesis_db::entities::user;

use crate::config::Settings;
use crate::error::{ApiError, normalize_email, rules};
use crate::features::api_key::dto::ApiKeyDto;
use crate::features::user::dto::UserDto;

#[derive(Debug, Parser)]
#[command(name = "thesis-api", version, about = "The Thesis API server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API keys.
    #[command(name = "api-key")]
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Run cron jobs by hand.
    Cron {
        #[command(subcommand)]
        command: CronCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user and print it as JSON.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        name: Option<String>,
        /// Make the user a platform administrator.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key for the user with this e-mail and print it as JSON (the key is shown once).
    Create {
        #[arg(long)]
        email: String,
        /// Organization the key acts in by default (the user must be a member).
        #[arg(long)]
        org: Option<Uuid>,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// Run one job once, now, and record it like a scheduled run.
    Run { job: String },
}

/// Human-readable failure of a CLI command.
fn cli_error(e: ApiError) -> anyhow::Error {
    match e {
        ApiError::Validation(m) => anyhow::anyhow!(m.join("; ")),
        other => anyhow::anyhow!(other.to_string()),
    }
}

pub async fn user_create(
    settings: Settings,
    email: String,
    password: String,
    name: Option<String>,
    admin: bool,
) -> anyhow::Result<serde_json::Value> {
    if rules::email(&email, &()).is_err() {
        anyhow::bail!("--email `{email}` is not a valid e-mail address");
    }
    if password.chars().count() < 8 {
        anyhow::bail!("--password must be at least 8 characters");
    }
    let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or("").to_string());
    let state = offline_state(settings).await?;
    let user = crate::features::auth::service::create_user(&state, &email, &password, &name, admin)
        .await
        .map_err(cli_error)?;
    let is_admin = state.is_platform_admin(&user);
    Ok(serde_json::to_value(UserDto::new(user, is_admin))?)
}

pub async fn api_key_create(
    settings: Settings,
    email: String,
    org: Option<Uuid>,
    name: Option<String>,
) -> anyhow::Result<serde_json::Value> {
    let state = offline_state(settings).await?;
    let user = user::Entity::find()
        .filter(user::Column::EmailNormalized.eq(normalize_email(&email)))
        .one(&state.db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user with e-mail {email}"))?;
    let (model, key) = crate::features::api_key::service::create_api_key(
        &state.db,
        user.id,
        name.as_deref().unwrap_or("cli"),
        org,
    )
    .await
    .map_err(cli_error)?;
    Ok(serde_json::to_value(ApiKeyDto::new(model, Some(key)))?)
}

/// Runs one cron job now, recorded as a manual execution; returns the execution as JSON.
pub async fn cron_run(settings: Settings, job: &str) -> anyhow::Result<serde_json::Value> {
    let state = offline_state(settings).await?;
    let execution = crate::cron::run_now(&state, job).await.map_err(cli_error)?;
    Ok(serde_json::to_value(
        crate::features::admin::cron::CronExecutionDto::from(execution),
    )?)
}

/// The application state for a one-shot command (no listener).
async fn offline_state(settings: Settings) -> anyhow::Result<crate::state::AppState> {
    let addr = settings.bind;
    Ok(crate::App::build(settings, addr).await?.state)
}
