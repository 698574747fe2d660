//! Persistence for the Thesis API: SeaORM entities, migrations and connection setup.
//!
//! One set of entities and migrations serves SQLite and PostgreSQL. The backend is chosen from the
//! URL scheme; any other scheme is refused. Dialect branches are rare and live here.

pub mod batch;
pub mod entities;
pub mod migrations;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, QueryResult, SqlErr, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

pub use batch::Batch;
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
            // a local file does not drop connections: no ping before each checkout (on SQLite
            // every statement is a round trip to the connection's thread)
            opts.max_connections(8)
                .min_connections(1)
                .test_before_acquire(false);
            opts.map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
                    // the server checkpoints in the background (`checkpoint`); this is the
                    // backstop should it fall behind, and what short-lived commands rely on
                    .pragma("wal_autocheckpoint", "10000")
            });
        }
        Backend::Postgres => {
            // ping only connections idle long enough for a server or proxy to have dropped them
            opts.max_connections(20)
                .min_connections(1)
                .test_before_acquire_if_idle_for(Duration::from_secs(30));
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

/// The writers of each SQLite file in this process, queued first come, first served.
///
/// SQLite admits one writer at a time; a connection that finds the lock taken sleeps in its busy
/// handler (1 ms, then 2, 5, 10 ...) and may wake long after the lock was free again. Queueing
/// the writers of this process here hands the lock over at once. Other processes (the CLI) still
/// meet the busy timeout, and correctness never depends on this queue: SQLite's lock does.
static SQLITE_WRITERS: LazyLock<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

fn sqlite_writers(db: &DatabaseConnection) -> Option<Arc<tokio::sync::Mutex<()>>> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_string_lossy()
        .into_owned();
    let mut writers = SQLITE_WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    Some(writers.entry(file).or_default().clone())
}

/// A turn to write: on SQLite, this process's other writers wait until it is dropped; on
/// PostgreSQL it holds nothing.
pub struct WriteTurn(#[allow(dead_code)] Option<tokio::sync::OwnedMutexGuard<()>>);

/// Waits for a turn to write outside a transaction (a single statement on a hot path).
pub async fn write_turn(db: &DatabaseConnection) -> WriteTurn {
    match sqlite_writers(db) {
        Some(queue) => WriteTurn(Some(queue.lock_owned().await)),
        None => WriteTurn(None),
    }
}

/// A transaction that writes (see [`begin_write`]). Dropping it uncommitted rolls it back.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _turn: WriteTurn,
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }
    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }
    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }
    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }
    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }
    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }
}

/// Begins a transaction that will write. On SQLite it waits for this process's turn to write
/// and takes the write lock at once (`BEGIN IMMEDIATE`), so a read-then-write transaction never
/// fails with a stale snapshot when another writer commits in between; on PostgreSQL it is a
/// plain transaction and callers lock the rows they depend on (`SELECT ... FOR UPDATE`).
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTxn, DbErr> {
    let turn = write_turn(db).await;
    let options = TransactionOptions {
        sqlite_transaction_mode: match db.get_database_backend() {
            DbBackend::Sqlite => Some(SqliteTransactionMode::Immediate),
            _ => None,
        },
        ..Default::default()
    };
    Ok(WriteTxn {
        txn: db.begin_with_options(options).await?,
        _turn: turn,
    })
}

/// Copies what the SQLite write-ahead log holds into the database file without blocking readers
/// or writers (`PRAGMA wal_checkpoint(PASSIVE)`); the server runs it in the background so that no
/// request pays for it. Nothing to do on PostgreSQL.
pub async fn checkpoint(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Sqlite {
        db.execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
            .await?;
    }
    Ok(())
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
