use sea_orm::entity::prelude::*;

/// A trial an admin created for an organization; claimed, it covers usage up to its allowance
/// until `period_end`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub length_days: i32,
    pub max_usage_allowance_cents: i64,
    pub claimed_at: Option<DateTimeUtc>,
    pub period_start: Option<DateTimeUtc>,
    pub period_end: Option<DateTimeUtc>,
    /// Set by the `trial-expiry` job once `period_end` has passed.
    pub expired_at: Option<DateTimeUtc>,
    /// Cost this trial has covered (kept with each usage record).
    pub covered_nanocents: i64,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
