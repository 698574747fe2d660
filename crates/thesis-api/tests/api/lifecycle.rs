//! The binary as an operator runs it: logs, signals, failures.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

/// Starts the binary on a free port with a fresh data dir; returns it, its port, and its stdout
/// lines as they come.
fn start_binary(
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> (ChildGuard, u16, std::sync::mpsc::Receiver<String>) {
    let port = free_port();
    let config = dir.join("thesis.toml");
    std::fs::write(&config, "").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_thesis-api"));
    cmd.env_clear()
        .env("THESIS_CONFIG", &config)
        .env("THESIS_DATA_DIR", dir.join("data"))
        .env("THESIS_BIND", format!("127.0.0.1:{port}"))
        .env("THESIS_CRON", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start thesis-api");
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    (ChildGuard(child), port, rx)
}

fn wait_for_line(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = vec![];
    while std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            if line.contains(needle) {
                return line;
            }
            seen.push(line);
        }
    }
    panic!("no log line with {needle:?}; saw:\n{}", seen.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_and_the_listening_line() {
    let dir = tempfile::tempdir().unwrap();
    let (_child, port, rx) = start_binary(dir.path(), &[("THESIS_LOG_FORMAT", "json")]);
    let line = wait_for_line(&rx, "listening on");
    let v: Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(
        v["message"],
        format!("listening on http://127.0.0.1:{port}")
    );
    assert_eq!(v["level"], "INFO");

    let res = reqwest::get(format!("http://127.0.0.1:{port}/v1/user"))
        .await
        .unwrap();
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let line = wait_for_line(&rx, &request_id);
    let v: Value = serde_json::from_str(&line).expect("request log is JSON");
    assert_eq!(v["status"], 401, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port, rx) = start_binary(dir.path(), &[]);
    wait_for_line(&rx, "listening on");

    // a request whose body is still on its way when SIGTERM arrives
    let body = br#"{"email":"slow@example.com"}"#;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /v1/newsletter-subscriber HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..10]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let pid = child.0.id();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    wait_for_line(&rx, "shutdown signal received");
    // new connections are refused while the old one finishes
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still accepting"
    );

    stream.write_all(&body[10..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let status = child.0.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn a_500_carries_only_a_request_id() {
    let app = TestApp::spawn().await;
    let user = app.signup("victim@example.com").await;
    // pull the database out from under the server
    app.state.db.clone().close().await.unwrap();
    let (status, headers, body) = app
        .call_full(
            reqwest::Method::GET,
            "/v1/user",
            Some(&user.token),
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let message = assert_error(&body, StatusCode::INTERNAL_SERVER_ERROR);
    let request_id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(message, format!("internal error (request id {request_id})"));
    let text = body.to_string().to_lowercase();
    for leak in ["sql", "pool", "database", "sqlx", "connection"] {
        assert!(!text.contains(leak), "the cause leaked: {body}");
    }
    let (status, _) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}
