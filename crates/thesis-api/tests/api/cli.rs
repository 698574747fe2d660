use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

fn thesis(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_thesis-api"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(app.env.iter())
        .output()
        .expect("run thesis-api");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_and_api_key_create() {
    let app = TestApp::spawn().await;
    let (ok, out, err) = thesis(
        &app,
        &[
            "user",
            "create",
            "--email",
            "Root@Example.com",
            "--password",
            "root-password",
            "--name",
            "Root",
            "--admin",
        ],
    );
    assert!(ok, "{err}");
    let user: Value = serde_json::from_str(&out).expect(&out);
    assert_eq!(user["email"], "Root@Example.com");
    assert_eq!(user["isAdmin"], true);
    assert_eq!(user["name"], "Root");

    // the user logs in over HTTP
    let (status, login) = app
        .post(
            "/v1/auth/login",
            None,
            serde_json::json!({"email": "root@example.com", "password": "root-password"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let org = app
        .create_org(login["token"].as_str().unwrap(), "Root Org")
        .await;

    let (ok, out, err) = thesis(
        &app,
        &[
            "api-key",
            "create",
            "--email",
            "root@example.com",
            "--org",
            org["id"].as_str().unwrap(),
            "--name",
            "ops",
        ],
    );
    assert!(ok, "{err}");
    let key: Value = serde_json::from_str(&out).expect(&out);
    assert_eq!(key["name"], "ops");
    assert_eq!(key["organizationId"], org["id"]);
    let (status, me) = app.get("/v1/user", key["key"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["isAdmin"], true);

    // failures exit non-zero with a message
    let (ok, _, err) = thesis(&app, &["api-key", "create", "--email", "ghost@example.com"]);
    assert!(!ok);
    assert!(err.contains("ghost@example.com"), "{err}");
    let (ok, _, err) = thesis(
        &app,
        &[
            "user",
            "create",
            "--email",
            "root@example.com",
            "--password",
            "root-password",
        ],
    );
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
    let (ok, _, err) = thesis(
        &app,
        &[
            "user",
            "create",
            "--email",
            "bad",
            "--password",
            "root-password",
        ],
    );
    assert!(!ok);
    assert!(err.contains("e-mail"), "{err}");
    let outsider = app.signup("outsider@example.com").await;
    let (ok, _, err) = thesis(
        &app,
        &[
            "api-key",
            "create",
            "--email",
            &outsider.email,
            "--org",
            org["id"].as_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(err.contains("not a member"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_idempotent_and_unknown_schemes_are_refused() {
    let app = TestApp::spawn().await;
    let (ok, _, err) = thesis(&app, &["migrate"]);
    assert!(ok, "{err}");
    let (ok, _, err) = thesis(&app, &["migrate"]);
    assert!(ok, "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_thesis-api"))
        .arg("migrate")
        .env("THESIS_CONFIG", app.env["THESIS_CONFIG"].as_str())
        .env("THESIS_DATABASE_URL", "mysql://localhost/x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("THESIS_DATABASE_URL"));
}

#[tokio::test]
async fn openapi_subcommand_prints_the_document() {
    let out = Command::new(env!("CARGO_BIN_EXE_thesis-api"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(out.status.success());
    let spec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(spec["paths"]["/v1/organization"]["post"].is_object());
}
