//! The official `openai` Python SDK, unchanged, against the gateway (tests/peers/openai_sdk.py).

use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_openai_python_sdk_works_unchanged() {
    if !python_peer_available("openai") {
        return;
    }
    let mock = thesis_mock_llm::spawn().await;
    let mut toml = String::new();
    for (name, upstream, output_price) in [
        ("mock-model", "mock?in=20&cached=5&tokens=6", 400),
        ("pricey", "mock", 100_000_000),
        ("upstream-429", "mock?status=429", 400),
    ] {
        toml.push_str(&format!(
            "[[models]]\nname = \"{name}\"\nprovider = \"openai-chat\"\nbase_url = \"{mock}\"\nupstream_model = \"{upstream}\"\ninput_cents_per_mtok = 100\noutput_cents_per_mtok = {output_price}\n\n"
        ));
    }
    let app = TestApp::spawn_full(&[], &toml, None).await;
    let user = app.signup("sdk@example.com").await;
    let org = app.create_org(&user.token, "SDK").await;
    let (_, key) = app
        .post(
            "/v1/api-key",
            Some(&user.token),
            json!({"name": "sdk", "organizationId": org["id"]}),
        )
        .await;
    let frugal = app.signup("frugal@example.com").await;
    let frugal_org = app.create_org(&frugal.token, "Frugal").await;
    let (_, limited) = app
        .post(
            "/v1/api-key",
            Some(&frugal.token),
            json!({"name": "sdk", "organizationId": frugal_org["id"]}),
        )
        .await;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/openai_sdk.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .env("BASE_URL", format!("{}/v1", app.base))
        .env("API_KEY", key["key"].as_str().unwrap())
        .env("LIMITED_KEY", limited["key"].as_str().unwrap())
        .env("MODEL", "mock-model")
        .env("PRICEY_MODEL", "pricey")
        .env("UPSTREAM_429_MODEL", "upstream-429")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK script failed:\n{stdout}\n{stderr}"
    );
    for scenario in [
        "create",
        "stream",
        "stream-raw",
        "function-calling",
        "previous-response-id",
        "retrieve",
        "not-found",
        "authentication",
        "upstream-rate-limit",
        "daily-limit",
        "delete",
    ] {
        assert!(
            stdout.lines().any(|l| l == format!("ok {scenario}")),
            "{scenario} did not run:\n{stdout}"
        );
    }
}
