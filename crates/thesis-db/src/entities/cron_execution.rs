use sea_orm::entity::prelude::*;

use super::CronStatus;

/// One run of a cron job. Scheduled runs carry their slot (start of the interval, in seconds
/// since the epoch); `(job_name, slot)` is unique, so across instances a slot runs once.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cron_executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub job_name: String,
    pub slot: Option<i64>,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// The instance that ran it (host and process id).
    pub instance: String,
    pub status: CronStatus,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    pub details: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
