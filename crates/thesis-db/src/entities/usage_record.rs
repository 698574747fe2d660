use sea_orm::entity::prelude::*;

use super::MetricType;

/// One metered use. Money is integer nano-cents (10^-9 cent), so sums are exact.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Option<Uuid>,
    pub metric_type: MetricType,
    pub model: Option<String>,
    pub machine_id: Option<Uuid>,
    pub quantity: f64,
    pub unit: String,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub cost_nanocents: i64,
    /// The trial that covered (part of) the cost, and how much of it.
    pub trial_id: Option<Uuid>,
    pub trial_covered_nanocents: i64,
    /// UTC day of `created_at`, `YYYY-MM-DD`, for daily limits and grouping on both backends.
    pub day: String,
    /// Makes recording idempotent: a second record with the same key is refused.
    pub idempotency_key: Option<String>,
    pub metadata: Option<Json>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
