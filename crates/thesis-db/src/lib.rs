//! Persistence for the Thesis API: SeaORM entities, migrations and connection setup.
//!
//! One set of entities and migrations serves SQLite and PostgreSQL. The backend is chosen from the
//! URL scheme; any other scheme is refused. Dialect branches are rare and live here.

pub mod entities;
pub mod migrations;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

pub use sea_orm;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "unsupported database URL scheme `{0}`: THESIS_DATABASE_URL must start with sqlite:// or postgres://"
    )]
    UnsupportedScheme(String),
    #[error("could not create the directory for the SQLite database {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("could not connect to the database: {0}")]
    Connect(#[source] DbErr),
}

impl Backend {
    /// Picks the backend from the URL scheme; an unknown scheme is an error.
    pub fn from_url(url: &str) -> Result<Self, ConnectError> {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or(url);
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            other => Err(ConnectError::UnsupportedScheme(other.to_string())),
        }
    }
}

/// Connects to the database at `url` and tunes the pool for the backend.
///
/// SQLite: the file (and its directory) is created if missing, WAL journal, a busy timeout so that
/// concurrent writers wait instead of failing, foreign keys on, and several connections so readers
/// do not queue behind writers.
pub async fn connect(url: &str) -> Result<DatabaseConnection, ConnectError> {
    let backend = Backend::from_url(url)?;
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    match backend {
        Backend::Sqlite => {
            if let Some(path) = sqlite_path(url)
                && let Some(dir) = std::path::Path::new(&path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|source| ConnectError::CreateDir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            opts.max_connections(8).min_connections(1);
            opts.map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
            });
        }
        Backend::Postgres => {
            opts.max_connections(20).min_connections(1);
        }
    }
    sea_orm::Database::connect(opts)
        .await
        .map_err(ConnectError::Connect)
}

/// The file path inside a `sqlite://` URL, without query parameters (None for in-memory).
pub fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(path.to_string())
    }
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migrations::Migrator::up(db, None).await
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`), so a read-then-write transaction never fails with a stale snapshot when
/// another writer commits in between; on PostgreSQL it is a plain transaction and callers lock the
/// rows they depend on (`SELECT ... FOR UPDATE`).
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let options = TransactionOptions {
        sqlite_transaction_mode: match db.get_database_backend() {
            DbBackend::Sqlite => Some(SqliteTransactionMode::Immediate),
            _ => None,
        },
        ..Default::default()
    };
    db.begin_with_options(options).await
}

/// True when the error is a unique-constraint violation (a duplicate).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// The current time, truncated to microseconds: PostgreSQL keeps microseconds, so a value read back
/// equals the value written on both backends.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A new time-ordered id.
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// Round trip to the database, for readiness checks.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}
