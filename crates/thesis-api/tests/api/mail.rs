//! Mail through a real SMTP server (aiosmtpd, a Python package) when `THESIS_SMTP_URL` is set.

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_mail_goes_through_smtp() {
    if !python_peer_available("aiosmtpd") {
        return;
    }
    let maildir = tempfile::tempdir().unwrap();
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir(maildir.path().join(sub)).unwrap();
    }
    let port = free_port();
    let _smtp = ChildGuard(
        Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args([
                "-c",
                "aiosmtpd.handlers.Mailbox",
                maildir.path().to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd"),
    );
    wait_for_port(port).await;

    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let app = TestApp::spawn_with(&[
        ("THESIS_SMTP_URL", smtp_url.as_str()),
        ("THESIS_MAIL_FROM", "Thesis Test <noreply@thesis.test>"),
    ])
    .await;
    app.signup("smtp-user@example.com").await;
    let (status, _) = app
        .post(
            "/v1/user/password-reset",
            None,
            json!({"email": "smtp-user@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let mut found = None;
    for _ in 0..200 {
        if let Ok(entries) = std::fs::read_dir(maildir.path().join("new")) {
            for e in entries.flatten() {
                let text = decode_mail(&std::fs::read_to_string(e.path()).unwrap());
                if text.contains("Reset token:") {
                    found = Some(text);
                }
            }
        }
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mail = found.expect("the SMTP server received the reset mail");
    assert!(mail.contains("To: smtp-user@example.com"), "{mail}");
    assert!(
        mail.contains("From: \"Thesis Test\" <noreply@thesis.test>")
            || mail.contains("From: Thesis Test <noreply@thesis.test>"),
        "{mail}"
    );
    assert!(
        app.mails().is_empty(),
        "nothing goes to the outbox when SMTP is set"
    );

    // the token from the SMTP mail works
    let token = extract_token(&mail, "Reset token:");
    let (status, body) = app
        .post(
            "/v1/auth/password-reset/confirm",
            None,
            json!({"token": token, "password": "via-smtp-123"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
