//! Several write statements committed together in one round trip to the database.
//!
//! A transaction of N statements costs N + 2 round trips (BEGIN, each statement, COMMIT), and on
//! a busy host each one is a thread or process wake-up of a tenth of a millisecond. A hot path
//! whose writes do not depend on each other's results sends them at once instead:
//! - SQLite: one multi-statement string `BEGIN IMMEDIATE; ...; COMMIT` on one pooled connection
//!   (parameters bind across the statements in order); on failure it is rolled back on that same
//!   connection, and a connection that cannot be rolled back is closed rather than reused.
//! - PostgreSQL: one statement whose parts are data-modifying CTEs
//!   (`WITH b0 AS (...), b1 AS (...) SELECT 1`), atomic like any single statement.
//!
//! The parts see the database as it was before the batch: on PostgreSQL they share one snapshot,
//! so no part may depend on another's effect, and two parts must not change one row. Any failure
//! (a unique violation included) leaves nothing written; callers fall back to a transaction.

use sea_orm::sea_query::Values;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, StatementBuilder};
use sea_query_sqlx::SqlxValues;

/// Write statements that commit together (see the module documentation).
pub struct Batch {
    backend: DbBackend,
    parts: Vec<Statement>,
}

impl Batch {
    pub fn new(backend: DbBackend) -> Self {
        Batch {
            backend,
            parts: Vec::new(),
        }
    }

    /// Adds an INSERT, UPDATE or DELETE statement.
    pub fn push<S: StatementBuilder>(&mut self, statement: &S) -> &mut Self {
        self.parts.push(self.backend.build(statement));
        self
    }

    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The one SQL text and its parameters, for this backend.
    fn render(self) -> (String, Values) {
        let mut values = Vec::new();
        let mut sql = String::new();
        match self.backend {
            DbBackend::Postgres => {
                sql.push_str("WITH ");
                for (i, part) in self.parts.into_iter().enumerate() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    let offset = values.len();
                    sql.push_str(&format!("b{i} AS ("));
                    sql.push_str(&renumber_placeholders(&part.sql, offset));
                    sql.push(')');
                    values.extend(part.values.map(|v| v.0).unwrap_or_default());
                }
                sql.push_str(" SELECT 1");
            }
            _ => {
                sql.push_str("BEGIN IMMEDIATE;\n");
                for part in self.parts {
                    sql.push_str(&part.sql);
                    sql.push_str(";\n");
                    values.extend(part.values.map(|v| v.0).unwrap_or_default());
                }
                sql.push_str("COMMIT");
            }
        }
        (sql, Values(values))
    }

    /// Commits every statement, or none.
    pub async fn commit(self, db: &DatabaseConnection) -> Result<(), DbErr> {
        if self.parts.is_empty() {
            return Ok(());
        }
        match self.backend {
            DbBackend::Postgres => {
                let (sql, values) = self.render();
                db.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    sql,
                    values,
                ))
                .await
                .map(|_| ())
            }
            DbBackend::Sqlite => {
                let (sql, values) = self.render();
                let _turn = crate::write_turn(db).await;
                let mut conn = db
                    .get_sqlite_connection_pool()
                    .acquire()
                    .await
                    .map_err(sqlx_err)?;
                // the text is built by sea-query from our statements; every value is a parameter
                let sql = sea_orm::sqlx::AssertSqlSafe(sql);
                let outcome = sea_orm::sqlx::query_with(sql, SqlxValues(values))
                    .execute(&mut *conn)
                    .await;
                if let Err(e) = outcome {
                    // a statement failed inside the transaction: undo it on this connection
                    if let Err(rollback) =
                        sea_orm::sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await
                        && !rollback.to_string().contains("no transaction is active")
                    {
                        tracing::warn!(error = %rollback, "rolling back a failed batch failed; closing its connection");
                        conn.close_on_drop();
                    }
                    return Err(sqlx_err(e));
                }
                Ok(())
            }
            other => Err(DbErr::Custom(format!("no batches on {other:?}"))),
        }
    }
}

/// `DbErr` for a sqlx error, keeping what `sql_err()` classifies (unique violations).
fn sqlx_err(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Exec(sea_orm::RuntimeErr::SqlxError(std::sync::Arc::new(e)))
}

/// Shifts PostgreSQL's `$n` placeholders by `offset` (parts are numbered from `$1` each). Values
/// are always parameters, so `$` followed by digits occurs nowhere else in built statements.
fn renumber_placeholders(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
            digits.push(d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(&format!("${}", n + offset)),
            Err(_) => {
                out.push('$');
                out.push_str(&digits);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_shifted() {
        assert_eq!(
            renumber_placeholders("INSERT INTO t (a, b) VALUES ($1, $2)", 3),
            "INSERT INTO t (a, b) VALUES ($4, $5)"
        );
        assert_eq!(
            renumber_placeholders("x = $10 AND y = $", 5),
            "x = $15 AND y = $"
        );
        assert_eq!(renumber_placeholders("$1", 0), "$1");
    }
}
