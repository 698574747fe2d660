//! The cron runner: named jobs on fixed intervals. Each interval is a slot; an instance runs a
//! slot only after inserting its execution row, and `(job_name, slot)` is unique, so however many
//! instances run, every slot runs once. Every run — scheduled or `thesis-api cron run JOB` — is
//! recorded as a cron execution.

pub mod jobs;

use std::time::Duration;

use chrono::Utc;
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use thesis_db::entities::{CronStatus, cron_execution};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::state::AppState;

/// Every job name of the contract.
pub const JOB_NAMES: &[&str] = &[
    "usage-report",
    "trial-expiry",
    "compute-metering",
    "storage-snapshot",
    "machine-reconcile",
    "release-sync",
    "cleanup",
];

/// Jobs built so far, with their default interval in seconds.
pub const SCHEDULE: &[(&str, u64)] = &[
    ("usage-report", 3600),
    ("trial-expiry", 60),
    ("cleanup", 3600),
];

/// The interval of each built job: the default, or the `[cron]` table of the configuration.
pub fn schedule(state: &AppState) -> Vec<(&'static str, u64)> {
    SCHEDULE
        .iter()
        .map(|(job, default)| {
            (
                *job,
                state
                    .settings
                    .file
                    .cron_schedule
                    .get(*job)
                    .copied()
                    .unwrap_or(*default),
            )
        })
        .collect()
}

/// A name for this process in execution rows.
pub fn instance_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    format!(
        "{host}:{}:{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    )
}

/// Inserts the execution row that claims a slot; `None` when another instance has it.
async fn claim(
    state: &AppState,
    job: &str,
    slot: Option<i64>,
    trigger: &str,
    instance: &str,
) -> Result<Option<cron_execution::Model>, ApiError> {
    let row = cron_execution::ActiveModel {
        id: Set(thesis_db::new_id()),
        job_name: Set(job.to_string()),
        slot: Set(slot),
        trigger: Set(trigger.to_string()),
        instance: Set(instance.to_string()),
        status: Set(CronStatus::Running),
        started_at: Set(thesis_db::now()),
        finished_at: Set(None),
        duration_ms: Set(None),
        error: Set(None),
        details: Set(None),
    };
    match row.insert(&state.db).await {
        Ok(m) => Ok(Some(m)),
        Err(e) if thesis_db::is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Runs a claimed execution and records its outcome.
async fn execute(
    state: &AppState,
    execution: cron_execution::Model,
) -> Result<cron_execution::Model, ApiError> {
    let started = std::time::Instant::now();
    let outcome = jobs::run(state, &execution.job_name).await;
    let finished = thesis_db::now();
    let (status, details, error) = match outcome {
        Ok(details) => (CronStatus::Success, Some(details), None),
        Err(e) => (CronStatus::Failed, None, Some(e)),
    };
    if let Some(err) = &error {
        tracing::error!(job = %execution.job_name, error = %err, "cron job failed");
    } else {
        tracing::info!(job = %execution.job_name, slot = ?execution.slot, "cron job done");
    }
    let mut active: cron_execution::ActiveModel = execution.into();
    active.status = Set(status);
    active.finished_at = Set(Some(finished));
    active.duration_ms = Set(Some(started.elapsed().as_millis() as i64));
    active.details = Set(details);
    active.error = Set(error);
    Ok(active.update(&state.db).await?)
}

/// Runs one job now (`thesis-api cron run JOB`), recorded with trigger `manual`.
pub async fn run_now(state: &AppState, job: &str) -> Result<cron_execution::Model, ApiError> {
    if !JOB_NAMES.contains(&job) {
        return Err(ApiError::BadRequest(format!(
            "unknown job `{job}`; jobs: {}",
            JOB_NAMES.join(", ")
        )));
    }
    if !SCHEDULE.iter().any(|(j, _)| *j == job) {
        return Err(ApiError::NotImplemented(format!(
            "the `{job}` job is not implemented yet (its feature has not been built)"
        )));
    }
    let execution = claim(state, job, None, "manual", &instance_name())
        .await?
        .ok_or_else(|| ApiError::internal("a manual execution has no slot and cannot conflict"))?;
    execute(state, execution).await
}

/// Starts the scheduler: one task per job, each waking at its slot boundaries until `cancel`.
pub fn spawn(state: AppState, cancel: CancellationToken) {
    let instance = instance_name();
    for (job, every) in schedule(&state) {
        let state = state.clone();
        let cancel = cancel.clone();
        let instance = instance.clone();
        state.background.clone().spawn(async move {
            tracing::info!(job, every_seconds = every, "cron job scheduled");
            let every = every as i64;
            loop {
                let now = Utc::now();
                let next_slot = (now.timestamp().div_euclid(every) + 1) * every;
                let wait_ms = (next_slot * 1000 - now.timestamp_millis()).max(0) as u64;
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
                }
                let slot = Utc::now().timestamp().div_euclid(every) * every;
                match claim(&state, job, Some(slot), "schedule", &instance).await {
                    Ok(Some(execution)) => {
                        if let Err(e) = execute(&state, execution).await {
                            tracing::error!(job, error = %e, "recording a cron execution failed");
                        }
                    }
                    Ok(None) => {} // another instance runs this slot
                    Err(e) => tracing::error!(job, error = %e, "claiming a cron slot failed"),
                }
            }
        });
    }
}
