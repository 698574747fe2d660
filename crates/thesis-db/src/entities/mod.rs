//! SeaORM entities. Enumerations are stored as the exact strings the API uses on the wire.

pub mod api_key;
pub mod auth_session;
pub mod enums;
pub mod feedback;
pub mod membership;
pub mod newsletter_subscriber;
pub mod organization;
pub mod password_reset;
pub mod rate_limit;
pub mod user;

pub use enums::*;
