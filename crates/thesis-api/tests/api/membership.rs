use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn invite_mails_a_link_and_accepting_activates_and_links() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let org = app.create_org(&owner.token, "Acme").await;
    let org_id = org["id"].as_str().unwrap();
    let invitee = app.signup("invitee@example.com").await;

    let m = app
        .invite(&owner.token, org_id, "Invitee@Example.com", "admin")
        .await;
    assert_eq!(m["status"], "pending");
    assert_eq!(m["role"], "admin");
    assert_eq!(m["organizationId"], org["id"]);
    assert!(m["user"].is_null());
    assert!(m["userId"].is_null());
    for field in [
        "id",
        "organizationId",
        "userId",
        "email",
        "role",
        "status",
        "createdAt",
        "updatedAt",
        "user",
    ] {
        assert!(m.get(field).is_some(), "missing {field}: {m}");
    }

    // pending is not membership yet
    let (status, _, _) = app
        .call_full(
            Method::GET,
            "/v1/membership",
            Some(&invitee.token),
            None,
            &[("x-organization-id", org_id)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let mail = app
        .wait_for_mail("Invitee@Example.com", "accept-invite-via-email")
        .await;
    let link = extract_link(&mail, "/accept-invite-via-email");
    assert!(
        link.starts_with(&format!(
            "{}/v1/public/organization-member/{}/",
            app.base,
            m["id"].as_str().unwrap()
        )),
        "{link}"
    );

    let (status, body) = app.accept_invite_from_mail("Invitee@Example.com").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"accepted": true, "organizationId": org_id, "membershipId": m["id"]})
    );
    // accepting twice is harmless
    assert_eq!(
        app.accept_invite_from_mail("Invitee@Example.com").await.0,
        StatusCode::OK
    );

    let (_, members) = app.get("/v1/membership", Some(&owner.token)).await;
    let accepted = members
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == m["id"])
        .unwrap();
    assert_eq!(accepted["status"], "active");
    assert_eq!(accepted["user"]["id"], invitee.id.as_str());
    assert_eq!(accepted["user"]["email"], "invitee@example.com");

    let (status, orgs) = app.get("/v1/organization", Some(&invitee.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(orgs[0]["role"], "admin");
}

#[tokio::test]
async fn accepted_invite_is_linked_when_the_invitee_signs_up_later() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let org = app.create_org(&owner.token, "Acme").await;
    app.invite(
        &owner.token,
        org["id"].as_str().unwrap(),
        "later@example.com",
        "member",
    )
    .await;
    assert_eq!(
        app.accept_invite_from_mail("later@example.com").await.0,
        StatusCode::OK
    );
    let (_, members) = app.get("/v1/membership", Some(&owner.token)).await;
    let pending_user = members
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["email"] == "later@example.com")
        .unwrap();
    assert_eq!(pending_user["status"], "active");
    assert!(pending_user["user"].is_null());

    let later = app.signup("LATER@example.com").await;
    let (_, orgs) = app.get("/v1/organization", Some(&later.token)).await;
    assert_eq!(orgs[0]["id"], org["id"]);
    assert_eq!(orgs[0]["role"], "member");
}

#[tokio::test]
async fn accepting_needs_the_right_token() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let org = app.create_org(&owner.token, "Acme").await;
    let m = app
        .invite(
            &owner.token,
            org["id"].as_str().unwrap(),
            "x@example.com",
            "member",
        )
        .await;
    let base = format!(
        "/v1/public/organization-member/{}/accept-invite-via-email",
        m["id"].as_str().unwrap()
    );

    for path in [
        base.clone(),
        format!("{base}?token="),
        format!("{base}?token=wrong"),
    ] {
        let (status, body) = app.get(&path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_error(&body, StatusCode::BAD_REQUEST);
    }
    // the token of another invitation does not fit this one
    app.invite(
        &owner.token,
        org["id"].as_str().unwrap(),
        "y@example.com",
        "member",
    )
    .await;
    let other_mail = app.wait_for_mail("y@example.com", "accept-invite").await;
    let other_link = extract_link(&other_mail, "accept-invite");
    let other_token = other_link.split("token=").nth(1).unwrap();
    let (status, _) = app.get(&format!("{base}?token={other_token}"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _) = app
        .get(
            &format!(
                "/v1/public/organization-member/{}/accept-invite-via-email?token=abc",
                uuid::Uuid::now_v7()
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .get(
            "/v1/public/organization-member/not-a-uuid/accept-invite-via-email?token=abc",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (_, members) = app.get("/v1/membership", Some(&owner.token)).await;
    let still = members
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == m["id"])
        .unwrap();
    assert_eq!(still["status"], "pending", "nothing changed");
}

#[tokio::test]
async fn invite_roles_and_validation() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let org = app.create_org(&owner.token, "Acme").await;
    let org_id = org["id"].as_str().unwrap();
    let admin = app.signup("admin@example.com").await;
    let member = app.signup("member@example.com").await;
    app.invite(&owner.token, org_id, "admin@example.com", "admin")
        .await;
    app.invite(&owner.token, org_id, "member@example.com", "member")
        .await;
    app.accept_invite_from_mail("admin@example.com").await;
    app.accept_invite_from_mail("member@example.com").await;

    // members cannot invite
    let (status, body) = app
        .post(
            "/v1/membership",
            Some(&member.token),
            json!({"organizationId": org_id, "email": "z@example.com", "role": "member"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // admins invite members and admins, not owners
    let (status, _) = app
        .post(
            "/v1/membership",
            Some(&admin.token),
            json!({"organizationId": org_id, "email": "a2@example.com", "role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = app
        .post(
            "/v1/membership",
            Some(&admin.token),
            json!({"organizationId": org_id, "email": "o2@example.com", "role": "owner"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // owners invite owners
    let (status, _) = app
        .post(
            "/v1/membership",
            Some(&owner.token),
            json!({"organizationId": org_id, "email": "o2@example.com", "role": "owner"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // an e-mail with a membership already (pending or active, any case) is 409
    for email in ["O2@example.com", "MEMBER@example.com", "owner@example.com"] {
        let (status, body) = app
            .post(
                "/v1/membership",
                Some(&owner.token),
                json!({"organizationId": org_id, "email": email, "role": "member"}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{email}: {body}");
    }

    let cases = [
        (
            json!({"organizationId": org_id, "email": "bad", "role": "member"}),
            "email",
        ),
        (
            json!({"organizationId": org_id, "email": "ok@example.com", "role": "boss"}),
            "role",
        ),
        (
            json!({"organizationId": "nope", "email": "ok@example.com", "role": "member"}),
            "organizationId",
        ),
        (
            json!({"email": "ok@example.com", "role": "member"}),
            "organizationId",
        ),
    ];
    for (body, field) in cases {
        let (status, res) = app.post("/v1/membership", Some(&owner.token), body).await;
        assert_validation(status, &res, field);
    }
}

#[tokio::test]
async fn invite_into_another_organization_is_forbidden() {
    let app = TestApp::spawn().await;
    let alice = app.signup("alice@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let alices = app.create_org(&alice.token, "Alice Co").await;
    app.create_org(&bob.token, "Bob Co").await;
    let (status, body) = app
        .post(
            "/v1/membership",
            Some(&bob.token),
            json!({"organizationId": alices["id"], "email": "spy@example.com", "role": "owner"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, members) = app.get("/v1/membership", Some(&alice.token)).await;
    assert_eq!(members.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn list_memberships_is_for_members_of_that_organization() {
    let app = TestApp::spawn().await;
    let alice = app.signup("alice@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let alices = app.create_org(&alice.token, "Alice Co").await;
    let bobs = app.create_org(&bob.token, "Bob Co").await;
    app.invite(
        &alice.token,
        alices["id"].as_str().unwrap(),
        "carol@example.com",
        "member",
    )
    .await;
    let (status, list) = app.get("/v1/membership", Some(&alice.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|m| m["organizationId"] == alices["id"])
    );
    let (_, list) = app.get("/v1/membership", Some(&bob.token)).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["organizationId"], bobs["id"]);
    assert_eq!(
        app.get("/v1/membership", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn removal_rules() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let org = app.create_org(&owner.token, "Acme").await;
    let org_id = org["id"].as_str().unwrap();
    let admin = app.signup("admin@example.com").await;
    let m1 = app.signup("m1@example.com").await;
    app.signup("m2@example.com").await;
    let admin_m = app
        .invite(&owner.token, org_id, "admin@example.com", "admin")
        .await;
    let m1_m = app
        .invite(&owner.token, org_id, "m1@example.com", "member")
        .await;
    let m2_m = app
        .invite(&owner.token, org_id, "m2@example.com", "member")
        .await;
    for e in ["admin@example.com", "m1@example.com", "m2@example.com"] {
        assert_eq!(app.accept_invite_from_mail(e).await.0, StatusCode::OK);
    }
    let (_, members) = app.get("/v1/membership", Some(&owner.token)).await;
    let owner_m = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "owner")
        .unwrap()
        .clone();
    let path = |m: &serde_json::Value| format!("/v1/membership/{}", m["id"].as_str().unwrap());

    // a member cannot remove another member
    let (status, _) = app.delete(&path(&m2_m), Some(&m1.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // an admin cannot remove the owner
    let (status, _) = app.delete(&path(&owner_m), Some(&admin.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // the last owner cannot remove themself
    let (status, body) = app.delete(&path(&owner_m), Some(&owner.token)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap().contains("last owner"));
    // a member may leave
    let (status, body) = app.delete(&path(&m1_m), Some(&m1.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], m1_m["id"]);
    assert_eq!(
        app.get("/v1/organization", Some(&m1.token)).await.1,
        json!([])
    );
    // an admin removes a member
    let (status, _) = app.delete(&path(&m2_m), Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.delete(&path(&m2_m), Some(&admin.token)).await.0,
        StatusCode::NOT_FOUND
    );
    // the owner removes the admin
    assert_eq!(
        app.delete(&path(&admin_m), Some(&owner.token)).await.0,
        StatusCode::OK
    );
    let (_, members) = app.get("/v1/membership", Some(&owner.token)).await;
    assert_eq!(members.as_array().unwrap().len(), 1);

    let (status, body) = app
        .delete("/v1/membership/not-a-uuid", Some(&owner.token))
        .await;
    assert_validation(status, &body, "membershipId");
}

#[tokio::test]
async fn another_organizations_membership_is_404() {
    let app = TestApp::spawn().await;
    let alice = app.signup("alice@example.com").await;
    let bob = app.signup("bob@example.com").await;
    app.create_org(&alice.token, "Alice Co").await;
    app.create_org(&bob.token, "Bob Co").await;
    let (_, alice_members) = app.get("/v1/membership", Some(&alice.token)).await;
    let target = format!(
        "/v1/membership/{}",
        alice_members[0]["id"].as_str().unwrap()
    );
    let (status, body) = app.delete(&target, Some(&bob.token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_error(&body, StatusCode::NOT_FOUND);
    let (_, still) = app.get("/v1/membership", Some(&alice.token)).await;
    assert_eq!(still.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_second_owner_can_be_removed_by_an_owner() {
    let app = TestApp::spawn().await;
    let owner = app.signup("owner@example.com").await;
    let org = app.create_org(&owner.token, "Acme").await;
    let second = app.signup("second@example.com").await;
    let m = app
        .invite(
            &owner.token,
            org["id"].as_str().unwrap(),
            "second@example.com",
            "owner",
        )
        .await;
    app.accept_invite_from_mail("second@example.com").await;
    let (status, _) = app
        .delete(
            &format!("/v1/membership/{}", m["id"].as_str().unwrap()),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app.get("/v1/organization", Some(&second.token)).await.1,
        json!([])
    );
}
