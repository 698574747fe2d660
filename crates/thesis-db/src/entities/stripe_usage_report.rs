use sea_orm::entity::prelude::*;

/// Usage reported to Stripe as a meter event. `identifier` is derived from the organization,
/// the period and the cumulative amount, so a retry sends the same identifier and Stripe counts
/// it once.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stripe_usage_reports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub period_start: DateTimeUtc,
    #[sea_orm(unique)]
    pub identifier: String,
    pub cents: i64,
    pub cumulative_cents: i64,
    /// `pending` until Stripe accepted it, then `sent`.
    pub status: String,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
