use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thesis_db::entities::{MetricType, usage_record};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::billing::money::nanos_to_cents;

/// One metered use. `costCents` may have a fraction; fields that do not apply are null.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecordDto {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Option<Uuid>,
    pub metric_type: MetricType,
    /// The model as the client asked for it.
    pub model: Option<String>,
    pub machine_id: Option<Uuid>,
    pub quantity: f64,
    pub unit: String,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub cost_cents: f64,
    /// The part of the cost a trial covered.
    pub trial_covered_cents: f64,
    pub created_at: DateTime<Utc>,
}

impl From<usage_record::Model> for UsageRecordDto {
    fn from(m: usage_record::Model) -> Self {
        UsageRecordDto {
            id: m.id,
            organization_id: m.organization_id,
            user_id: m.user_id,
            metric_type: m.metric_type,
            model: m.model,
            machine_id: m.machine_id,
            quantity: m.quantity,
            unit: m.unit,
            input_tokens: m.input_tokens,
            output_tokens: m.output_tokens,
            cached_tokens: m.cached_tokens,
            reasoning_tokens: m.reasoning_tokens,
            cost_cents: nanos_to_cents(m.cost_nanocents),
            trial_covered_cents: nanos_to_cents(m.trial_covered_nanocents),
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct UsageRecordQuery {
    /// Only records from this instant or date (ISO 8601).
    pub start_date: Option<String>,
    /// Only records until this instant, or through this whole date (ISO 8601).
    pub end_date: Option<String>,
    /// Number of records, newest first (1 to 100, default 20).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct UsageSummaryQuery {
    /// From this instant or date (ISO 8601); default: the start of the current billing period.
    pub start_date: Option<String>,
    /// Until this instant, or through this whole date (ISO 8601); default: now.
    pub end_date: Option<String>,
}

/// Usage totals of one group (a model or a metric type).
#[derive(Debug, Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct UsageTotalsDto {
    pub records: i64,
    pub cost_cents: f64,
    pub trial_covered_cents: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub reasoning_tokens: i64,
    pub quantity: f64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelUsageDto {
    pub model: String,
    #[serde(flatten)]
    pub totals: UsageTotalsDto,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricUsageDto {
    pub metric_type: MetricType,
    #[serde(flatten)]
    pub totals: UsageTotalsDto,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageSummaryDto {
    pub start_date: DateTime<Utc>,
    pub end_date: DateTime<Utc>,
    #[serde(flatten)]
    pub totals: UsageTotalsDto,
    /// Token usage per model (by the name clients use).
    pub by_model: Vec<ModelUsageDto>,
    pub by_metric_type: Vec<MetricUsageDto>,
}
