//! A counter that every change to who may act where, and on what terms, moves forward, kept by
//! triggers: tokens revoked or deleted, users changed, memberships added, changed or removed,
//! organizations changed or deleted, trials created, claimed, changed, expired or deleted (not
//! the coverage they accumulate). Instances that cache authentication or hold usage leases
//! compare it to what they read under, so no code path has to remember to invalidate anything.

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (trigger name, event, table): the changes that move the counter.
const EVENTS: &[(&str, &str, &str)] = &[
    (
        "auth_gen_api_keys_revoke",
        "UPDATE OF revoked_at",
        "api_keys",
    ),
    ("auth_gen_api_keys_delete", "DELETE", "api_keys"),
    (
        "auth_gen_sessions_revoke",
        "UPDATE OF revoked_at, expires_at",
        "auth_sessions",
    ),
    ("auth_gen_sessions_delete", "DELETE", "auth_sessions"),
    ("auth_gen_users_update", "UPDATE", "users"),
    ("auth_gen_users_delete", "DELETE", "users"),
    ("auth_gen_memberships_insert", "INSERT", "memberships"),
    ("auth_gen_memberships_update", "UPDATE", "memberships"),
    ("auth_gen_memberships_delete", "DELETE", "memberships"),
    ("auth_gen_organizations_update", "UPDATE", "organizations"),
    ("auth_gen_organizations_delete", "DELETE", "organizations"),
    ("auth_gen_trials_insert", "INSERT", "trials"),
    (
        "auth_gen_trials_update",
        "UPDATE OF claimed_at, period_start, period_end, expired_at, max_usage_allowance_cents, length_days",
        "trials",
    ),
    ("auth_gen_trials_delete", "DELETE", "trials"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("auth_generation")
                .col(integer("id").primary_key())
                .col(big_integer("n").default(0))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        db.execute_unprepared("INSERT INTO auth_generation (id, n) VALUES (1, 0)")
            .await?;
        let bump = "UPDATE auth_generation SET n = n + 1 WHERE id = 1";
        match db.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(&format!(
                    "CREATE FUNCTION bump_auth_generation() RETURNS trigger AS $$ \
                     BEGIN {bump}; RETURN NULL; END $$ LANGUAGE plpgsql"
                ))
                .await?;
                for (name, event, table) in EVENTS {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {name} AFTER {event} ON {table} \
                         FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_generation()"
                    ))
                    .await?;
                }
            }
            _ => {
                for (name, event, table) in EVENTS {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {bump}; END"
                    ))
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for (name, _, table) in EVENTS {
            let sql = match db.get_database_backend() {
                DbBackend::Postgres => format!("DROP TRIGGER IF EXISTS {name} ON {table}"),
                _ => format!("DROP TRIGGER IF EXISTS {name}"),
            };
            db.execute_unprepared(&sql).await?;
        }
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("DROP FUNCTION IF EXISTS bump_auth_generation()")
                .await?;
        }
        m.drop_table(Table::drop().table("auth_generation").to_owned())
            .await
    }
}
