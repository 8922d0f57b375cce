//! Where messages go: an SMTP server (plain, STARTTLS or TLS, optionally authenticated), a
//! folder of `.eml` files when no server is configured (development, demos, tests of the whole
//! application), or memory (unit tests). The worker does not know which.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailSettings, SmtpSecurity};
use crate::error::AppError;

/// Messages kept by [`Transport::Memory`]: each one's envelope and raw RFC 5322 text.
pub type Mailbag = Arc<Mutex<Vec<(Envelope, Vec<u8>)>>>;

#[derive(Clone)]
pub enum Transport {
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        description: String,
    },
    File {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
    Memory(Mailbag),
}

/// The longest error text stored with a message: enough to diagnose, short enough for a table.
const MAX_ERROR_CHARS: usize = 300;

impl Transport {
    /// The transport the settings describe: SMTP when a host is set, otherwise `.eml` files in
    /// `mail.file_dir` (created when missing).
    pub fn from_settings(settings: &MailSettings) -> Result<Transport, AppError> {
        let Some(smtp) = &settings.smtp else {
            std::fs::create_dir_all(&settings.file_dir).map_err(|e| {
                AppError::Unavailable(format!(
                    "cannot create the mail folder {}: {e}",
                    settings.file_dir.display()
                ))
            })?;
            return Ok(Transport::File {
                transport: AsyncFileTransport::new(&settings.file_dir),
                dir: settings.file_dir.clone(),
            });
        };
        let host = smtp.host.as_str();
        let builder = match smtp.security {
            SmtpSecurity::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| smtp_setup_error(host, &e))?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|e| smtp_setup_error(host, &e))?,
        };
        let mut builder = builder
            .port(smtp.port)
            .timeout(Some(Duration::from_secs(smtp.timeout_secs)));
        if let Some(username) = &smtp.username {
            let password = smtp
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        let security = match smtp.security {
            SmtpSecurity::Plain => "plain",
            SmtpSecurity::StartTls => "starttls",
            SmtpSecurity::Tls => "tls",
        };
        Ok(Transport::Smtp {
            transport: builder.build(),
            description: format!("SMTP {host}:{} ({security})", smtp.port),
        })
    }

    /// A transport that keeps messages in memory, and the bag they go into.
    pub fn memory() -> (Transport, Mailbag) {
        let bag: Mailbag = Arc::default();
        (Transport::Memory(bag.clone()), bag)
    }

    /// One line for the start-up log; never credentials.
    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp { description, .. } => description.clone(),
            Transport::File { dir, .. } => format!(
                "no SMTP server configured; writing messages to {}",
                dir.display()
            ),
            Transport::Memory(_) => "keeping messages in memory".to_string(),
        }
    }

    /// Deliver one message. The error is a short sentence fit to store and show to an
    /// administrator (lettre's errors carry the server's reply, never the password).
    pub async fn send(&self, message: Message) -> Result<(), String> {
        match self {
            Transport::Smtp { transport, .. } => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| short_error(&crate::error::error_chain(&e))),
            Transport::File { transport, .. } => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| short_error(&crate::error::error_chain(&e))),
            Transport::Memory(bag) => {
                let raw = message.formatted();
                bag.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((message.envelope().clone(), raw));
                Ok(())
            }
        }
    }
}

fn smtp_setup_error(host: &str, e: &lettre::transport::smtp::Error) -> AppError {
    AppError::Unavailable(format!("cannot set up SMTP to {host}: {e}"))
}

/// One line, at most [`MAX_ERROR_CHARS`] characters.
pub fn short_error(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= MAX_ERROR_CHARS {
        one_line
    } else {
        let mut cut: String = one_line.chars().take(MAX_ERROR_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}
