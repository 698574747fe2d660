//! Billing: Stripe state on organizations, the usage ledger, reservations, trials, billing
//! periods, Stripe events and usage reports, cron executions.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn ts(name: &'static str) -> ColumnDef {
    timestamp_with_time_zone(name)
}

fn ts_null(name: &'static str) -> ColumnDef {
    timestamp_with_time_zone_null(name)
}

fn fk_org(table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_organization"))
        .from(table, "organization_id")
        .to("organizations", "id")
        .on_delete(ForeignKeyAction::Cascade)
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
        // SQLite takes one column per ALTER TABLE
        for col in [
            string_null("stripe_customer_id"),
            string_null("stripe_subscription_id"),
            string_null("subscription_status"),
            boolean("cancel_at_period_end").default(false).to_owned(),
            ts_null("current_period_start"),
            ts_null("current_period_end"),
        ] {
            let mut col = col;
            m.alter_table(
                Table::alter()
                    .table("organizations")
                    .add_column(&mut col)
                    .to_owned(),
            )
            .await?;
        }

        m.create_table(
            Table::create()
                .table("usage_records")
                .col(pk_uuid("id"))
                .col(uuid("organization_id"))
                .col(uuid_null("user_id"))
                .col(string("metric_type"))
                .col(string_null("model"))
                .col(uuid_null("machine_id"))
                .col(double("quantity"))
                .col(string("unit"))
                .col(big_integer_null("input_tokens"))
                .col(big_integer_null("output_tokens"))
                .col(big_integer_null("cached_tokens"))
                .col(big_integer_null("reasoning_tokens"))
                .col(big_integer("cost_nanocents"))
                .col(uuid_null("trial_id"))
                .col(big_integer("trial_covered_nanocents").default(0))
                .col(string("day"))
                .col(string_null("idempotency_key"))
                .col(json_null("metadata"))
                .col(ts("created_at"))
                .foreign_key(&mut fk_org("usage_records"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "idx_usage_org_created",
            "usage_records",
            &["organization_id", "created_at"],
            false,
        ))
        .await?;
        m.create_index(index(
            "idx_usage_org_day",
            "usage_records",
            &["organization_id", "day"],
            false,
        ))
        .await?;
        m.create_index(index(
            "idx_usage_trial",
            "usage_records",
            &["trial_id"],
            false,
        ))
        .await?;
        m.create_index(index("idx_usage_day", "usage_records", &["day"], false))
            .await?;
        m.create_index(index(
            "uq_usage_idempotency",
            "usage_records",
            &["idempotency_key"],
            true,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("usage_reservations")
                .col(pk_uuid("id"))
                .col(uuid("organization_id"))
                .col(big_integer("amount_nanocents"))
                .col(ts("created_at"))
                .col(ts("expires_at"))
                .foreign_key(&mut fk_org("usage_reservations"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "idx_reservations_org",
            "usage_reservations",
            &["organization_id"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("trials")
                .col(pk_uuid("id"))
                .col(uuid("organization_id"))
                .col(integer("length_days"))
                .col(big_integer("max_usage_allowance_cents"))
                .col(ts_null("claimed_at"))
                .col(ts_null("period_start"))
                .col(ts_null("period_end"))
                .col(ts_null("expired_at"))
                .col(uuid_null("created_by"))
                .col(ts("created_at"))
                .col(ts("updated_at"))
                .foreign_key(&mut fk_org("trials"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "idx_trials_org",
            "trials",
            &["organization_id"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("billing_periods")
                .col(pk_uuid("id"))
                .col(uuid("organization_id"))
                .col(ts("period_start"))
                .col(ts("period_end"))
                .col(string("source"))
                .col(ts("created_at"))
                .foreign_key(&mut fk_org("billing_periods"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "uq_billing_periods_org_start",
            "billing_periods",
            &["organization_id", "period_start"],
            true,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("stripe_events")
                .col(string("id").primary_key())
                .col(string("type"))
                .col(ts("created"))
                .col(json("payload"))
                .col(ts("received_at"))
                .col(ts_null("processed_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("stripe_usage_reports")
                .col(pk_uuid("id"))
                .col(uuid("organization_id"))
                .col(ts("period_start"))
                .col(string_uniq("identifier"))
                .col(big_integer("cents"))
                .col(big_integer("cumulative_cents"))
                .col(string("status"))
                .col(ts("created_at"))
                .col(ts_null("sent_at"))
                .col(text_null("error"))
                .foreign_key(&mut fk_org("stripe_usage_reports"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "idx_usage_reports_org_period",
            "stripe_usage_reports",
            &["organization_id", "period_start"],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table("cron_executions")
                .col(pk_uuid("id"))
                .col(string("job_name"))
                .col(big_integer_null("slot"))
                .col(string("trigger"))
                .col(string("instance"))
                .col(string("status"))
                .col(ts("started_at"))
                .col(ts_null("finished_at"))
                .col(big_integer_null("duration_ms"))
                .col(text_null("error"))
                .col(json_null("details"))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "uq_cron_job_slot",
            "cron_executions",
            &["job_name", "slot"],
            true,
        ))
        .await?;
        m.create_index(index(
            "idx_cron_started",
            "cron_executions",
            &["started_at"],
            false,
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "cron_executions",
            "stripe_usage_reports",
            "stripe_events",
            "billing_periods",
            "trials",
            "usage_reservations",
            "usage_records",
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        for col in [
            "stripe_customer_id",
            "stripe_subscription_id",
            "subscription_status",
            "cancel_at_period_end",
            "current_period_start",
            "current_period_end",
        ] {
            m.alter_table(
                Table::alter()
                    .table("organizations")
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
