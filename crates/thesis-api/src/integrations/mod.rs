//! Adapters to the outside world, each behind a small interface with the real implementation as
//! the default.

pub mod mail;
pub mod stripe;
