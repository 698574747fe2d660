//! Users, sessions, API keys, organizations, memberships, password resets, newsletter, feedback and
//! shared rate-limit counters.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn ts(name: &'static str) -> ColumnDef {
    timestamp_with_time_zone(name)
}

fn ts_null(name: &'static str) -> ColumnDef {
    timestamp_with_time_zone_null(name)
}

fn fk(
    name: &str,
    from_table: &'static str,
    from_col: &'static str,
    to_table: &'static str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from_table, from_col)
        .to(to_table, "id")
        .on_delete(on_delete)
        .to_owned()
}

fn index(
    name: &str,
    table: &'static str,
    cols: &[&'static str],
    unique: bool,
) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(*col);
    }
    if unique {
        stmt.unique();
    }
    stmt.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("users")
                .col(pk_uuid("id"))
                .col(string("email"))
                .col(string_uniq("email_normalized"))
                .col(string("name"))
                .col(string("password_hash"))
                .col(boolean("is_admin").default(false))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("auth_sessions")
                .col(pk_uuid("id"))
                .col(uuid("user_id"))
                .col(string_uniq("token_hash"))
                .col(ts("created_at"))
                .col(ts("expires_at"))
                .col(ts_null("revoked_at"))
                .col(ts_null("last_used_at"))
                .foreign_key(&mut fk(
                    "fk_auth_sessions_user",
                    "auth_sessions",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "idx_auth_sessions_user",
            "auth_sessions",
            &["user_id"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("organizations")
                .col(pk_uuid("id"))
                .col(string("name"))
                .col(string("email"))
                .col(string("type"))
                .col(string("subscription_plan"))
                .col(string("opt_in_share_data"))
                .col(big_integer_null("usage_limit_cents"))
                .col(big_integer_null("usage_allowance_cents"))
                .col(big_integer_null("price_per_seat_cents"))
                .col(big_integer_null("price_for_organization_cents"))
                .col(big_integer_null("machine_quota"))
                .col(ts_null("deleted_at"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("api_keys")
                .col(pk_uuid("id"))
                .col(uuid("user_id"))
                .col(uuid_null("organization_id"))
                .col(string("name"))
                .col(string("prefix"))
                .col(string_uniq("key_hash"))
                .col(ts("created_at"))
                .col(ts_null("last_used_at"))
                .col(ts_null("revoked_at"))
                .foreign_key(&mut fk(
                    "fk_api_keys_user",
                    "api_keys",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_api_keys_organization",
                    "api_keys",
                    "organization_id",
                    "organizations",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index("idx_api_keys_user", "api_keys", &["user_id"], false))
            .await?;

        m.create_table(
            Table::create()
                .table("memberships")
                .col(pk_uuid("id"))
                .col(uuid("organization_id"))
                .col(uuid_null("user_id"))
                .col(string("email"))
                .col(string("email_normalized"))
                .col(string("role"))
                .col(string("status"))
                .col(string_null("invite_token_hash"))
                .col(ts_null("invite_expires_at"))
                .col(uuid_null("invited_by"))
                .col(ts_null("accepted_at"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk(
                    "fk_memberships_organization",
                    "memberships",
                    "organization_id",
                    "organizations",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_memberships_user",
                    "memberships",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "uq_memberships_org_email",
            "memberships",
            &["organization_id", "email_normalized"],
            true,
        ))
        .await?;
        m.create_index(index(
            "idx_memberships_user",
            "memberships",
            &["user_id"],
            false,
        ))
        .await?;
        m.create_index(index(
            "idx_memberships_email",
            "memberships",
            &["email_normalized"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("password_resets")
                .col(pk_uuid("id"))
                .col(uuid("user_id"))
                .col(string_uniq("token_hash"))
                .col(ts("created_at"))
                .col(ts("expires_at"))
                .col(ts_null("used_at"))
                .foreign_key(&mut fk(
                    "fk_password_resets_user",
                    "password_resets",
                    "user_id",
                    "users",
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("newsletter_subscribers")
                .col(pk_uuid("id"))
                .col(string("email"))
                .col(string_uniq("email_normalized"))
                .col(ts("created_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("feedback")
                .col(pk_uuid("id"))
                .col(uuid_null("user_id"))
                .col(string("name"))
                .col(string("email"))
                .col(string("feedback_type"))
                .col(text("message"))
                .col(json_null("metadata"))
                .col(string_null("screenshot_content_type"))
                .col(blob_null("screenshot"))
                .col(ts("created_at"))
                .foreign_key(&mut fk(
                    "fk_feedback_user",
                    "feedback",
                    "user_id",
                    "users",
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("rate_limits")
                .col(string("key").primary_key())
                .col(big_integer("count"))
                .col(ts("expires_at"))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "rate_limits",
            "feedback",
            "newsletter_subscribers",
            "password_resets",
            "memberships",
            "api_keys",
            "organizations",
            "auth_sessions",
            "users",
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
