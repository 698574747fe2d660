//! The LLM gateway: stored responses, chat sessions and their turns.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("chat_sessions")
                .col(string("id").primary_key())
                .col(uuid("organization_id"))
                .col(uuid("user_id"))
                .col(string_null("title"))
                .col(integer("turn_count").default(0))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("updated_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_chat_sessions_organization")
                        .from("chat_sessions", "organization_id")
                        .to("organizations", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_chat_sessions_user")
                        .from("chat_sessions", "user_id")
                        .to("users", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_chat_sessions_owner")
                .table("chat_sessions")
                .col("organization_id")
                .col("user_id")
                .col("updated_at")
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("session_turns")
                .col(pk_uuid("id"))
                .col(string("session_id"))
                .col(integer("seq"))
                .col(string_null("response_id"))
                .col(string("model"))
                .col(json("input"))
                .col(json("output"))
                .col(json_null("usage"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_session_turns_session")
                        .from("session_turns", "session_id")
                        .to("chat_sessions", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_session_turns_seq")
                .table("session_turns")
                .col("session_id")
                .col("seq")
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("responses")
                .col(string("id").primary_key())
                .col(uuid("organization_id"))
                .col(uuid_null("user_id"))
                .col(string_null("session_id"))
                .col(string("model"))
                .col(string("status"))
                .col(json("conversation"))
                .col(json("response"))
                .col(timestamp_with_time_zone("created_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_responses_organization")
                        .from("responses", "organization_id")
                        .to("organizations", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_responses_org")
                .table("responses")
                .col("organization_id")
                .col("created_at")
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["responses", "session_turns", "chat_sessions"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
