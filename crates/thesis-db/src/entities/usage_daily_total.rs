use sea_orm::entity::prelude::*;

/// Usage of one organization on one UTC day, kept in the transaction that records each usage
/// record: the sums the limits need without summing the records.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_daily_totals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    pub cost_nanocents: i64,
    pub trial_covered_nanocents: i64,
    pub records: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
