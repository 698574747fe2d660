//! Usage of one organization, and analytics across all of them.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::State;
use chrono::{Datelike, Duration, NaiveDate};
use sea_orm::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use thesis_db::entities::{MetricType, usage_record};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::load_org;
use crate::auth::PlatformAdmin;
use crate::billing::money::nanos_to_cents;
use crate::error::{ApiError, ApiPath, ErrorBody};
use crate::features::usage::dto::UsageRecordDto;
use crate::features::usage::service as usage;
use crate::pagination::{Page, PageQuery, parse_count, parse_range};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(organization_usage))
        .routes(routes!(usage_analytics))
}

fn query<T: serde::de::DeserializeOwned>(
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|axum::extract::Query(v)| v)
        .map_err(|e| ApiError::Validation(vec![e.body_text()]))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct OrgUsageQuery {
    /// Start date (ISO 8601).
    pub start_date: Option<String>,
    /// End date (ISO 8601); a date includes the whole day.
    pub end_date: Option<String>,
    /// Results per page (1 to 100, default 20).
    #[param(value_type = Option<u64>)]
    pub limit: Option<String>,
    /// Results to skip.
    #[param(value_type = Option<u64>)]
    pub offset: Option<String>,
    /// `tokens`, `compute` or `storage`.
    #[param(value_type = Option<MetricType>)]
    pub metric_type: Option<String>,
}

fn metric(value: Option<&str>, errors: &mut Vec<String>) -> Option<MetricType> {
    match value {
        None => None,
        Some("tokens") => Some(MetricType::Tokens),
        Some("compute") => Some(MetricType::Compute),
        Some("storage") => Some(MetricType::Storage),
        Some(_) => {
            errors.push("metricType: must be one of tokens, compute, storage".into());
            None
        }
    }
}

/// Get usage records for an organization
#[utoipa::path(get, path = "/admin/organizations/{id}/usage", tag = "Admin",
    params(("id" = Uuid, Path, description = "Organization ID"), OrgUsageQuery),
    responses((status = 200, body = Page<UsageRecordDto>), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn organization_usage(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    ApiPath(id): ApiPath<Uuid>,
    q: Result<axum::extract::Query<OrgUsageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<UsageRecordDto>>, ApiError> {
    let q = query(q)?;
    let mut errors = vec![];
    let limit = parse_count("limit", q.limit.as_deref(), 20, 1, 100, &mut errors);
    let offset = parse_count(
        "offset",
        q.offset.as_deref(),
        0,
        0,
        i64::MAX as u64,
        &mut errors,
    );
    let (start, end) = parse_range(q.start_date.as_deref(), q.end_date.as_deref(), &mut errors);
    let metric = metric(q.metric_type.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let org = load_org(&state.db, id).await?;
    state.recordings.settled(org.id).await;
    let page = PageQuery {
        limit,
        offset,
        start,
        end,
    };
    let (rows, total) = usage::page(
        &state.db,
        usage::records_query(Some(org.id), start, end, metric),
        &page,
    )
    .await?;
    Ok(Json(Page {
        data: rows.into_iter().map(Into::into).collect(),
        total,
        limit,
        offset,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// Start date (ISO 8601); default 30 days ago.
    pub start_date: Option<String>,
    /// End date (ISO 8601); default now.
    pub end_date: Option<String>,
    /// `day` (default), `week` (ISO weeks) or `month`.
    pub group_by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct UsageBucketDto {
    /// `2026-01-15`, `2026-W03` or `2026-01`.
    pub period: String,
    pub records: i64,
    pub cost_cents: f64,
    pub trial_covered_cents: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Distinct organizations with usage in the period.
    pub organizations: usize,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageAnalyticsDto {
    pub group_by: String,
    pub start_date: chrono::DateTime<chrono::Utc>,
    pub end_date: chrono::DateTime<chrono::Utc>,
    pub data: Vec<UsageBucketDto>,
    pub totals: UsageBucketDto,
}

#[derive(Default)]
struct Acc {
    records: i64,
    cost: i64,
    covered: i64,
    input: i64,
    output: i64,
    orgs: BTreeSet<Uuid>,
}

impl Acc {
    fn add(&mut self, org: Uuid, r: &(i64, i64, i64, i64, i64)) {
        self.records += r.0;
        self.cost += r.1;
        self.covered += r.2;
        self.input += r.3;
        self.output += r.4;
        self.orgs.insert(org);
    }
    fn dto(self, period: String) -> UsageBucketDto {
        UsageBucketDto {
            period,
            records: self.records,
            cost_cents: nanos_to_cents(self.cost),
            trial_covered_cents: nanos_to_cents(self.covered),
            input_tokens: self.input,
            output_tokens: self.output,
            organizations: self.orgs.len(),
        }
    }
}

/// Get usage analytics across all organizations
///
/// Usage summed per day, ISO week or month. Sums are exact (integer nano-cents in the database).
#[utoipa::path(get, path = "/admin/usage", tag = "Admin", params(AnalyticsQuery),
    responses((status = 200, body = UsageAnalyticsDto), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn usage_analytics(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    q: Result<axum::extract::Query<AnalyticsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UsageAnalyticsDto>, ApiError> {
    let q = query(q)?;
    state.recordings.all_settled().await;
    let mut errors = vec![];
    let (start, end) = parse_range(q.start_date.as_deref(), q.end_date.as_deref(), &mut errors);
    let group_by = q.group_by.clone().unwrap_or_else(|| "day".into());
    if !matches!(group_by.as_str(), "day" | "week" | "month") {
        errors.push("groupBy: must be one of day, week, month".into());
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let now = thesis_db::now();
    let end = end.unwrap_or(now + Duration::microseconds(1));
    let start = start.unwrap_or(end - Duration::days(30));

    // per day and organization in the database; weeks and months are folded from days
    let rows: Vec<(String, Uuid, i64, i64, i64, i64, i64)> = usage_record::Entity::find()
        .filter(usage_record::Column::CreatedAt.gte(start))
        .filter(usage_record::Column::CreatedAt.lt(end))
        .select_only()
        .column(usage_record::Column::Day)
        .column(usage_record::Column::OrganizationId)
        .column_as(Expr::cust("COUNT(*)"), "records")
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(cost_nanocents), 0) AS BIGINT)"),
            "cost",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(trial_covered_nanocents), 0) AS BIGINT)"),
            "covered",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT)"),
            "input",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT)"),
            "output",
        )
        .group_by(usage_record::Column::Day)
        .group_by(usage_record::Column::OrganizationId)
        .order_by_asc(usage_record::Column::Day)
        .into_tuple()
        .all(&state.db)
        .await?;

    let mut buckets: BTreeMap<String, Acc> = BTreeMap::new();
    let mut totals = Acc::default();
    for (day, org, records, cost, covered, input, output) in rows {
        let key = match (
            group_by.as_str(),
            NaiveDate::parse_from_str(&day, "%Y-%m-%d"),
        ) {
            ("week", Ok(d)) => {
                let w = d.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            ("month", Ok(d)) => format!("{}-{:02}", d.year(), d.month()),
            _ => day,
        };
        let r = (records, cost, covered, input, output);
        buckets.entry(key).or_default().add(org, &r);
        totals.add(org, &r);
    }
    Ok(Json(UsageAnalyticsDto {
        group_by,
        start_date: start,
        end_date: end,
        data: buckets.into_iter().map(|(k, a)| a.dto(k)).collect(),
        totals: totals.dto("total".into()),
    }))
}
