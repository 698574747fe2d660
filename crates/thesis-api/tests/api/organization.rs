use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn create_organization_makes_the_creator_owner_on_free() {
    let app = TestApp::spawn().await;
    let user = app.signup("founder@example.com").await;
    let org = app.create_org(&user.token, "Acme").await;
    assert_eq!(org["name"], "Acme");
    assert_eq!(org["type"], "team");
    assert_eq!(org["subscriptionPlan"], "free");
    assert_eq!(org["optInShareData"], "private");
    for field in [
        "id",
        "name",
        "email",
        "type",
        "subscriptionPlan",
        "optInShareData",
        "usageLimitCents",
        "usageAllowanceCents",
        "pricePerSeatCents",
        "priceForOrganizationCents",
        "machineQuota",
        "createdAt",
        "updatedAt",
    ] {
        assert!(org.get(field).is_some(), "missing {field}: {org}");
    }

    let (status, list) = app.get("/v1/organization", Some(&user.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], org["id"]);
    assert_eq!(list[0]["role"], "owner");

    let (_, members) = app.get("/v1/membership", Some(&user.token)).await;
    assert_eq!(members.as_array().unwrap().len(), 1);
    assert_eq!(members[0]["role"], "owner");
    assert_eq!(members[0]["status"], "active");
    assert_eq!(members[0]["user"]["id"], user.id.as_str());
}

#[tokio::test]
async fn create_organization_validation() {
    let app = TestApp::spawn().await;
    let user = app.signup("v@example.com").await;
    let cases = [
        (
            json!({"name": "", "email": "a@b.co", "type": "team"}),
            "name",
        ),
        (
            json!({"name": "  ", "email": "a@b.co", "type": "team"}),
            "name",
        ),
        (
            json!({"name": "n".repeat(201), "email": "a@b.co", "type": "team"}),
            "name",
        ),
        (
            json!({"name": "A", "email": "nope", "type": "team"}),
            "email",
        ),
        (
            json!({"name": "A", "email": "a@b.co", "type": "company"}),
            "type",
        ),
        (json!({"name": "A", "email": "a@b.co"}), "type"),
        (
            json!({"name": 1, "email": "a@b.co", "type": "team"}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let (status, res) = app.post("/v1/organization", Some(&user.token), body).await;
        assert_validation(status, &res, field);
    }
    let (status, res) = app
        .post("/v1/organization", None, json!({"name": "A"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{res}");
    // nothing was created
    assert_eq!(
        app.get("/v1/organization", Some(&user.token)).await.1,
        json!([])
    );
}

#[tokio::test]
async fn organizations_of_others_are_invisible() {
    let app = TestApp::spawn().await;
    let alice = app.signup("alice@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let alices = app.create_org(&alice.token, "Alice Co").await;
    app.create_org(&bob.token, "Bob Co").await;
    let (_, list) = app.get("/v1/organization", Some(&bob.token)).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "Bob Co");

    // naming Alice's organization is 403 for Bob, read or write
    let header = [("x-organization-id", alices["id"].as_str().unwrap())];
    let (status, _, body) = app
        .call_full(
            Method::GET,
            "/v1/membership",
            Some(&bob.token),
            None,
            &header,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, _) = app
        .call_full(
            Method::PUT,
            "/v1/organization",
            Some(&bob.token),
            Some(json!({"optInShareData": "shareData"})),
            &header,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = app.get("/v1/organization", Some(&alice.token)).await;
    assert_eq!(list[0]["optInShareData"], "private");

    // a malformed header is 400
    let (status, _, body) = app
        .call_full(
            Method::GET,
            "/v1/membership",
            Some(&bob.token),
            None,
            &[("x-organization-id", "x")],
        )
        .await;
    assert_validation(status, &body, "x-organization-id");
}

#[tokio::test]
async fn no_organization_is_404_with_a_hint() {
    let app = TestApp::spawn().await;
    let user = app.signup("lonely@example.com").await;
    let (status, body) = app.get("/v1/membership", Some(&user.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("POST /v1/organization"),
        "{body}"
    );
    let (status, _) = app
        .put("/v1/organization", Some(&user.token), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn current_organization_follows_the_header_then_the_oldest_membership() {
    let app = TestApp::spawn().await;
    let user = app.signup("multi@example.com").await;
    let first = app.create_org(&user.token, "First").await;
    let second = app.create_org(&user.token, "Second").await;
    let (_, updated) = app
        .put(
            "/v1/organization",
            Some(&user.token),
            json!({"usageLimitCents": 500}),
        )
        .await;
    assert_eq!(
        updated["id"], first["id"],
        "oldest membership is the default"
    );
    let (status, _, updated) = app
        .call_full(
            Method::PUT,
            "/v1/organization",
            Some(&user.token),
            Some(json!({"usageLimitCents": 700})),
            &[("x-organization-id", second["id"].as_str().unwrap())],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["id"], second["id"]);
    assert_eq!(updated["usageLimitCents"], 700);
}

#[tokio::test]
async fn owner_and_admin_update_settings_members_cannot() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let org = app.create_org(&owner.token, "Acme").await;
    let org_id = org["id"].as_str().unwrap();

    let (status, body) = app
        .put(
            "/v1/organization",
            Some(&owner.token),
            json!({"optInShareData": "shareData", "usageLimitCents": 1234}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["optInShareData"], "shareData");
    assert_eq!(body["usageLimitCents"], 1234);
    assert_ne!(body["updatedAt"], org["updatedAt"]);

    // null clears the limit
    let (_, body) = app
        .put(
            "/v1/organization",
            Some(&owner.token),
            json!({"usageLimitCents": null}),
        )
        .await;
    assert!(body["usageLimitCents"].is_null(), "{body}");
    assert_eq!(body["optInShareData"], "shareData", "absent fields stay");

    let admin = app.signup("admin@example.com").await;
    app.invite(&owner.token, org_id, "admin@example.com", "admin")
        .await;
    assert_eq!(
        app.accept_invite_from_mail("admin@example.com").await.0,
        StatusCode::OK
    );
    let (status, body) = app
        .put(
            "/v1/organization",
            Some(&admin.token),
            json!({"usageLimitCents": 99}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let member = app.signup("member@example.com").await;
    app.invite(&owner.token, org_id, "member@example.com", "member")
        .await;
    assert_eq!(
        app.accept_invite_from_mail("member@example.com").await.0,
        StatusCode::OK
    );
    let (status, body) = app
        .put(
            "/v1/organization",
            Some(&member.token),
            json!({"optInShareData": "private"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error(&body, StatusCode::FORBIDDEN);
    let (_, list) = app.get("/v1/organization", Some(&owner.token)).await;
    assert_eq!(list[0]["optInShareData"], "shareData");
    assert_eq!(list[0]["usageLimitCents"], 99);
}

#[tokio::test]
async fn pricing_fields_are_for_platform_admins_only() {
    let app = TestApp::spawn_with(&[("THESIS_ADMIN_EMAILS", "Root@Example.com, other@x.io")]).await;
    let owner = app.signup("owner@example.com").await;
    let org = app.create_org(&owner.token, "Acme").await;

    for field in [
        "usageAllowanceCents",
        "pricePerSeatCents",
        "priceForOrganizationCents",
        "machineQuota",
    ] {
        let (status, body) = app
            .put(
                "/v1/organization",
                Some(&owner.token),
                json!({field: 5, "optInShareData": "shareData"}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{field}: {body}");
        assert!(body["message"].as_str().unwrap().contains(field), "{body}");
    }
    // nothing changed, not even the allowed field sent alongside
    let (_, list) = app.get("/v1/organization", Some(&owner.token)).await;
    assert_eq!(list[0]["optInShareData"], "private");
    assert!(list[0]["usageAllowanceCents"].is_null());
    assert_eq!(list[0]["updatedAt"], org["updatedAt"]);

    // a platform admin (by THESIS_ADMIN_EMAILS) who is a member may set them
    let root = app.signup("root@example.com").await;
    let (_, me) = app.get("/v1/user", Some(&root.token)).await;
    assert_eq!(me["isAdmin"], true);
    app.invite(
        &owner.token,
        org["id"].as_str().unwrap(),
        "root@example.com",
        "member",
    )
    .await;
    assert_eq!(
        app.accept_invite_from_mail("root@example.com").await.0,
        StatusCode::OK
    );
    let (status, _, body) = app
        .call_full(
            Method::PUT,
            "/v1/organization",
            Some(&root.token),
            Some(
                json!({"usageAllowanceCents": 2500, "pricePerSeatCents": 1000,
                        "priceForOrganizationCents": 5000, "machineQuota": 3}),
            ),
            &[("x-organization-id", org["id"].as_str().unwrap())],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["usageAllowanceCents"], 2500);
    assert_eq!(body["pricePerSeatCents"], 1000);
    assert_eq!(body["priceForOrganizationCents"], 5000);
    assert_eq!(body["machineQuota"], 3);
}

#[tokio::test]
async fn update_organization_validation() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner.token, "Acme").await;
    let cases = [
        (json!({"optInShareData": "public"}), "optInShareData"),
        (json!({"optInShareData": null}), "optInShareData"),
        (json!({"usageLimitCents": -1}), "usageLimitCents"),
        (json!({"usageLimitCents": 1.5}), "usageLimitCents"),
        (json!({"usageLimitCents": "10"}), "usageLimitCents"),
        (
            json!({"usageLimitCents": 1_000_000_000_001i64}),
            "usageLimitCents",
        ),
        (json!({"name": "renamed"}), "name"),
    ];
    for (body, field) in cases {
        let (status, res) = app.put("/v1/organization", Some(&owner.token), body).await;
        assert_validation(status, &res, field);
    }
    let (status, body) = app
        .put("/v1/organization", Some(&owner.token), json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an empty update changes nothing: {body}"
    );
}
