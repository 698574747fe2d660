//! SeaORM entities. Enumerations are stored as the exact strings the API uses on the wire.

pub mod api_key;
pub mod auth_session;
pub mod billing_period;
pub mod chat_session;
pub mod cron_execution;
pub mod enums;
pub mod feedback;
pub mod membership;
pub mod newsletter_subscriber;
pub mod organization;
pub mod password_reset;
pub mod rate_limit;
pub mod response;
pub mod session_turn;
pub mod stripe_event;
pub mod stripe_usage_report;
pub mod trial;
pub mod usage_daily_total;
pub mod usage_record;
pub mod usage_reservation;
pub mod user;

pub use enums::*;
