use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/healthz", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    app.get("/v1/user", None).await;
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("route=\"/v1/user\""), "{text}");
}

#[tokio::test]
async fn request_ids_are_set_and_propagated() {
    let app = TestApp::spawn().await;
    let (_, headers, _) = app
        .call_full(Method::GET, "/healthz", None, None, &[])
        .await;
    let id = headers
        .get("x-request-id")
        .expect("x-request-id")
        .to_str()
        .unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let (_, headers, _) = app
        .call_full(
            Method::GET,
            "/healthz",
            None,
            None,
            &[("x-request-id", "my-trace-1")],
        )
        .await;
    assert_eq!(headers.get("x-request-id").unwrap(), "my-trace-1");
}

#[tokio::test]
async fn errors_are_json_for_unknown_routes_methods_media_types_and_bodies() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/v1/no-such-thing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, StatusCode::NOT_FOUND);

    let (status, body) = app
        .call(Method::PATCH, "/v1/organization", None, None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, StatusCode::METHOD_NOT_ALLOWED);

    let res = app
        .client
        .post(app.url("/v1/newsletter-subscriber"))
        .header("content-type", "text/plain")
        .body("{\"email\":\"a@b.co\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error(
        &res.json::<Value>().await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    );

    for raw in ["{", "{\"email\":", "[]", "null", "\"x\""] {
        let res = app
            .client
            .post(app.url("/v1/newsletter-subscriber"))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{raw}");
        assert_error(&res.json::<Value>().await.unwrap(), StatusCode::BAD_REQUEST);
    }

    // past the 1 MiB default body limit
    let res = app
        .client
        .post(app.url("/v1/newsletter-subscriber"))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"email\":\"{}@b.co\"}}",
            "a".repeat(2 * 1024 * 1024)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(
        &res.json::<Value>().await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
    );
}

#[tokio::test]
async fn unimplemented_reference_routes_answer_501_naming_themselves() {
    let app = TestApp::spawn().await;
    let user = app.signup("u@example.com").await;
    for (method, path) in [
        (Method::GET, "/v1/machine"),
        (Method::POST, "/v1/dataset/upload"),
        (Method::GET, "/v1/admin/machines"),
        (Method::DELETE, "/v1/dataset/{id}"),
        (Method::GET, "/v1/release/tauri-manifest"),
    ] {
        let concrete = path.replace("{id}", "abc");
        let (status, body) = app
            .call(method.clone(), &concrete, Some(&user.token), None)
            .await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{method} {path}");
        let message = assert_error(&body, StatusCode::NOT_IMPLEMENTED);
        assert!(
            message
                .as_str()
                .unwrap()
                .contains(&format!("{method} {path}")),
            "{message}"
        );
    }
}

fn reference_routes() -> Vec<(String, String)> {
    include_str!("../fixtures/endpoints.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (m, p) = l.trim().split_once(' ').unwrap();
            (m.to_lowercase(), format!("/v1{p}"))
        })
        .collect()
}

#[tokio::test]
async fn openapi_lists_every_reference_route_and_the_extensions() {
    let app = TestApp::spawn().await;
    let (status, spec) = app.get("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        spec["openapi"]
    );
    let paths = spec["paths"].as_object().unwrap();
    let reference = reference_routes();
    assert_eq!(reference.len(), 97);
    let mut missing = vec![];
    for (method, path) in &reference {
        if paths.get(path).and_then(|p| p.get(method)).is_none() {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "missing from /openapi.json: {missing:?}"
    );
    for (method, path) in [
        ("post", "/v1/auth/signup"),
        ("post", "/v1/auth/login"),
        ("post", "/v1/auth/logout"),
        ("post", "/v1/auth/password-reset/confirm"),
        ("post", "/v1/api-key"),
        ("get", "/v1/api-key"),
        ("delete", "/v1/api-key/{id}"),
        ("get", "/v1/responses/{id}"),
        ("delete", "/v1/responses/{id}"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path}"
        );
    }
    // every documented operation is routed: nothing documented answers 404/405
    let user = app.signup("walker@example.com").await;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace(['{', '}'], "");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, _) = app.call(m, &concrete, Some(&user.token), None).await;
            assert!(
                status != StatusCode::NOT_FOUND || body_is_resource_404(path),
                "{method} {path} is documented but not routed"
            );
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        }
    }
}

/// Routes whose 404 means "no such resource" rather than "no such route".
fn body_is_resource_404(path: &str) -> bool {
    path.contains('{') || path == "/v1/membership" || path == "/v1/organization"
}

#[tokio::test]
async fn openapi_matches_the_committed_snapshot() {
    let app = TestApp::spawn().await;
    let text = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let spec: Value = serde_json::from_str(&text).unwrap();
    let pretty = serde_json::to_string_pretty(&spec).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == pretty,
        "docs/openapi.json is out of date: run `UPDATE_SNAPSHOTS=1 cargo test openapi_matches` and review the diff"
    );
}

#[tokio::test]
async fn docs_page_renders_the_spec() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("Thesis API"), "the page embeds the spec");
}

/// Every implemented operation that needs a token, from the OpenAPI document.
async fn protected_operations(app: &TestApp) -> Vec<(Method, String)> {
    let (_, spec) = app.get("/openapi.json", None).await;
    let mut ops = vec![];
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let public = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            let stub = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .eq(["501"].iter());
            if public || stub || !path.starts_with("/v1/") {
                continue;
            }
            let concrete = path
                .replace("{membershipId}", &uuid::Uuid::now_v7().to_string())
                .replace("{sessionId}", "sess_x")
                .replace("{trialId}", &uuid::Uuid::now_v7().to_string())
                .replace("{id}", &uuid::Uuid::now_v7().to_string());
            ops.push((
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                concrete,
            ));
        }
    }
    assert!(ops.len() >= 10, "{ops:?}");
    ops
}

#[tokio::test]
async fn every_protected_route_refuses_missing_and_revoked_tokens() {
    let app = TestApp::spawn().await;
    let user = app.signup("tokens@example.com").await;
    app.create_org(&user.token, "Org").await;
    let (_, key) = app
        .post("/v1/api-key", Some(&user.token), json!({"name": "k"}))
        .await;
    let key_id = key["id"].as_str().unwrap();
    let key = key["key"].as_str().unwrap().to_string();
    assert_eq!(
        app.delete(&format!("/v1/api-key/{key_id}"), Some(&user.token))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let session = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": "tokens@example.com", "password": "correct-horse"}),
        )
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.call(Method::POST, "/v1/auth/logout", Some(&session), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );

    for (method, path) in protected_operations(&app).await {
        for token in [None, Some(key.as_str()), Some(session.as_str())] {
            let (status, body) = app
                .call(method.clone(), &path, token, Some(json!({})))
                .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}: {body}"
            );
            if path.starts_with("/v1/responses") {
                assert_eq!(
                    body["error"]["code"], "invalid_api_key",
                    "OpenAI-shaped: {body}"
                );
            } else {
                assert_error(&body, StatusCode::UNAUTHORIZED);
            }
        }
    }
}
