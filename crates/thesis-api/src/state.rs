//! Shared application state, cloned into every handler.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio_util::task::TaskTracker;

use crate::config::{Secret, Settings};
use crate::integrations::mail::Mailer;
use crate::integrations::stripe::StripeClient;

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
    /// The models of `/v1/responses`.
    pub models: Arc<crate::llm::Models>,
    /// The Stripe client; `None` in self-hosted billing mode.
    pub stripe: Option<Arc<StripeClient>>,
    /// What tokens were found to be, for the requests that follow (`auth::cache`).
    pub auth_cache: Arc<crate::auth::cache::AuthCache>,
    /// Responses under way on this instance (`[gateway] max_responses_in_flight` permits).
    pub responses_in_flight: Arc<tokio::sync::Semaphore>,
    /// This instance's usage leases (`billing::leases`).
    pub leases: Arc<crate::billing::leases::Leases>,
    /// Usage recordings in flight on this instance, which usage reads wait for.
    pub recordings: Arc<crate::billing::recordings::Recordings>,
    /// Background work (mail delivery, ...) that shutdown waits for.
    pub background: TaskTracker,
    /// Cancelled at shutdown: stops the cron scheduler and other loops.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The rounds of a periodic background task (see [`AppState::ticks`]).
pub struct Ticks {
    interval: tokio::time::Interval,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Ticks {
    /// Waits for the next round: `false` once the server shuts down.
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = self.interval.tick() => true,
        }
    }
}

impl AppState {
    /// Rounds every `period` until shutdown: the first at once, and a late round delays the
    /// next ones rather than bunching them up. A round under way is never cut short, since the
    /// work runs between calls to [`Ticks::next`].
    pub fn ticks(&self, period: std::time::Duration) -> Ticks {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticks {
            interval,
            shutdown: self.shutdown.clone(),
        }
    }

    /// The free plan's daily limit in cents.
    pub fn free_daily_limit_cents(&self) -> i64 {
        self.settings.file.plans.free.daily_limit_cents
    }
}
