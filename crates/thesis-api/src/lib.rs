//! The Thesis API server.
//!
//! `App::build(settings, addr)` assembles everything; `App::serve(listener, shutdown)` runs it.
//! The binary (`main.rs`) and the integration tests start it the same way.

pub mod app;
pub mod auth;
pub mod billing;
pub mod cli;
pub mod config;
pub mod cron;
pub mod error;
pub mod features;
pub mod integrations;
pub mod llm;
pub mod openapi;
pub mod pagination;
pub mod patch;
pub mod ratelimit;
pub mod state;
pub mod telemetry;

pub use app::{App, openapi_document};
pub use config::Settings;
