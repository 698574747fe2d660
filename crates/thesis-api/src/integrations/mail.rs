//! Outgoing mail: an `.eml` outbox directory by default, SMTP when `THESIS_SMTP_URL` is set.
//!
//! Delivery runs in the background (so a request never waits on a mail server, and response time
//! does not reveal whether an address exists), is retried with backoff, and shutdown waits for it.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, Message, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio_util::task::TaskTracker;

use crate::config::Settings;

/// A plain-text mail to one recipient.
#[derive(Clone)]
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

// The body may hold a one-time token: never print it.
impl std::fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid mail: {0}")]
    Build(String),
    #[error("writing to the outbox: {0}")]
    Outbox(#[from] std::io::Error),
    #[error("SMTP: {0}")]
    Smtp(String),
    /// The server refused the mail for good (5xx): retrying cannot help.
    #[error("SMTP (permanent): {0}")]
    SmtpPermanent(String),
}

enum Transport {
    Outbox(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> Result<Self, MailError> {
        let from: Mailbox = settings
            .mail_from
            .parse()
            .map_err(|e| MailError::Build(format!("THESIS_MAIL_FROM: {e}")))?;
        let transport = match &settings.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| MailError::Smtp(format!("THESIS_SMTP_URL is not usable: {e}")))?
                    .timeout(Some(Duration::from_secs(20)))
                    .build(),
            ),
            None => Transport::Outbox(settings.data_dir.join("outbox")),
        };
        Ok(Mailer { from, transport })
    }

    pub fn outbox_dir(&self) -> Option<&PathBuf> {
        match &self.transport {
            Transport::Outbox(dir) => Some(dir),
            Transport::Smtp(_) => None,
        }
    }

    fn build(&self, mail: &OutgoingMail) -> Result<Message, MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| MailError::Build(format!("recipient: {e}")))?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| MailError::Build(e.to_string()))
    }

    /// Sends one mail now.
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = self.build(mail)?;
        match &self.transport {
            Transport::Outbox(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                let name = format!(
                    "{}-{}.eml",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
                    uuid::Uuid::now_v7()
                );
                // write then rename, so a reader never sees half a mail
                let tmp = dir.join(format!(".{name}.tmp"));
                tokio::fs::write(&tmp, message.formatted()).await?;
                tokio::fs::rename(&tmp, dir.join(&name)).await?;
                Ok(())
            }
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    MailError::SmtpPermanent(e.to_string())
                } else {
                    MailError::Smtp(e.to_string())
                }
            }),
        }
    }

    /// Sends in the background with retries (1 s, 5 s, 25 s); failures are logged.
    pub fn send_in_background(
        self: &std::sync::Arc<Self>,
        tracker: &TaskTracker,
        mail: OutgoingMail,
    ) {
        let mailer = self.clone();
        tracker.spawn(async move {
            let mut delay = Duration::from_secs(1);
            for attempt in 1..=4 {
                match mailer.send(&mail).await {
                    Ok(()) => {
                        tracing::info!(subject = %mail.subject, "mail sent");
                        return;
                    }
                    Err(e @ (MailError::Build(_) | MailError::SmtpPermanent(_))) => {
                        tracing::error!(subject = %mail.subject, error = %e, "mail refused; not retried");
                        return;
                    }
                    Err(e) if attempt < 4 => {
                        tracing::warn!(subject = %mail.subject, attempt, error = %e, "mail delivery failed; retrying");
                        tokio::time::sleep(delay).await;
                        delay *= 5;
                    }
                    Err(e) => {
                        tracing::error!(subject = %mail.subject, error = %e, "mail delivery failed; giving up");
                    }
                }
            }
        });
    }
}
