//! The cron runner across instances, and `thesis-api cron run`.

use std::collections::BTreeMap;
use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use thesis_db::entities::{CronStatus, cron_execution};

use crate::support::*;

/// Two instances on one database with a 1-second schedule for a minute: every slot runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_run_every_slot_exactly_once() {
    let seconds: u64 = std::env::var("THESIS_TEST_CRON_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let toml = "[cron_schedule]\ntrial-expiry = 1\n";
    let a = TestApp::spawn_full(&[("THESIS_CRON", "on")], toml, None).await;
    let b = TestApp::spawn_full(&[("THESIS_CRON", "on")], toml, Some(&a)).await;
    let started = chrono::Utc::now().timestamp();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let db = a.state.db.clone();
    b.stop().await;
    let ended = chrono::Utc::now().timestamp();

    let rows = cron_execution::Entity::find()
        .filter(cron_execution::Column::JobName.eq("trial-expiry"))
        .filter(cron_execution::Column::Trigger.eq("schedule"))
        .all(&db)
        .await
        .unwrap();
    let mut per_slot: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &rows {
        *per_slot
            .entry(r.slot.expect("scheduled runs have a slot"))
            .or_default() += 1;
        assert_eq!(r.status, CronStatus::Success, "{r:?}");
    }
    assert!(
        per_slot.values().all(|n| *n == 1),
        "a slot ran twice: {per_slot:?}"
    );
    // every whole second while both instances ran has its execution
    let missing: Vec<i64> = ((started + 1)..(ended - 1))
        .filter(|s| !per_slot.contains_key(s))
        .collect();
    assert!(missing.is_empty(), "slots without a run: {missing:?}");
    let instances: std::collections::BTreeSet<_> =
        rows.iter().map(|r| r.instance.clone()).collect();
    println!(
        "{} slots over {}s, each run once, by {} instances",
        per_slot.len(),
        ended - started,
        instances.len()
    );
    assert!(per_slot.len() as u64 >= seconds - 2);
    // both schedulers competed for the slots (with one of them idle, "once" would prove nothing)
    assert_eq!(
        instances.len(),
        2,
        "one instance ran every slot: {instances:?}"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_run_command_records_a_manual_execution() {
    let app = TestApp::spawn().await;
    let bin = env!("CARGO_BIN_EXE_thesis-api");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .env_clear()
            .envs(app.env.iter())
            .output()
            .unwrap()
    };
    let out = run(&["cron", "run", "cleanup"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let execution: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(execution["jobName"], "cleanup");
    assert_eq!(execution["status"], "success");
    assert_eq!(execution["trigger"], "manual");
    assert!(execution["slot"].is_null());

    let out = run(&["cron", "run", "usage-report"]);
    assert!(out.status.success());
    let execution: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        execution["details"]["skipped"]
            .as_str()
            .unwrap()
            .contains("self-hosted")
    );

    let out = run(&["cron", "run", "backup"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown job"));

    let rows = cron_execution::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "the refused job was not recorded");
}

#[tokio::test]
async fn unknown_jobs_in_the_schedule_are_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("t.toml");
    std::fs::write(&cfg, "[cron_schedule]\nbackup = 5\n").unwrap();
    let env: std::collections::HashMap<String, String> =
        [("THESIS_CONFIG".to_string(), cfg.display().to_string())].into();
    let err = thesis_api::Settings::load(&env).unwrap_err().to_string();
    assert!(err.contains("backup"), "{err}");
}
