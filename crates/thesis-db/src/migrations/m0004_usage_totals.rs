//! Running totals of usage, kept in the transaction that records it, so that limits are checked
//! by reading a row rather than summing a day's (or a period's) usage records per request.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("usage_daily_totals")
                .col(uuid("organization_id"))
                .col(string_len("day", 10))
                .col(big_integer("cost_nanocents").default(0))
                .col(big_integer("trial_covered_nanocents").default(0))
                .col(big_integer("records").default(0))
                .primary_key(Index::create().col("organization_id").col("day"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_usage_daily_totals_organization")
                        .from("usage_daily_totals", "organization_id")
                        .to("organizations", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("trials")
                .add_column(big_integer("covered_nanocents").default(0))
                .to_owned(),
        )
        .await?;
        // usage recorded before this migration
        let db = m.get_connection();
        db.execute_unprepared(
            "INSERT INTO usage_daily_totals (organization_id, day, cost_nanocents, trial_covered_nanocents, records) \
             SELECT organization_id, day, SUM(cost_nanocents), SUM(trial_covered_nanocents), COUNT(*) \
             FROM usage_records GROUP BY organization_id, day",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE trials SET covered_nanocents = COALESCE((SELECT SUM(trial_covered_nanocents) \
             FROM usage_records WHERE usage_records.trial_id = trials.id), 0)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("trials")
                .drop_column("covered_nanocents")
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table("usage_daily_totals").to_owned())
            .await
    }
}
