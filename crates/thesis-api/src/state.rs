//! Shared application state, cloned into every handler.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio_util::task::TaskTracker;

use crate::config::{Secret, Settings};
use crate::integrations::mail::Mailer;

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    /// Signs URLs and one-time tokens.
    pub secret: Arc<Secret<Vec<u8>>>,
    /// External base URL without a trailing slash.
    pub public_url: Arc<str>,
    /// Normalized e-mails of platform admins from `THESIS_ADMIN_EMAILS`.
    pub admin_emails: Arc<[String]>,
    pub mailer: Arc<Mailer>,
    /// Background work (mail delivery, ...) that shutdown waits for.
    pub background: TaskTracker,
}
