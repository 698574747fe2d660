use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn signup_returns_user_and_working_token() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": "Ada@Example.com", "password": "correct-horse", "name": "Ada"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["email"], "Ada@Example.com");
    assert_eq!(body["user"]["name"], "Ada");
    assert_eq!(body["user"]["isAdmin"], false);
    assert!(body["expiresAt"].as_str().unwrap().ends_with('Z'));
    let token = body["token"].as_str().unwrap();
    assert!(token.len() >= 40);

    let (status, me) = app.get("/v1/user", Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], body["user"]["id"]);
    assert!(me["createdAt"].as_str().unwrap().ends_with('Z'));
    for field in ["id", "email", "name", "isAdmin", "createdAt", "updatedAt"] {
        assert!(me.get(field).is_some(), "missing {field}: {me}");
    }
}

#[tokio::test]
async fn signup_validation_rules() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": "correct-horse", "name": "A"}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": "short", "name": "A"}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "correct-horse", "name": "   "}),
            "name",
        ),
        (
            json!({"email": "a@example.com", "password": "correct-horse", "name": "x".repeat(201)}),
            "name",
        ),
        (
            json!({"email": "a@example.com", "password": "correct-horse"}),
            "name",
        ),
        (json!({"password": "correct-horse", "name": "A"}), "email"),
        (
            json!({"email": 5, "password": "correct-horse", "name": "A"}),
            "email",
        ),
    ];
    for (body, field) in cases {
        let (status, res) = app.post("/v1/auth/signup", None, body).await;
        assert_validation(status, &res, field);
    }
}

#[tokio::test]
async fn duplicate_signup_is_409_case_insensitive() {
    let app = TestApp::spawn().await;
    app.signup("dup@example.com").await;
    let (status, body) = app
        .post(
            "/v1/auth/signup",
            None,
            json!({"email": "DUP@example.COM", "password": "correct-horse", "name": "Other"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&body, StatusCode::CONFLICT);
}

#[tokio::test]
async fn login_and_wrong_credentials_share_one_message() {
    let app = TestApp::spawn().await;
    app.signup("login@example.com").await;
    let (status, body) = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "LOGIN@example.com", "password": "correct-horse"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap();
    assert_eq!(app.get("/v1/user", Some(token)).await.0, StatusCode::OK);

    let (s1, wrong_pw) = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "login@example.com", "password": "nope-nope"}),
        )
        .await;
    let (s2, unknown) = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "ghost@example.com", "password": "nope-nope"}),
        )
        .await;
    assert_eq!(s1, StatusCode::UNAUTHORIZED);
    assert_eq!(s2, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_pw["message"], unknown["message"]);

    let (status, body) = app
        .post("/v1/auth/login", None, json!({"email": "x@y.z"}))
        .await;
    assert_validation(status, &body, "password");
}

#[tokio::test]
async fn repeated_failed_logins_are_limited() {
    let app = TestApp::spawn().await;
    app.signup("brute@example.com").await;
    let mut limited = false;
    for _ in 0..25 {
        let (status, _) = app
            .post(
                "/v1/auth/login",
                None,
                json!({"email": "brute@example.com", "password": "guess-guess"}),
            )
            .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert!(limited, "25 failed logins were never limited");
    // the limit is per e-mail: another account still logs in
    app.signup("other@example.com").await;
    let (status, _) = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "other@example.com", "password": "correct-horse"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn missing_malformed_and_unknown_tokens_are_401() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/v1/user", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, StatusCode::UNAUTHORIZED);
    for header in [
        "Basic abc",
        "Bearer",
        "Bearer ths_doesnotexist",
        "Bearer thk_doesnotexist",
        "Bearer garbage",
    ] {
        let (status, _, body) = app
            .call_full(
                Method::GET,
                "/v1/user",
                None,
                None,
                &[("authorization", header)],
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{header}: {body}");
    }
}

#[tokio::test]
async fn logout_revokes_the_session_at_once() {
    let app = TestApp::spawn().await;
    let user = app.signup("bye@example.com").await;
    let (status, _) = app
        .call(Method::POST, "/v1/auth/logout", Some(&user.token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/v1/user", Some(&user.token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, StatusCode::UNAUTHORIZED);
    // a second logout with the revoked token is 401 too
    let (status, _) = app
        .call(Method::POST, "/v1/auth/logout", Some(&user.token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_keys_create_list_revoke() {
    let app = TestApp::spawn().await;
    let user = app.signup("keys@example.com").await;
    let (status, key) = app
        .post("/v1/api-key", Some(&user.token), json!({"name": "laptop"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let secret = key["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    assert!(key["organizationId"].is_null());

    let (status, me) = app.get("/v1/user", Some(&secret)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["id"], user.id.as_str());

    let (status, list) = app.get("/v1/api-key", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(
        list[0].get("key").is_none(),
        "the key is shown once: {list}"
    );
    assert!(
        !list[0]["lastUsedAt"].is_null(),
        "last use is recorded: {list}"
    );

    // another user cannot see or revoke it
    let other = app.signup("other@example.com").await;
    assert_eq!(
        app.get("/v1/api-key", Some(&other.token)).await.1,
        json!([])
    );
    let path = format!("/v1/api-key/{}", key["id"].as_str().unwrap());
    let (status, _) = app.delete(&path, Some(&other.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/v1/user", Some(&secret)).await.0, StatusCode::OK);

    let (status, _) = app.delete(&path, Some(&user.token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get("/v1/user", Some(&secret)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked key: {body}");
    assert_eq!(
        app.delete(&path, Some(&user.token)).await.0,
        StatusCode::NOT_FOUND
    );

    // validation
    let (status, body) = app
        .post("/v1/api-key", Some(&user.token), json!({"name": ""}))
        .await;
    assert_validation(status, &body, "name");
    let (status, body) = app
        .post(
            "/v1/api-key",
            Some(&user.token),
            json!({"name": "x", "organizationId": "nope"}),
        )
        .await;
    assert_validation(status, &body, "organizationId");
    let (status, body) = app
        .delete("/v1/api-key/not-a-uuid", Some(&user.token))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn api_key_for_an_organization_needs_membership_and_selects_it() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let first = app.create_org(&owner.token, "First").await;
    let second = app.create_org(&owner.token, "Second").await;
    let stranger = app.signup("stranger@example.com").await;

    let (status, body) = app
        .post(
            "/v1/api-key",
            Some(&stranger.token),
            json!({"name": "x", "organizationId": second["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, key) = app
        .post(
            "/v1/api-key",
            Some(&owner.token),
            json!({"name": "ci", "organizationId": second["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let secret = key["key"].as_str().unwrap();
    // the key's organization is the current one, not the oldest membership
    let (_, members) = app.get("/v1/membership", Some(secret)).await;
    assert_eq!(members[0]["organizationId"], second["id"]);
    let (_, members) = app.get("/v1/membership", Some(&owner.token)).await;
    assert_eq!(members[0]["organizationId"], first["id"]);
}

#[tokio::test]
async fn user_by_session_accepts_bearer_or_cookie_but_not_api_keys() {
    let app = TestApp::spawn().await;
    let user = app.signup("session@example.com").await;
    let (status, body) = app.get("/v1/user/by-session", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], user.id.as_str());
    assert!(body["session"]["id"].is_string());
    assert!(body["session"]["expiresAt"].is_string());

    let cookie = format!("other=1; thesis_session={}", user.token);
    let (status, _, body) = app
        .call_full(
            Method::GET,
            "/v1/user/by-session",
            None,
            None,
            &[("cookie", &cookie)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["id"], user.id.as_str());

    let (_, key) = app
        .post("/v1/api-key", Some(&user.token), json!({"name": "k"}))
        .await;
    let (status, _) = app.get("/v1/user/by-session", key["key"].as_str()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get("/v1/user/by-session", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn password_reset_end_to_end_through_the_outbox() {
    let app = TestApp::spawn().await;
    let user = app.signup("forgetful@example.com").await;
    let other_session = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "forgetful@example.com", "password": "correct-horse"}),
        )
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, body) = app
        .post(
            "/v1/user/password-reset",
            None,
            json!({"email": "Forgetful@Example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!(true));
    let mail = app
        .wait_for_mail("forgetful@example.com", "Reset token:")
        .await;
    let token = extract_token(&mail, "Reset token:");

    // wrong token: 400, nothing changes
    let (status, body) = app
        .post(
            "/v1/auth/password-reset/confirm",
            None,
            json!({"token": "not-the-token", "password": "new-password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/v1/user", Some(&user.token)).await.0,
        StatusCode::OK
    );

    // too short a password is refused before the token is used
    let (status, body) = app
        .post(
            "/v1/auth/password-reset/confirm",
            None,
            json!({"token": token, "password": "short"}),
        )
        .await;
    assert_validation(status, &body, "password");

    let (status, body) = app
        .post(
            "/v1/auth/password-reset/confirm",
            None,
            json!({"token": token, "password": "new-password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"reset": true}));

    // every session is revoked, the old password is gone, the new one works
    assert_eq!(
        app.get("/v1/user", Some(&user.token)).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/v1/user", Some(&other_session)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "forgetful@example.com", "password": "correct-horse"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "forgetful@example.com", "password": "new-password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // single use
    let (status, _) = app
        .post(
            "/v1/auth/password-reset/confirm",
            None,
            json!({"token": token, "password": "another-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn password_reset_for_unknown_email_says_true_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/v1/user/password-reset",
            None,
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!(true));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(app.mails().is_empty(), "{:?}", app.mails());

    let (status, body) = app
        .post("/v1/user/password-reset", None, json!({"email": "nope"}))
        .await;
    assert_validation(status, &body, "email");
    let (status, body) = app.post("/v1/user/password-reset", None, json!({})).await;
    assert_validation(status, &body, "email");
}

#[tokio::test]
async fn password_reset_is_rate_limited_per_email() {
    let app = TestApp::spawn().await;
    let mut statuses = vec![];
    for _ in 0..7 {
        let (status, _, _) = app
            .call_full(
                Method::POST,
                "/v1/user/password-reset",
                None,
                Some(json!({"email": "target@example.com"})),
                &[],
            )
            .await;
        statuses.push(status);
    }
    assert_eq!(&statuses[..5], &[StatusCode::OK; 5]);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);
    let (status, headers, body) = app
        .call_full(
            Method::POST,
            "/v1/user/password-reset",
            None,
            Some(json!({"email": "TARGET@example.com"})),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(headers.get("retry-after").is_some());
    // another address is not affected
    let (status, _) = app
        .post(
            "/v1/user/password-reset",
            None,
            json!({"email": "else@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
