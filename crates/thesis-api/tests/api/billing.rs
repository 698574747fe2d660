use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

async fn owner_and_org(app: &TestApp) -> (TestUser, String) {
    let owner = app.signup("owner@example.com").await;
    let org = app.create_org(&owner.token, "Acme").await;
    (owner, org["id"].as_str().unwrap().to_string())
}

async fn member_of(
    app: &TestApp,
    owner: &TestUser,
    org_id: &str,
    email: &str,
    role: &str,
) -> TestUser {
    let user = app.signup(email).await;
    app.invite(&owner.token, org_id, email, role).await;
    assert_eq!(app.accept_invite_from_mail(email).await.0, StatusCode::OK);
    user
}

#[tokio::test]
async fn billing_summary_of_a_new_organization() {
    let app = TestApp::spawn().await;
    let (owner, _) = owner_and_org(&app).await;
    let (status, b) = app
        .get("/v1/organization/billing", Some(&owner.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["plan"], "free");
    assert_eq!(b["billingMode"], "selfHosted");
    assert_eq!(b["usageThisPeriodCents"], 0.0);
    assert_eq!(b["estimatedChargeCents"], 0.0);
    assert_eq!(b["seats"], 1);
    assert!(b["limitCents"].is_null());
    assert_eq!(
        b["trial"],
        json!({"active": false, "claimable": false, "trial": null})
    );
    assert!(
        b["currentPeriodStart"]
            .as_str()
            .unwrap()
            .ends_with("-01T00:00:00Z"),
        "{b}"
    );

    let (status, r) = app
        .get("/v1/organization/rate-limit", Some(&owner.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["plan"], "free");
    assert_eq!(r["limitCents"], 100);
    assert_eq!(r["usedCents"], 0.0);
    assert_eq!(r["remainingCents"], 100.0);
    assert_eq!(r["limited"], false);
    assert!(r["resetsAt"].as_str().unwrap().ends_with("T00:00:00Z"));
}

#[tokio::test]
async fn self_hosted_plan_changes_apply_at_once_and_portal_is_503() {
    let app = TestApp::spawn().await;
    let (owner, org_id) = owner_and_org(&app).await;
    let (status, c) = app
        .post(
            "/v1/organization/billing/checkout",
            Some(&owner.token),
            json!({"plan": "payAsYouGo"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert_eq!(c["plan"], "payAsYouGo");
    assert_eq!(c["billingMode"], "selfHosted");
    assert!(c["checkoutUrl"].is_null());
    let (_, b) = app
        .get("/v1/organization/billing", Some(&owner.token))
        .await;
    assert_eq!(b["plan"], "payAsYouGo");
    assert_eq!(b["subscriptionStatus"], "active");

    let (status, body) = app
        .call(
            Method::POST,
            "/v1/organization/billing/portal",
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        assert_error(&body, StatusCode::SERVICE_UNAVAILABLE)
            .as_str()
            .unwrap()
            .contains("self-hosted")
    );

    // members may read but not change
    let member = member_of(&app, &owner, &org_id, "m@example.com", "member").await;
    let (status, _) = app
        .get("/v1/organization/billing", Some(&member.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post(
            "/v1/organization/billing/checkout",
            Some(&member.token),
            json!({"plan": "free"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            Method::POST,
            "/v1/organization/billing/portal",
            Some(&member.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, b) = app
        .get("/v1/organization/billing", Some(&owner.token))
        .await;
    assert_eq!(b["plan"], "payAsYouGo", "nothing changed");

    let (status, body) = app
        .post(
            "/v1/organization/billing/checkout",
            Some(&owner.token),
            json!({"plan": "enterprise"}),
        )
        .await;
    assert_validation(status, &body, "plan");
    let (status, c) = app
        .post(
            "/v1/organization/billing/checkout",
            Some(&owner.token),
            json!({"plan": "free"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(c["plan"], "free");
}

#[tokio::test]
async fn usage_limit_rules() {
    let app = TestApp::spawn().await;
    let (owner, org_id) = owner_and_org(&app).await;
    let (status, b) = app
        .put(
            "/v1/organization/billing/usage-limit",
            Some(&owner.token),
            json!({"limit": 500}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["limitCents"], 500);
    assert_eq!(b["remainingCents"], 500.0);
    let (_, b) = app
        .put(
            "/v1/organization/billing/usage-limit",
            Some(&owner.token),
            json!({"limit": null}),
        )
        .await;
    assert!(b["limitCents"].is_null());
    for body in [
        json!({}),
        json!({"limit": -5}),
        json!({"limit": "5"}),
        json!({"limit": 1.5}),
        json!({"limit": 1, "x": 1}),
    ] {
        let (status, res) = app
            .put(
                "/v1/organization/billing/usage-limit",
                Some(&owner.token),
                body.clone(),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {res}");
    }
    let member = member_of(&app, &owner, &org_id, "m@example.com", "member").await;
    let (status, _) = app
        .put(
            "/v1/organization/billing/usage-limit",
            Some(&member.token),
            json!({"limit": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, b) = app
        .get("/v1/organization/billing", Some(&owner.token))
        .await;
    assert!(b["limitCents"].is_null(), "the member changed nothing");
}

#[tokio::test]
async fn usage_records_history_and_summary_are_per_organization() {
    let app = TestApp::spawn().await;
    let (owner, org_id) = owner_and_org(&app).await;
    for _ in 0..3 {
        app.use_cents(&org_id, 0.25).await.unwrap();
    }
    let other = app.signup("other@example.com").await;
    let other_org = app.create_org(&other.token, "Other").await;
    app.use_cents(other_org["id"].as_str().unwrap(), 7.0)
        .await
        .unwrap();

    let (status, records) = app.get("/v1/usage-record", Some(&owner.token)).await;
    assert_eq!(status, StatusCode::OK, "{records}");
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 3);
    let r = &records[0];
    assert_eq!(r["organizationId"], org_id.as_str());
    assert_eq!(r["metricType"], "tokens");
    assert_eq!(r["model"], "test-model");
    assert_eq!(r["costCents"], 0.25);
    assert_eq!(r["inputTokens"], 600);
    assert!(r["machineId"].is_null());
    for field in [
        "id",
        "organizationId",
        "userId",
        "metricType",
        "model",
        "machineId",
        "quantity",
        "unit",
        "inputTokens",
        "outputTokens",
        "cachedTokens",
        "reasoningTokens",
        "costCents",
        "createdAt",
    ] {
        assert!(r.get(field).is_some(), "missing {field}");
    }

    let (_, s) = app
        .get("/v1/usage-record/summary", Some(&owner.token))
        .await;
    assert_eq!(s["records"], 3);
    assert_eq!(s["costCents"], 0.75);
    assert_eq!(s["inputTokens"], 1800);
    assert_eq!(s["byModel"][0]["model"], "test-model");
    assert_eq!(s["byModel"][0]["costCents"], 0.75);
    assert_eq!(s["byMetricType"][0]["metricType"], "tokens");

    let (_, page) = app
        .get(
            "/v1/organization/billing/usage-history?limit=2&offset=1",
            Some(&owner.token),
        )
        .await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["limit"], 2);
    assert_eq!(page["offset"], 1);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let (_, page) = app
        .get(
            "/v1/organization/billing/compute-usage-history",
            Some(&owner.token),
        )
        .await;
    assert_eq!(page["total"], 0);
    let (_, page) = app
        .get(
            "/v1/organization/billing/storage-usage-history",
            Some(&owner.token),
        )
        .await;
    assert_eq!(page["total"], 0);
    let (_, page) = app
        .get(
            "/v1/organization/billing/usage-history?startDate=2000-01-01&endDate=2000-12-31",
            Some(&owner.token),
        )
        .await;
    assert_eq!(page["total"], 0);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (_, page) = app
        .get(
            &format!("/v1/organization/billing/usage-history?startDate={today}&endDate={today}"),
            Some(&owner.token),
        )
        .await;
    assert_eq!(page["total"], 3, "an end date includes its whole day");

    for (path, field) in [
        ("/v1/organization/billing/usage-history?limit=0", "limit"),
        ("/v1/organization/billing/usage-history?limit=101", "limit"),
        ("/v1/organization/billing/usage-history?offset=-1", "offset"),
        (
            "/v1/organization/billing/usage-history?startDate=yesterday",
            "startDate",
        ),
        (
            "/v1/organization/billing/usage-history?startDate=2026-02-01&endDate=2026-01-01",
            "endDate",
        ),
        ("/v1/usage-record?limit=abc", "limit"),
        ("/v1/usage-record/summary?endDate=13/01/2026", "endDate"),
    ] {
        let (status, body) = app.get(path, Some(&owner.token)).await;
        assert_validation(status, &body, field);
    }

    // the other organization's usage is its own
    let (_, s) = app
        .get("/v1/usage-record/summary", Some(&other.token))
        .await;
    assert_eq!(s["costCents"], 7.0);
    assert_eq!(s["records"], 1);
}

#[tokio::test]
async fn free_daily_limit_is_429_until_midnight() {
    let app = TestApp::spawn_full(&[], "[plans.free]\ndaily_limit_cents = 10\n", None).await;
    let (owner, org_id) = owner_and_org(&app).await;
    app.use_cents(&org_id, 6.0).await.unwrap();
    app.use_cents(&org_id, 6.0).await.unwrap(); // started below the limit: allowed to finish
    let err = app.use_cents(&org_id, 1.0).await.unwrap_err();
    assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS, "{err}");
    let (_, r) = app
        .get("/v1/organization/rate-limit", Some(&owner.token))
        .await;
    assert_eq!(r["limitCents"], 10);
    assert_eq!(r["usedCents"], 12.0);
    assert_eq!(r["remainingCents"], 0.0);
    assert_eq!(r["limited"], true);
}

#[tokio::test]
async fn pay_as_you_go_usage_limit_is_402() {
    let app = TestApp::spawn().await;
    let (owner, org_id) = owner_and_org(&app).await;
    app.post(
        "/v1/organization/billing/checkout",
        Some(&owner.token),
        json!({"plan": "payAsYouGo"}),
    )
    .await;
    // well past the free daily limit: payAsYouGo has none
    app.use_cents(&org_id, 150.0).await.unwrap();
    app.put(
        "/v1/organization/billing/usage-limit",
        Some(&owner.token),
        json!({"limit": 200}),
    )
    .await;
    app.use_cents(&org_id, 60.0).await.unwrap();
    let err = app.use_cents(&org_id, 1.0).await.unwrap_err();
    assert_eq!(err.status(), StatusCode::PAYMENT_REQUIRED, "{err}");
    let (_, r) = app
        .get("/v1/organization/rate-limit", Some(&owner.token))
        .await;
    assert_eq!(r["plan"], "payAsYouGo");
    assert_eq!(r["limitCents"], 200);
    assert_eq!(r["limited"], true);
    let (_, b) = app
        .get("/v1/organization/billing", Some(&owner.token))
        .await;
    assert_eq!(b["billableUsageCents"], 210.0);
    assert_eq!(b["estimatedChargeCents"], 210.0);
    // raising the limit lets usage continue
    app.put(
        "/v1/organization/billing/usage-limit",
        Some(&owner.token),
        json!({"limit": null}),
    )
    .await;
    app.use_cents(&org_id, 1.0).await.unwrap();
}

/// 200 concurrent usage-creating requests against a limit: the ledger stays exact and usage
/// stops within one request's cost of the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_usage_stops_at_the_limit_and_the_ledger_is_exact() {
    let app = TestApp::spawn_full(&[], "[plans.free]\ndaily_limit_cents = 50\n", None).await;
    let (owner, org_id) = owner_and_org(&app).await;
    let org = uuid::Uuid::parse_str(&org_id).unwrap();
    // 0.7 cents and a sub-cent remainder per request, so exactness is visible
    let cost: i64 = 700_000_123;
    let limit: i64 = 50 * 1_000_000_000;

    let mut tasks = Vec::new();
    for _ in 0..200 {
        let state = app.state.clone();
        tasks.push(tokio::spawn(async move {
            use thesis_api::billing::ledger;
            let admission =
                ledger::admit_org_id(&state.db, state.free_daily_limit_cents(), org, cost).await?;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await; // the "upstream call"
            ledger::record(&state.db, Some(&admission), usage(org, cost)).await?;
            Ok::<_, thesis_api::error::ApiError>(())
        }));
    }
    let mut ok = 0i64;
    let mut limited = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => {
                assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS, "{e}");
                limited += 1;
            }
        }
    }
    assert_eq!(ok + limited, 200);
    let total = ok * cost;
    assert!(total >= limit, "stopped early: {total} < {limit}");
    assert!(
        total < limit + cost,
        "overshot by more than one request: {total} vs {limit}"
    );

    // every reported total equals the sum of the records
    let (_, s) = app
        .get("/v1/usage-record/summary", Some(&owner.token))
        .await;
    assert_eq!(s["records"], ok);
    let expected_cents = total as f64 / 1e9;
    assert_eq!(s["costCents"].as_f64().unwrap(), expected_cents);
    let (_, page) = app
        .get(
            "/v1/organization/billing/usage-history?limit=100",
            Some(&owner.token),
        )
        .await;
    assert_eq!(page["total"], ok);
    let (_, b) = app
        .get("/v1/organization/billing", Some(&owner.token))
        .await;
    assert_eq!(b["usageThisPeriodCents"].as_f64().unwrap(), expected_cents);
    let (_, r) = app
        .get("/v1/organization/rate-limit", Some(&owner.token))
        .await;
    assert_eq!(r["usedCents"].as_f64().unwrap(), expected_cents);
    assert_eq!(r["limited"], true);
    // no reservation is left behind
    use sea_orm::{EntityTrait, PaginatorTrait};
    let left = thesis_db::entities::usage_reservation::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn recording_with_one_idempotency_key_counts_once() {
    let app = TestApp::spawn().await;
    let (owner, org_id) = owner_and_org(&app).await;
    let org = uuid::Uuid::parse_str(&org_id).unwrap();
    use thesis_api::billing::ledger;
    let mut u = usage(org, 1_000_000_000);
    u.idempotency_key = Some("response-123".into());
    let a = ledger::record(&app.state.db, None, u.clone())
        .await
        .unwrap();
    let b = ledger::record(&app.state.db, None, u).await.unwrap();
    assert_eq!(a.id, b.id);
    let (_, s) = app
        .get("/v1/usage-record/summary", Some(&owner.token))
        .await;
    assert_eq!(s["records"], 1);
    assert_eq!(s["costCents"], 1.0);
}

fn admin_env() -> [(&'static str, &'static str); 1] {
    [("THESIS_ADMIN_EMAILS", "root@example.com")]
}

#[tokio::test]
async fn trial_lifecycle_end_to_end() {
    let app =
        TestApp::spawn_full(&admin_env(), "[plans.free]\ndaily_limit_cents = 10\n", None).await;
    let (owner, org_id) = owner_and_org(&app).await;
    let root = app.signup("root@example.com").await;
    let trials = format!("/v1/admin/organizations/{org_id}/trials");

    // nothing to claim yet
    let (status, _) = app
        .call(
            Method::POST,
            "/v1/organization/claim-trial",
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // the admin creates a trial; the organization sees it as claimable
    let (status, t) = app
        .post(
            &trials,
            Some(&root.token),
            json!({"lengthDays": 14, "maxUsageAllowanceCents": 500}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["status"], "unclaimed");
    let (_, state) = app.get("/v1/organization/trial", Some(&owner.token)).await;
    assert_eq!(state["claimable"], true);
    assert_eq!(state["active"], false);

    // a member cannot claim; the owner can, once
    let member = member_of(&app, &owner, &org_id, "m@example.com", "member").await;
    let (status, _) = app
        .call(
            Method::POST,
            "/v1/organization/claim-trial",
            Some(&member.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, claimed) = app
        .call(
            Method::POST,
            "/v1/organization/claim-trial",
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{claimed}");
    assert_eq!(claimed["status"], "active");
    assert_eq!(claimed["lengthDays"], 14);
    app.post(
        &trials,
        Some(&root.token),
        json!({"lengthDays": 3, "maxUsageAllowanceCents": 100}),
    )
    .await;
    let (status, _) = app
        .call(
            Method::POST,
            "/v1/organization/claim-trial",
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "one trial at a time");

    // usage beyond the free daily limit is covered by the trial
    let org = uuid::Uuid::parse_str(&org_id).unwrap();
    for _ in 0..4 {
        app.use_cents(&org_id, 20.0).await.unwrap();
    }
    let (_, r) = app
        .get("/v1/organization/rate-limit", Some(&owner.token))
        .await;
    assert_eq!(r["trialActive"], true);
    assert_eq!(r["limited"], false);
    assert_eq!(r["usedCents"], 0.0, "covered usage is not billable");
    let (_, state) = app.get("/v1/organization/trial", Some(&owner.token)).await;
    assert_eq!(state["active"], true);
    assert_eq!(state["trial"]["usedCents"], 80.0);
    assert_eq!(state["trial"]["remainingCents"], 420.0);
    let (_, b) = app
        .get("/v1/organization/billing", Some(&owner.token))
        .await;
    assert_eq!(b["usageThisPeriodCents"], 80.0);
    assert_eq!(b["trialCoveredCents"], 80.0);
    assert_eq!(b["billableUsageCents"], 0.0);

    // expiry by cron: move the trial's end into the past, run the job
    let trial_id = claimed["id"].as_str().unwrap();
    let start = (chrono::Utc::now() - chrono::Duration::days(15)).to_rfc3339();
    let end = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    let (status, t) = app
        .put(
            &format!("{trials}/{trial_id}"),
            Some(&root.token),
            json!({"periodStart": start, "periodEnd": end}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let execution = thesis_api::cron::run_now(&app.state, "trial-expiry")
        .await
        .unwrap();
    assert_eq!(execution.details.unwrap()["expired"], 1);
    let (_, list) = app.get(&trials, Some(&root.token)).await;
    let expired = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == trial_id)
        .unwrap();
    assert_eq!(expired["status"], "expired");
    assert!(expired["expiredAt"].is_string());

    // the free limit is back: today's uncovered usage is 0, the limit 10
    app.use_cents(&org_id, 8.0).await.unwrap();
    app.use_cents(&org_id, 8.0).await.unwrap();
    let err = app.use_cents(&org_id, 1.0).await.unwrap_err();
    assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS);
    let _ = org;

    // the second trial can be claimed now
    let (status, _) = app
        .call(
            Method::POST,
            "/v1/organization/claim-trial",
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn trial_covers_only_up_to_its_allowance() {
    let app = TestApp::spawn_full(
        &admin_env(),
        "[plans.free]\ndaily_limit_cents = 1000\n",
        None,
    )
    .await;
    let (owner, org_id) = owner_and_org(&app).await;
    let root = app.signup("root@example.com").await;
    let (status, _) = app
        .post(
            &format!("/v1/admin/organizations/{org_id}/trials"),
            Some(&root.token),
            json!({"lengthDays": 7, "maxUsageAllowanceCents": 10, "claimOnCreate": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    app.use_cents(&org_id, 6.0).await.unwrap();
    app.use_cents(&org_id, 6.0).await.unwrap(); // 4 covered, 2 billable
    let (_, b) = app
        .get("/v1/organization/billing", Some(&owner.token))
        .await;
    assert_eq!(b["trialCoveredCents"], 10.0);
    assert_eq!(b["billableUsageCents"], 2.0);
    let (_, state) = app.get("/v1/organization/trial", Some(&owner.token)).await;
    assert_eq!(state["trial"]["status"], "exhausted");
    assert_eq!(state["active"], false);
}

#[tokio::test]
async fn admin_trial_routes_are_for_platform_admins_and_check_input() {
    let app = TestApp::spawn_with(&admin_env()).await;
    let (owner, org_id) = owner_and_org(&app).await;
    let root = app.signup("root@example.com").await;
    let trials = format!("/v1/admin/organizations/{org_id}/trials");

    let (status, _) = app
        .post(
            &trials,
            Some(&owner.token),
            json!({"lengthDays": 7, "maxUsageAllowanceCents": 10}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an organization owner is not a platform admin"
    );
    assert_eq!(
        app.get(&trials, Some(&owner.token)).await.0,
        StatusCode::FORBIDDEN
    );

    for (body, field) in [
        (
            json!({"lengthDays": 0, "maxUsageAllowanceCents": 10}),
            "lengthDays",
        ),
        (
            json!({"lengthDays": 7, "maxUsageAllowanceCents": -1}),
            "maxUsageAllowanceCents",
        ),
        (json!({"maxUsageAllowanceCents": 10}), "lengthDays"),
        (json!({"lengthDays": 7}), "maxUsageAllowanceCents"),
    ] {
        let (status, res) = app.post(&trials, Some(&root.token), body).await;
        assert_validation(status, &res, field);
    }
    let unknown = format!("/v1/admin/organizations/{}/trials", uuid::Uuid::now_v7());
    let (status, _) = app.get(&unknown, Some(&root.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, t) = app
        .post(
            &trials,
            Some(&root.token),
            json!({"lengthDays": 7, "maxUsageAllowanceCents": 10}),
        )
        .await;
    let id = t["id"].as_str().unwrap();
    let (status, t2) = app
        .put(
            &format!("{trials}/{id}"),
            Some(&root.token),
            json!({"lengthDays": 30, "maxUsageAllowanceCents": 99}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t2}");
    assert_eq!(t2["lengthDays"], 30);
    assert_eq!(t2["maxUsageAllowanceCents"], 99);
    for (body, field) in [
        (json!({"periodStart": "nope"}), "periodStart"),
        (
            json!({"periodStart": "2026-01-10", "periodEnd": "2026-01-01"}),
            "periodEnd",
        ),
        (json!({"lengthDays": 99999}), "lengthDays"),
        (json!({"bogus": 1}), "bogus"),
    ] {
        let (status, res) = app
            .put(&format!("{trials}/{id}"), Some(&root.token), body)
            .await;
        assert_validation(status, &res, field);
    }

    // a trial id under another organization is 404
    let other = app.signup("other@example.com").await;
    let other_org = app.create_org(&other.token, "Other").await;
    let wrong = format!(
        "/v1/admin/organizations/{}/trials/{id}",
        other_org["id"].as_str().unwrap()
    );
    assert_eq!(
        app.put(&wrong, Some(&root.token), json!({"lengthDays": 1}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&wrong, Some(&root.token)).await.0,
        StatusCode::NOT_FOUND
    );

    let (status, deleted) = app
        .delete(&format!("{trials}/{id}"), Some(&root.token))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["id"], id);
    assert_eq!(app.get(&trials, Some(&root.token)).await.1, json!([]));
}

#[tokio::test]
async fn admin_usage_views() {
    let app = TestApp::spawn_with(&admin_env()).await;
    let (owner, org_id) = owner_and_org(&app).await;
    let root = app.signup("root@example.com").await;
    app.use_cents(&org_id, 1.5).await.unwrap();
    app.use_cents(&org_id, 2.5).await.unwrap();
    let other = app.signup("other@example.com").await;
    let other_org = app.create_org(&other.token, "Other").await;
    app.use_cents(other_org["id"].as_str().unwrap(), 1.0)
        .await
        .unwrap();

    let path = format!("/v1/admin/organizations/{org_id}/usage");
    let (status, page) = app
        .get(
            &format!("{path}?metricType=tokens&limit=1"),
            Some(&root.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 2);
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let (_, page) = app
        .get(&format!("{path}?metricType=compute"), Some(&root.token))
        .await;
    assert_eq!(page["total"], 0);
    let (status, body) = app
        .get(&format!("{path}?metricType=gpu"), Some(&root.token))
        .await;
    assert_validation(status, &body, "metricType");
    assert_eq!(
        app.get(&path, Some(&owner.token)).await.0,
        StatusCode::FORBIDDEN
    );

    for group in ["day", "week", "month"] {
        let (status, a) = app
            .get(
                &format!("/v1/admin/usage?groupBy={group}"),
                Some(&root.token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{a}");
        assert_eq!(a["groupBy"], group);
        assert_eq!(a["data"].as_array().unwrap().len(), 1, "{a}");
        assert_eq!(a["data"][0]["costCents"], 5.0);
        assert_eq!(a["data"][0]["organizations"], 2);
        assert_eq!(a["data"][0]["records"], 3);
        assert_eq!(a["totals"]["costCents"], 5.0);
    }
    let (_, a) = app
        .get("/v1/admin/usage?groupBy=week", Some(&root.token))
        .await;
    assert!(
        a["data"][0]["period"].as_str().unwrap().contains("-W"),
        "{a}"
    );
    let (status, body) = app
        .get("/v1/admin/usage?groupBy=year", Some(&root.token))
        .await;
    assert_validation(status, &body, "groupBy");
    assert_eq!(
        app.get("/v1/admin/usage", Some(&owner.token)).await.0,
        StatusCode::FORBIDDEN
    );
}

fn executions(v: &Value) -> Vec<Value> {
    v["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn cron_executions_are_listed_filtered_and_sorted() {
    let app = TestApp::spawn_with(&admin_env()).await;
    let root = app.signup("root@example.com").await;
    let user = app.signup("user@example.com").await;
    for job in ["trial-expiry", "cleanup", "trial-expiry", "usage-report"] {
        let e = thesis_api::cron::run_now(&app.state, job).await.unwrap();
        assert_eq!(
            e.status,
            thesis_db::entities::CronStatus::Success,
            "{job}: {:?}",
            e.error
        );
    }
    let (status, page) = app
        .get("/v1/admin/cron-executions", Some(&root.token))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 4);
    let first = &executions(&page)[0];
    assert_eq!(first["jobName"], "usage-report", "newest first");
    assert!(
        first["details"]["skipped"]
            .as_str()
            .unwrap()
            .contains("self-hosted")
    );
    for field in [
        "id",
        "jobName",
        "status",
        "startedAt",
        "finishedAt",
        "durationMs",
        "error",
        "details",
    ] {
        assert!(first.get(field).is_some(), "missing {field}");
    }
    let (_, page) = app
        .get(
            "/v1/admin/cron-executions?jobName=trial-expiry",
            Some(&root.token),
        )
        .await;
    assert_eq!(page["total"], 2);
    let (_, page) = app
        .get("/v1/admin/cron-executions?status=failed", Some(&root.token))
        .await;
    assert_eq!(page["total"], 0);
    let (_, page) = app
        .get(
            "/v1/admin/cron-executions?sortBy=jobName&sortOrder=asc&limit=2&offset=1",
            Some(&root.token),
        )
        .await;
    let names: Vec<_> = executions(&page)
        .iter()
        .map(|e| e["jobName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["trial-expiry", "trial-expiry"]);
    for (q, field) in [
        ("sortBy=name", "sortBy"),
        ("sortOrder=up", "sortOrder"),
        ("status=done", "status"),
        ("jobName=backup", "jobName"),
        ("limit=500", "limit"),
    ] {
        let (status, body) = app
            .get(&format!("/v1/admin/cron-executions?{q}"), Some(&root.token))
            .await;
        assert_validation(status, &body, field);
    }
    assert_eq!(
        app.get("/v1/admin/cron-executions", Some(&user.token))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/v1/admin/cron-executions", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// A usage record written as if it had been created at `at` (for views over past days).
async fn usage_at(app: &TestApp, org_id: &str, cost_cents: i64, at: &str) {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let at: chrono::DateTime<chrono::Utc> = at.parse().unwrap();
    thesis_db::entities::usage_record::ActiveModel {
        id: Set(thesis_db::new_id()),
        organization_id: Set(uuid::Uuid::parse_str(org_id).unwrap()),
        user_id: Set(None),
        metric_type: Set(thesis_db::entities::MetricType::Tokens),
        model: Set(Some("test-model".into())),
        machine_id: Set(None),
        quantity: Set(10.0),
        unit: Set("tokens".into()),
        input_tokens: Set(Some(6)),
        output_tokens: Set(Some(4)),
        cached_tokens: Set(Some(0)),
        reasoning_tokens: Set(Some(0)),
        cost_nanocents: Set(cost_cents * 1_000_000_000),
        trial_id: Set(None),
        trial_covered_nanocents: Set(0),
        day: Set(at.format("%Y-%m-%d").to_string()),
        idempotency_key: Set(None),
        metadata: Set(None),
        created_at: Set(at),
    }
    .insert(&app.state.db)
    .await
    .unwrap();
}

/// `GET /admin/usage` folds days into ISO weeks and calendar months, per bucket and in total.
#[tokio::test]
async fn admin_usage_groups_by_day_week_and_month() {
    let app = TestApp::spawn_with(&admin_env()).await;
    let (_, a) = owner_and_org(&app).await;
    let root = app.signup("root@example.com").await;
    let other = app.signup("other@example.com").await;
    let b = app.create_org(&other.token, "Other").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    usage_at(&app, &a, 1, "2026-01-30T23:59:59Z").await; // Friday of ISO week 5
    usage_at(&app, &a, 2, "2026-02-01T00:00:00Z").await; // Sunday of ISO week 5
    usage_at(&app, &b, 4, "2026-02-02T12:00:00Z").await; // Monday of ISO week 6
    usage_at(&app, &a, 8, "2026-03-15T08:00:00Z").await; // ISO week 11
    usage_at(&app, &a, 16, "2025-12-31T23:59:59Z").await; // before the range

    // (period, cost in cents, records, organizations) per bucket
    type Buckets = &'static [(&'static str, f64, i64, i64)];
    let expected: [(&str, Buckets); 3] = [
        (
            "day",
            &[
                ("2026-01-30", 1.0, 1, 1),
                ("2026-02-01", 2.0, 1, 1),
                ("2026-02-02", 4.0, 1, 1),
                ("2026-03-15", 8.0, 1, 1),
            ],
        ),
        (
            "week",
            &[
                ("2026-W05", 3.0, 2, 1),
                ("2026-W06", 4.0, 1, 1),
                ("2026-W11", 8.0, 1, 1),
            ],
        ),
        (
            "month",
            &[
                ("2026-01", 1.0, 1, 1),
                ("2026-02", 6.0, 2, 2),
                ("2026-03", 8.0, 1, 1),
            ],
        ),
    ];
    for (group, buckets) in expected {
        let (status, body) = app
            .get(
                &format!("/v1/admin/usage?groupBy={group}&startDate=2026-01-01&endDate=2026-03-31"),
                Some(&root.token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), buckets.len(), "{group}: {body}");
        for (row, (period, cost, records, orgs)) in data.iter().zip(buckets) {
            assert_eq!(row["period"], *period, "{group}: {row}");
            assert_eq!(row["costCents"], *cost, "{group}: {row}");
            assert_eq!(row["records"], *records, "{group}: {row}");
            assert_eq!(row["organizations"], *orgs, "{group}: {row}");
        }
        assert_eq!(body["totals"]["costCents"], 15.0, "{group}");
        assert_eq!(body["totals"]["records"], 4);
        assert_eq!(body["totals"]["organizations"], 2);
    }
    // an unknown organization's usage is 404
    let (status, body) = app
        .get(
            &format!("/v1/admin/organizations/{}/usage", uuid::Uuid::now_v7()),
            Some(&root.token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// The compute and storage histories list only their metric, of their organization only.
#[tokio::test]
async fn compute_and_storage_histories_list_their_metric_only() {
    use thesis_api::billing::ledger;
    use thesis_db::entities::MetricType;
    let app = TestApp::spawn().await;
    let (owner, org_id) = owner_and_org(&app).await;
    let org = uuid::Uuid::parse_str(&org_id).unwrap();
    let machine = uuid::Uuid::now_v7();
    let metered = |org: uuid::Uuid, metric: MetricType, cost_nanos: i64| {
        let mut u = usage(org, cost_nanos);
        u.metric_type = metric;
        u.model = None;
        (
            u.input_tokens,
            u.output_tokens,
            u.cached_tokens,
            u.reasoning_tokens,
        ) = (None, None, None, None);
        match metric {
            MetricType::Compute => {
                u.machine_id = Some(machine);
                u.quantity = 0.5;
                u.unit = "hours".into();
            }
            _ => {
                u.quantity = 2.0e9;
                u.unit = "byte-days".into();
            }
        }
        u
    };
    for cost in [30_000_000_000i64, 12_500_000_000] {
        ledger::record(&app.state.db, None, metered(org, MetricType::Compute, cost))
            .await
            .unwrap();
    }
    ledger::record(
        &app.state.db,
        None,
        metered(org, MetricType::Storage, 1_000_000),
    )
    .await
    .unwrap();
    app.use_cents(&org_id, 0.25).await.unwrap();
    let other = app.signup("other@example.com").await;
    let other_org = app.create_org(&other.token, "Other").await;
    let other_id = uuid::Uuid::parse_str(other_org["id"].as_str().unwrap()).unwrap();
    ledger::record(
        &app.state.db,
        None,
        metered(other_id, MetricType::Compute, 1),
    )
    .await
    .unwrap();

    let (status, page) = app
        .get(
            "/v1/organization/billing/compute-usage-history",
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 2, "{page}");
    let rows = page["data"].as_array().unwrap();
    assert_eq!(rows[0]["costCents"], 12.5, "newest first");
    assert_eq!(rows[1]["costCents"], 30.0);
    for r in rows {
        assert_eq!(r["metricType"], "compute");
        assert_eq!(r["organizationId"], org_id.as_str());
        assert_eq!(r["machineId"], machine.to_string());
        assert_eq!(r["unit"], "hours");
        assert!(r["model"].is_null() && r["inputTokens"].is_null(), "{r}");
    }
    let (_, page) = app
        .get(
            "/v1/organization/billing/storage-usage-history",
            Some(&owner.token),
        )
        .await;
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["data"][0]["metricType"], "storage");
    assert_eq!(page["data"][0]["costCents"], 0.001);
    let (_, page) = app
        .get("/v1/organization/billing/usage-history", Some(&owner.token))
        .await;
    assert_eq!(page["total"], 4, "every metric of the organization");

    // paging and dates apply, and bad ones are refused, on both routes
    for route in ["compute-usage-history", "storage-usage-history"] {
        let base = format!("/v1/organization/billing/{route}");
        let (_, page) = app
            .get(
                &format!("{base}?startDate=2000-01-01&endDate=2000-01-02"),
                Some(&owner.token),
            )
            .await;
        assert_eq!(page["total"], 0);
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("offset=-1", "offset"),
            ("startDate=soon", "startDate"),
            ("endDate=2026-13-45", "endDate"),
        ] {
            let (status, body) = app
                .get(&format!("{base}?{query}"), Some(&owner.token))
                .await;
            assert_validation(status, &body, field);
        }
    }
    let (_, page) = app
        .get(
            "/v1/organization/billing/compute-usage-history?limit=1&offset=1",
            Some(&owner.token),
        )
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["costCents"], 30.0);
}

/// Every organization-scoped billing, usage and trial route answers 403 for an organization
/// the caller does not belong to, and changes nothing there.
#[tokio::test]
async fn billing_routes_refuse_another_organizations_id() {
    let app = TestApp::spawn().await;
    let (owner, _) = owner_and_org(&app).await;
    let other = app.signup("other@example.com").await;
    let theirs = app.create_org(&other.token, "Other").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let header = [("x-organization-id", theirs.as_str())];
    let calls: [(reqwest::Method, &str, Option<serde_json::Value>); 13] = [
        (reqwest::Method::GET, "/v1/organization/billing", None),
        (
            reqwest::Method::GET,
            "/v1/organization/billing/usage-history",
            None,
        ),
        (
            reqwest::Method::GET,
            "/v1/organization/billing/compute-usage-history",
            None,
        ),
        (
            reqwest::Method::GET,
            "/v1/organization/billing/storage-usage-history",
            None,
        ),
        (reqwest::Method::GET, "/v1/organization/rate-limit", None),
        (reqwest::Method::GET, "/v1/organization/trial", None),
        (reqwest::Method::GET, "/v1/usage-record", None),
        (reqwest::Method::GET, "/v1/usage-record/summary", None),
        (
            reqwest::Method::PUT,
            "/v1/organization/billing/usage-limit",
            Some(json!({"limit": 5})),
        ),
        (
            reqwest::Method::POST,
            "/v1/organization/billing/checkout",
            Some(json!({"plan": "payAsYouGo"})),
        ),
        (
            reqwest::Method::POST,
            "/v1/organization/billing/portal",
            Some(json!({})),
        ),
        (
            reqwest::Method::POST,
            "/v1/organization/claim-trial",
            Some(json!({})),
        ),
        (
            reqwest::Method::PUT,
            "/v1/organization",
            Some(json!({"usageLimitCents": 5})),
        ),
    ];
    for (method, path, body) in calls {
        let (status, _, answer) = app
            .call_full(method.clone(), path, Some(&owner.token), body, &header)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
    }
    let (_, b) = app
        .get("/v1/organization/billing", Some(&other.token))
        .await;
    assert_eq!(b["plan"], "free", "{b}");
    assert!(b["limitCents"].is_null(), "{b}");
}
