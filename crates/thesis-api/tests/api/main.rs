//! Integration tests: the real server on an ephemeral port, driven over HTTP like a client.
//! The database is SQLite unless `THESIS_TEST_DATABASE_URL` names a PostgreSQL server
//! (`postgres://postgres@127.0.0.1:5432`), where each test gets a fresh database.

mod support;

mod auth;
mod auth_cache;
mod batch;
mod billing;
mod cli;
mod concurrency;
mod cron;
mod feedback;
mod lifecycle;
mod mail;
mod membership;
mod newsletter;
mod openai_sdk;
mod organization;
mod responses;
mod stripe;
mod system;
