//! Cron executions.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::{Order, PaginatorTrait, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use thesis_db::entities::{CronStatus, cron_execution};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::PlatformAdmin;
use crate::cron::JOB_NAMES;
use crate::error::{ApiError, ErrorBody};
use crate::pagination::{Page, parse_count};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_cron_executions))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CronExecutionDto {
    pub id: Uuid,
    pub job_name: String,
    pub status: CronStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// Start of the scheduled slot (seconds since the epoch); null for manual runs.
    pub slot: Option<i64>,
    pub instance: String,
}

impl From<cron_execution::Model> for CronExecutionDto {
    fn from(m: cron_execution::Model) -> Self {
        CronExecutionDto {
            id: m.id,
            job_name: m.job_name,
            status: m.status,
            started_at: m.started_at,
            finished_at: m.finished_at,
            duration_ms: m.duration_ms,
            error: m.error,
            details: m.details,
            trigger: m.trigger,
            slot: m.slot,
            instance: m.instance,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CronQuery {
    /// Filter by job name.
    pub job_name: Option<String>,
    /// `running`, `success` or `failed`.
    pub status: Option<String>,
    /// Results per page (1 to 100, default 20).
    #[param(value_type = Option<u64>)]
    pub limit: Option<String>,
    /// Results to skip.
    #[param(value_type = Option<u64>)]
    pub offset: Option<String>,
    /// `startedAt` (default), `finishedAt`, `durationMs`, `jobName` or `status`.
    pub sort_by: Option<String>,
    /// `desc` (default) or `asc`.
    pub sort_order: Option<String>,
}

/// List cron job executions
#[utoipa::path(get, path = "/admin/cron-executions", tag = "Admin", params(CronQuery),
    responses((status = 200, body = Page<CronExecutionDto>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_cron_executions(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    q: Result<axum::extract::Query<CronQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<CronExecutionDto>>, ApiError> {
    let axum::extract::Query(q) = q.map_err(|e| ApiError::Validation(vec![e.body_text()]))?;
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
    let mut select = cron_execution::Entity::find();
    if let Some(job) = &q.job_name {
        if JOB_NAMES.contains(&job.as_str()) {
            select = select.filter(cron_execution::Column::JobName.eq(job.as_str()));
        } else {
            errors.push(format!("jobName: must be one of {}", JOB_NAMES.join(", ")));
        }
    }
    if let Some(status) = &q.status {
        match status.as_str() {
            "running" => {
                select = select.filter(cron_execution::Column::Status.eq(CronStatus::Running))
            }
            "success" => {
                select = select.filter(cron_execution::Column::Status.eq(CronStatus::Success))
            }
            "failed" => {
                select = select.filter(cron_execution::Column::Status.eq(CronStatus::Failed))
            }
            _ => errors.push("status: must be one of running, success, failed".into()),
        }
    }
    let column = match q.sort_by.as_deref().unwrap_or("startedAt") {
        "startedAt" => Some(cron_execution::Column::StartedAt),
        "finishedAt" => Some(cron_execution::Column::FinishedAt),
        "durationMs" => Some(cron_execution::Column::DurationMs),
        "jobName" => Some(cron_execution::Column::JobName),
        "status" => Some(cron_execution::Column::Status),
        _ => {
            errors.push(
                "sortBy: must be one of startedAt, finishedAt, durationMs, jobName, status".into(),
            );
            None
        }
    };
    let order = match q.sort_order.as_deref().unwrap_or("desc") {
        "asc" => Some(Order::Asc),
        "desc" => Some(Order::Desc),
        _ => {
            errors.push("sortOrder: must be asc or desc".into());
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let (Some(column), Some(order)) = (column, order) else {
        return Err(ApiError::internal("sort parameters were not parsed"));
    };
    let select = select
        .order_by(column, order.clone())
        .order_by(cron_execution::Column::Id, order);
    let total = select.clone().count(&state.db).await?;
    let rows = select.offset(offset).limit(limit).all(&state.db).await?;
    Ok(Json(Page {
        data: rows.into_iter().map(Into::into).collect(),
        total,
        limit,
        offset,
    }))
}
