use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_signups_with_one_email_make_one_user() {
    let app = TestApp::spawn().await;
    for round in 0..5 {
        let email = format!("race{round}@example.com");
        let upper = email.to_uppercase();
        let a = app.post(
            "/v1/auth/signup",
            None,
            json!({"email": email, "password": "correct-horse", "name": "A"}),
        );
        let b = app.post(
            "/v1/auth/signup",
            None,
            json!({"email": upper, "password": "correct-horse", "name": "B"}),
        );
        let ((sa, ba), (sb, bb)) = tokio::join!(a, b);
        let mut statuses = [sa, sb];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::CREATED, StatusCode::CONFLICT],
            "{ba} / {bb}"
        );
        let conflict = if sa == StatusCode::CONFLICT { ba } else { bb };
        assert_error(&conflict, StatusCode::CONFLICT);
        // and the database holds one account for the address, whichever spelling won
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        let users = thesis_db::entities::user::Entity::find()
            .filter(thesis_db::entities::user::Column::EmailNormalized.eq(email.as_str()))
            .count(&app.state.db)
            .await
            .unwrap();
        assert_eq!(users, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_removal_of_the_last_two_owners_leaves_one() {
    let app = TestApp::spawn().await;
    for round in 0..5 {
        let a = app.signup(&format!("a{round}@example.com")).await;
        let b = app.signup(&format!("b{round}@example.com")).await;
        let org = app.create_org(&a.token, "Shared").await;
        let org_id = org["id"].as_str().unwrap();
        app.invite(&a.token, org_id, &b.email, "owner").await;
        assert_eq!(
            app.accept_invite_from_mail(&b.email).await.0,
            StatusCode::OK
        );
        let (_, members) = app.get("/v1/membership", Some(&a.token)).await;
        let id_of = |user: &TestUser| {
            members
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["userId"] == user.id.as_str())
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let (a_m, b_m) = (id_of(&a), id_of(&b));

        // each owner removes themself at the same moment
        let (pa, pb) = (
            format!("/v1/membership/{a_m}"),
            format!("/v1/membership/{b_m}"),
        );
        let ra = app.delete(&pa, Some(&a.token));
        let rb = app.delete(&pb, Some(&b.token));
        let ((sa, _), (sb, _)) = tokio::join!(ra, rb);
        let mut statuses = [sa, sb];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "round {round}"
        );
        let remaining = if sa == StatusCode::OK { &b } else { &a };
        let (_, orgs) = app.get("/v1/organization", Some(&remaining.token)).await;
        assert_eq!(orgs[0]["role"], "owner");

        // and again with each removing the other: one must stay
        let c = app.signup(&format!("c{round}@example.com")).await;
        let org2 = app.create_org(&c.token, "Other").await;
        let d = app.signup(&format!("d{round}@example.com")).await;
        app.invite(&c.token, org2["id"].as_str().unwrap(), &d.email, "owner")
            .await;
        app.accept_invite_from_mail(&d.email).await;
        let header = [("x-organization-id", org2["id"].as_str().unwrap())];
        let (_, _, members) = app
            .call_full(
                reqwest::Method::GET,
                "/v1/membership",
                Some(&c.token),
                None,
                &header,
            )
            .await;
        let find = |uid: &str| {
            members
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["userId"] == uid)
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let (c_m, d_m) = (find(&c.id), find(&d.id));
        let (pd, pc) = (
            format!("/v1/membership/{d_m}"),
            format!("/v1/membership/{c_m}"),
        );
        let rc = app.call_full(reqwest::Method::DELETE, &pd, Some(&c.token), None, &header);
        let rd = app.call_full(reqwest::Method::DELETE, &pc, Some(&d.token), None, &header);
        let ((sc, _, bc), (sd, _, bd)) = tokio::join!(rc, rd);
        let ok = [sc, sd].iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(ok, 1, "exactly one removal succeeds: {sc} {bc} / {sd} {bd}");
        let (_, orgs_c) = app.get("/v1/organization", Some(&c.token)).await;
        let (_, orgs_d) = app.get("/v1/organization", Some(&d.token)).await;
        let owners = orgs_c
            .as_array()
            .unwrap()
            .iter()
            .chain(orgs_d.as_array().unwrap())
            .filter(|o| o["id"] == org2["id"] && o["role"] == "owner")
            .count();
        assert_eq!(owners, 1, "one owner remains");
    }
}
