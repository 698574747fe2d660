use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

fn png_data_url(bytes: usize) -> String {
    let mut data = vec![0u8; bytes];
    data[..8].copy_from_slice(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]);
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(data)
    )
}

fn feedback(extra: serde_json::Value) -> serde_json::Value {
    let mut body = json!({
        "name": "Ada",
        "email": "ada@example.com",
        "feedbackType": "bug",
        "message": "The app crashes when I open settings.",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn anonymous_feedback_with_screenshot_is_kept() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/v1/feedback",
            None,
            feedback(json!({"metadata": {
                "appVersion": "1.2.3", "platform": "darwin", "userAgent": "ua",
                "screenshot": png_data_url(2048), "screenshotTimestamp": "2026-01-15T10:30:00Z",
                "extra": {"nested": true}
            }})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["userId"].is_null());
    assert_eq!(body["feedbackType"], "bug");
    assert_eq!(body["metadata"]["appVersion"], "1.2.3");
    assert_eq!(body["metadata"]["extra"]["nested"], true);
    assert!(
        body["metadata"].get("screenshot").is_none(),
        "screenshot data is not echoed"
    );
    assert_eq!(body["screenshotContentType"], "image/png");
    assert_eq!(body["screenshotBytes"], 2048);

    // what is kept: the decoded image beside the metadata, which no longer holds the data URL
    use sea_orm::EntityTrait;
    let id = uuid::Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
    let row = thesis_db::entities::feedback::Entity::find_by_id(id)
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("the feedback row exists");
    let image = row.screenshot.expect("the screenshot is kept");
    assert_eq!(image.len(), 2048);
    assert_eq!(
        &image[..8],
        &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]
    );
    assert!(image[8..].iter().all(|b| *b == 0), "kept byte for byte");
    assert_eq!(row.screenshot_content_type.as_deref(), Some("image/png"));
    let metadata = row.metadata.unwrap();
    assert_eq!(metadata["platform"], "darwin");
    assert_eq!(metadata["screenshotTimestamp"], "2026-01-15T10:30:00Z");
    assert!(metadata.get("screenshot").is_none());
    assert_eq!(row.message, "The app crashes when I open settings.");
}

#[tokio::test]
async fn feedback_with_a_token_is_attached_to_the_user() {
    let app = TestApp::spawn().await;
    let user = app.signup("fan@example.com").await;
    let (status, body) = app
        .post(
            "/v1/feedback",
            Some(&user.token),
            feedback(json!({"feedbackType": "feature"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["userId"], user.id.as_str());
    assert!(body["screenshotBytes"].is_null());
    // a bad token is refused rather than ignored
    let (status, _) = app
        .post("/v1/feedback", Some("ths_bogus"), feedback(json!({})))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn feedback_validation() {
    let app = TestApp::spawn().await;
    let cases = [
        (feedback(json!({"message": "too short"})), "message"),
        (feedback(json!({"feedbackType": "rant"})), "feedbackType"),
        (feedback(json!({"email": "nope"})), "email"),
        (feedback(json!({"name": ""})), "name"),
        (feedback(json!({"metadata": "not an object"})), "metadata"),
        (
            feedback(json!({"metadata": {"screenshot": "http://example.com/x.png"}})),
            "metadata.screenshot",
        ),
        (
            feedback(json!({"metadata": {"screenshot": "data:image/png;base64,!!!"}})),
            "metadata.screenshot",
        ),
        (
            feedback(json!({"metadata": {"screenshot": "data:text/html;base64,PGgxPg=="}})),
            "metadata.screenshot",
        ),
        (
            feedback(json!({"metadata": {"screenshot": 42}})),
            "metadata.screenshot",
        ),
    ];
    for (body, field) in cases {
        let (status, res) = app.post("/v1/feedback", None, body).await;
        assert_validation(status, &res, field);
    }
}

#[tokio::test]
async fn screenshots_up_to_10_mib_are_kept_larger_are_413() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/v1/feedback",
            None,
            feedback(json!({"metadata": {"screenshot": png_data_url(10 * 1024 * 1024)}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["screenshotBytes"], 10 * 1024 * 1024);

    let (status, body) = app
        .post(
            "/v1/feedback",
            None,
            feedback(json!({"metadata": {"screenshot": png_data_url(10 * 1024 * 1024 + 1)}})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_error(&body, StatusCode::PAYLOAD_TOO_LARGE);

    let (status, body) = app
        .post(
            "/v1/feedback",
            None,
            feedback(json!({"metadata": {"screenshot": png_data_url(13 * 1024 * 1024)}})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_error(&body, StatusCode::PAYLOAD_TOO_LARGE);
}
