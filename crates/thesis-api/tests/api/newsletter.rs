use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn subscribe_once_then_409_in_any_case() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/v1/newsletter-subscriber",
            None,
            json!({"email": "Reader@Example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["email"], "Reader@Example.com");
    assert!(body["id"].is_string());
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));

    for email in ["reader@example.com", " READER@EXAMPLE.COM "] {
        let (status, body) = app
            .post("/v1/newsletter-subscriber", None, json!({"email": email}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{email}: {body}");
        assert_error(&body, StatusCode::CONFLICT);
    }
}

#[tokio::test]
async fn subscribe_validation() {
    let app = TestApp::spawn().await;
    for body in [
        json!({"email": "not-an-email"}),
        json!({}),
        json!({"email": null}),
        json!({"email": ["a@b.co"]}),
    ] {
        let (status, res) = app.post("/v1/newsletter-subscriber", None, body).await;
        assert_validation(status, &res, "email");
    }
}
