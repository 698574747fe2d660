//! The authentication cache: a change made through one instance is seen at once there and within
//! a poll interval on every other instance; the auth generation moves on exactly the changes
//! that matter.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use crate::support::*;

async fn generation(app: &TestApp) -> i64 {
    let db = &app.state.db;
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT n FROM auth_generation WHERE id = 1",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get("", "n")
    .unwrap()
}

/// Calls `path` on `app` with `token` until it answers `want`, for at most a second; returns how
/// long that took.
async fn until(app: &TestApp, path: &str, token: &str, want: StatusCode) -> Duration {
    let started = Instant::now();
    loop {
        let (status, body) = app.get(path, Some(token)).await;
        if status == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{path} still answers {status} after a second: {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Uses `key` `rounds` times for each lookup kind: with an organization, and without.
async fn use_key(app: &TestApp, key: &str, rounds: usize) {
    for _ in 0..rounds {
        assert_eq!(
            app.get("/v1/organization/rate-limit", Some(key)).await.0,
            StatusCode::OK
        );
        assert_eq!(app.get("/v1/user", Some(key)).await.0, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_is_seen_at_once_here_and_within_a_poll_elsewhere() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_full(&[], "", Some(&a)).await;
    let user = a.signup("ada@example.com").await;
    a.create_org(&user.token, "Lab").await;
    let (_, key) = a
        .post("/v1/api-key", Some(&user.token), json!({"name": "ci"}))
        .await;
    let (key_id, key) = (
        key["id"].as_str().unwrap().to_string(),
        key["key"].as_str().unwrap().to_string(),
    );
    // both instances have the key cached: after the first lookups, the database is not asked.
    // (Both first see the setup's writes move the auth generation, within a poll or two.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    for app in [&a, &b] {
        // the first use writes "last used", which is then read anew once per lookup kind
        use_key(app, &key, 2).await;
        let (hits, misses) = app.state.auth_cache.hits_and_misses();
        use_key(app, &key, 5).await;
        let (hits_after, misses_after) = app.state.auth_cache.hits_and_misses();
        assert_eq!(
            (hits_after - hits, misses_after - misses),
            (10, 0),
            "hits {hits} -> {hits_after}, misses {misses} -> {misses_after}"
        );
    }
    // revoked through b: b refuses it with its very next request
    let (status, _) = b
        .delete(&format!("/v1/api-key/{key_id}"), Some(&user.token))
        .await;
    assert!(status.is_success(), "{status}");
    for path in ["/v1/user", "/v1/organization/rate-limit"] {
        assert_eq!(
            b.get(path, Some(&key)).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    // and a within a poll interval or two
    let waited = until(
        &a,
        "/v1/organization/rate-limit",
        &key,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(waited < Duration::from_millis(500), "took {waited:?}");
    assert_eq!(
        a.get("/v1/user", Some(&key)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // a logout through a is seen by b the same way
    let (status, _) = b.get("/v1/user", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = a
        .post("/v1/auth/logout", Some(&user.token), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        a.get("/v1/user", Some(&user.token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let waited = until(&b, "/v1/user", &user.token, StatusCode::UNAUTHORIZED).await;
    assert!(waited < Duration::from_millis(500), "took {waited:?}");
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn membership_and_limit_changes_reach_the_other_instance() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_full(&[], "", Some(&a)).await;
    let owner = a.signup("owner@example.com").await;
    let org = a.create_org(&owner.token, "Lab").await;
    let org_id = org["id"].as_str().unwrap();
    let invite = a
        .invite(&owner.token, org_id, "bob@example.com", "member")
        .await;
    let bob = a.signup("bob@example.com").await;
    assert_eq!(
        a.accept_invite_from_mail(&bob.email).await.0,
        StatusCode::OK
    );
    let path = "/v1/organization/rate-limit";
    let header = [("x-organization-id", org_id)];
    let bob_in = |app: &TestApp| {
        let token = bob.token.clone();
        let app_url = app.url(path);
        let client = app.client.clone();
        async move {
            client
                .get(app_url)
                .bearer_auth(token)
                .header(header[0].0, header[0].1)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(bob_in(&b).await, StatusCode::OK);
    assert_eq!(bob_in(&b).await, StatusCode::OK);

    // bob is removed through a; b stops letting him act in the organization
    let (status, body) = a
        .delete(
            &format!("/v1/membership/{}", invite["id"].as_str().unwrap()),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(bob_in(&a).await, StatusCode::FORBIDDEN);
    let started = Instant::now();
    while bob_in(&b).await != StatusCode::FORBIDDEN {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "b still lets bob in"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // a new usage limit set through a is the one b admits against
    let (_, r) = b.get(path, Some(&owner.token)).await;
    assert_eq!(r["limitCents"], 100, "{r}");
    let (status, _) = a
        .post(
            "/v1/organization/billing/checkout",
            Some(&owner.token),
            json!({"plan": "payAsYouGo"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = a
        .put(
            "/v1/organization/billing/usage-limit",
            Some(&owner.token),
            json!({"limit": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let started = Instant::now();
    loop {
        let (status, body) = b
            .post(
                "/v1/responses",
                Some(&owner.token),
                json!({"model": "thesis-echo", "input": "hi"}),
            )
            .await;
        if status == StatusCode::PAYMENT_REQUIRED {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "b still admits: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    b.stop().await;
    a.stop().await;
}

/// The triggers of the auth generation: every change to who may act where moves it; a token's
/// "last used" time does not.
#[tokio::test]
async fn the_auth_generation_moves_on_the_changes_that_matter() {
    let app = TestApp::spawn().await;
    let user = app.signup("ada@example.com").await;
    let org = app.create_org(&user.token, "Lab").await;
    let org_id = org["id"].as_str().unwrap().to_string();
    let (_, key) = app
        .post("/v1/api-key", Some(&user.token), json!({"name": "k"}))
        .await;
    let key_id = key["id"].as_str().unwrap().to_string();
    let db = &app.state.db;
    let exec = |sql: String| async move {
        db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap();
    };
    let now = "'2026-01-01T00:00:00+00:00'";
    let uuid = |s: &str| match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => format!("'{s}'"),
        _ => format!("X'{}'", s.replace('-', "")),
    };
    let moves: Vec<(String, bool)> = vec![
        (
            format!(
                "UPDATE api_keys SET last_used_at = {now} WHERE id = {}",
                uuid(&key_id)
            ),
            false,
        ),
        (
            format!("UPDATE auth_sessions SET last_used_at = {now}"),
            false,
        ),
        (
            format!(
                "UPDATE api_keys SET revoked_at = {now} WHERE id = {}",
                uuid(&key_id)
            ),
            true,
        ),
        (format!("UPDATE auth_sessions SET expires_at = {now}"), true),
        ("UPDATE users SET name = 'Ada L.'".to_string(), true),
        ("UPDATE memberships SET role = 'owner'".to_string(), true),
        (
            format!(
                "UPDATE organizations SET usage_limit_cents = 5 WHERE id = {}",
                uuid(&org_id)
            ),
            true,
        ),
        (
            format!(
                "INSERT INTO trials (id, organization_id, length_days, max_usage_allowance_cents, \
                 created_at, updated_at, covered_nanocents) VALUES ({}, {}, 7, 500, {now}, {now}, 0)",
                uuid("01a24000-0000-7000-8000-000000000001"),
                uuid(&org_id)
            ),
            true,
        ),
        (
            "UPDATE trials SET covered_nanocents = covered_nanocents + 5".to_string(),
            false,
        ),
        (
            format!("UPDATE trials SET claimed_at = {now}, period_start = {now}"),
            true,
        ),
        (format!("UPDATE trials SET expired_at = {now}"), true),
        ("DELETE FROM trials".to_string(), true),
        ("DELETE FROM api_keys".to_string(), true),
        ("DELETE FROM auth_sessions".to_string(), true),
        ("DELETE FROM memberships".to_string(), true),
        ("DELETE FROM organizations".to_string(), true),
        ("DELETE FROM users".to_string(), true),
    ];
    for (sql, should_move) in moves {
        let before = generation(&app).await;
        exec(sql.clone()).await;
        let after = generation(&app).await;
        assert_eq!(after > before, should_move, "{sql}: {before} -> {after}");
    }
}
