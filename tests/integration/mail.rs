//! Email: the outbox is written in the caller's transaction, and the worker delivers it over
//! real SMTP to a small server this test starts on loopback, then checks what arrived: the
//! envelope, the headers, both bodies of the multipart/alternative message and the links.
//! The server is taken away and brought back; every message arrives, none twice.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use dma::config::{MailSettings, Secret, Settings, SmtpSecurity, SmtpSettings};
use dma::db::schema::email_outbox;
use dma::db::{Backend, Db};
use dma::error::AppError;
use dma::services::auth::roles::Role;
use dma::services::mail::{self, OutgoingEmail, SendReport, Transport};
use dma::templates::Templates;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::browser::{Browser, PASSWORD};
use crate::helpers::{backends, test_settings, TestApp, TestDb};

// ---------------------------------------------------------------------------------------
// A minimal SMTP server
// ---------------------------------------------------------------------------------------

/// One message as the server received it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) mail_from: String,
    pub(crate) rcpt_to: Vec<String>,
    pub(crate) data: String,
}

/// An SMTP server on loopback that accepts everything and keeps it.
pub(crate) struct SmtpServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpServer {
    /// Listen on `port` (0 for any free port).
    pub(crate) async fn start(port: u16, received: Arc<Mutex<Vec<Received>>>) -> SmtpServer {
        SmtpServer::start_slow(port, received, std::time::Duration::ZERO).await
    }

    /// A server that takes `delay` to acknowledge each message it has received (a slow or
    /// overloaded relay): the message is kept at once, the `250` comes after the delay.
    pub(crate) async fn start_slow(
        port: u16,
        received: Arc<Mutex<Vec<Received>>>,
        delay: std::time::Duration,
    ) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = converse(socket, store, delay).await;
                });
            }
        });
        SmtpServer {
            addr,
            received,
            task,
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    pub(crate) fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Stop listening (the port refuses connections afterwards).
    pub(crate) async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn converse(
    socket: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Received>>>,
    delay: std::time::Duration,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write
        .write_all(b"220 localhost test SMTP ready\r\n")
        .await?;
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-localhost greets you\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n",
            "HELO" => b"250 localhost\r\n",
            "MAIL" => {
                mail_from = command[10..].trim().to_string();
                rcpt_to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                rcpt_to.push(command[8..].trim().to_string());
                b"250 OK\r\n"
            }
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if lines.read_line(&mut l).await? == 0 {
                        return Ok(());
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    // Dot-stuffing: a leading dot was doubled by the client.
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                store.lock().unwrap().push(Received {
                    mail_from: mail_from.clone(),
                    rcpt_to: rcpt_to.clone(),
                    data,
                });
                tokio::time::sleep(delay).await;
                b"250 OK: queued\r\n"
            }
            "RSET" => {
                mail_from.clear();
                rcpt_to.clear();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

// ---------------------------------------------------------------------------------------
// Reading what arrived: headers, MIME parts, transfer encodings
// ---------------------------------------------------------------------------------------

/// A message or MIME part: unfolded headers (lower-case names) and the raw body.
pub(crate) struct Part {
    headers: BTreeMap<String, String>,
    body: String,
}

fn parse_part(raw: &str) -> Part {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
    let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
    let headers = unfolded
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Part {
        headers,
        body: body.to_string(),
    }
}

impl Part {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    /// The parameter of a header, like the boundary of a Content-Type.
    fn param(&self, name: &str, param: &str) -> String {
        let header = self.header(name);
        let at = header
            .find(&format!("{param}="))
            .unwrap_or_else(|| panic!("no {param} in {header}"))
            + param.len()
            + 1;
        header[at..]
            .trim_start_matches('"')
            .chars()
            .take_while(|c| *c != '"' && *c != ';')
            .collect()
    }

    /// The parts of a multipart body.
    fn parts(&self) -> Vec<Part> {
        let boundary = format!("--{}", self.param("content-type", "boundary"));
        let mut parts = Vec::new();
        for chunk in self.body.split(&boundary).skip(1) {
            if chunk.starts_with("--") {
                break;
            }
            parts.push(parse_part(chunk.trim_start_matches('\n')));
        }
        parts
    }

    /// The body with its transfer encoding undone.
    fn decoded(&self) -> String {
        let encoding = self
            .headers
            .get("content-transfer-encoding")
            .map(|e| e.to_ascii_lowercase())
            .unwrap_or_default();
        match encoding.as_str() {
            "quoted-printable" => quoted_printable(&self.body),
            "base64" => String::from_utf8(base64(&self.body)).unwrap(),
            _ => self.body.clone(),
        }
    }
}

fn quoted_printable(s: &str) -> String {
    let joined = s.replace("=\n", "");
    let bytes = joined.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn base64(s: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let digits: Vec<u32> = s.bytes().filter_map(value).collect();
    let mut out = Vec::new();
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, d)| acc | (d << (18 - 6 * i)));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    out
}

/// What handlebars escapes in HTML, undone, so links can be compared.
fn html_unescape(s: &str) -> String {
    s.replace("&#x3D;", "=")
        .replace("&#x27;", "'")
        .replace("&#x60;", "`")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A delivered message, read: (headers, text body, HTML body).
/// Whether a message file is whole: the mail worker writes `.eml` files while tests read the
/// folder, and a file caught mid-write has no headers yet or no closing boundary.
pub(crate) fn is_whole_message(raw: &str) -> bool {
    let message = parse_part(raw);
    let Some(boundary) = message
        .headers
        .get("content-type")
        .and_then(|h| h.split_once("boundary="))
        .map(|(_, b)| {
            b.trim_start_matches('"')
                .chars()
                .take_while(|c| *c != '"' && *c != ';')
                .collect::<String>()
        })
    else {
        return false;
    };
    message.body.contains(&format!("--{boundary}--"))
}

pub(crate) fn read_message(raw: &str) -> (Part, String, String) {
    let message = parse_part(raw);
    assert!(
        message
            .header("content-type")
            .starts_with("multipart/alternative"),
        "{}",
        message.header("content-type")
    );
    let parts = message.parts();
    assert_eq!(parts.len(), 2, "text and HTML parts");
    assert!(parts[0].header("content-type").starts_with("text/plain"));
    assert!(parts[1].header("content-type").starts_with("text/html"));
    let text = parts[0].decoded();
    let html = html_unescape(&parts[1].decoded());
    (message, text, html)
}

// ---------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------

/// A message to queue: kind, recipient, template, data.
pub(crate) type Email = (&'static str, String, &'static str, serde_json::Value);

pub(crate) struct MailWorld {
    pub(crate) db: Db,
    pub(crate) templates: Templates,
    pub(crate) settings: Settings,
    _test_db: TestDb,
    _dir: tempfile::TempDir,
}

pub(crate) async fn world(backend: Backend) -> MailWorld {
    let test_db = TestDb::new(backend);
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(&test_db, dir.path());
    let db = settings.open_database().await.unwrap();
    MailWorld {
        db,
        templates: Templates::load(None).unwrap(),
        settings,
        _test_db: test_db,
        _dir: dir,
    }
}

pub(crate) fn smtp_settings(base: &MailSettings, port: u16) -> MailSettings {
    let mut s = base.clone();
    s.smtp = Some(SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::Plain,
        username: None,
        password: None,
        timeout_secs: 5,
    });
    s.from = "Digital maturity assessment <dma@example.nhs.uk>".into();
    s
}

impl MailWorld {
    /// Queue messages in one transaction.
    pub(crate) async fn enqueue(&self, emails: Vec<Email>) {
        let templates = self.templates.clone();
        self.db
            .write(move |conn| {
                for (kind, to, template, data) in emails {
                    let queued = mail::enqueue(
                        conn,
                        &templates,
                        OutgoingEmail {
                            kind,
                            to: &to,
                            template,
                            data,
                            dedupe_key: None,
                        },
                    )?;
                    assert!(queued);
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    async fn rows(&self) -> Vec<mail::OutboxMessage> {
        self.db
            .read(|conn| {
                Ok(email_outbox::table
                    .order(email_outbox::id)
                    .load::<mail::OutboxMessage>(conn)?)
            })
            .await
            .unwrap()
    }
}

fn invitation(to: &str, link: &str) -> Email {
    (
        "invitation",
        to.to_string(),
        "invitation",
        json!({"name": "Ada Lovelace", "link": link, "organisation": "Leeds Teaching Hospitals NHS Trust", "role_label": "Organisation approver", "expires_days": 7}),
    )
}

pub(crate) fn reset(to: &str, link: &str) -> Email {
    (
        "password_reset",
        to.to_string(),
        "password_reset",
        json!({"name": "Grace Hopper", "link": link, "expires_minutes": 60}),
    )
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn queued_messages_are_delivered_over_smtp_as_text_and_html() {
    for backend in backends() {
        let w = world(backend).await;
        let server = SmtpServer::start(0, Arc::default()).await;
        let settings = smtp_settings(&w.settings.mail, server.port());
        let transport = Transport::from_settings(&settings).unwrap();
        assert_eq!(
            transport.describe(),
            format!("SMTP 127.0.0.1:{} (plain)", server.port())
        );
        // A long link with characters that HTML escapes and quoted-printable folds.
        let invite_link = format!(
            "http://dma.test/account/set-password?token={}&from=invite",
            "a".repeat(90)
        );
        let reset_link = "http://dma.test/account/set-password?token=reset-token-123";
        w.enqueue(vec![
            invitation("ada@example.nhs.uk", &invite_link),
            reset("grace@example.nhs.uk", reset_link),
        ])
        .await;

        let report = mail::send_pending(&w.db, &transport, &settings)
            .await
            .unwrap();
        assert_eq!(
            report,
            SendReport {
                sent: 2,
                failed: 0,
                retried: 0
            },
            "[{backend}]"
        );
        let got = server.messages();
        assert_eq!(got.len(), 2, "[{backend}]");

        let invite = got
            .iter()
            .find(|m| m.rcpt_to == ["<ada@example.nhs.uk>"])
            .expect("the invitation");
        assert_eq!(invite.mail_from, "<dma@example.nhs.uk>");
        let (headers, text, html) = read_message(&invite.data);
        assert_eq!(headers.header("to"), "ada@example.nhs.uk");
        assert!(headers.header("from").contains("dma@example.nhs.uk"));
        assert_eq!(
            headers.header("subject"),
            "You have been invited to the digital maturity assessment for Leeds Teaching Hospitals NHS Trust"
        );
        assert!(headers.header("message-id").ends_with("@example.nhs.uk>"));
        assert!(text.contains("Hello Ada Lovelace,"), "{text}");
        assert!(text.contains(&invite_link), "[{backend}] text: {text}");
        assert!(
            html.contains(&format!("href=\"{invite_link}\"")),
            "[{backend}] html: {html}"
        );
        assert!(html.contains("Organisation approver"));
        assert!(html.contains("background-color:#005eb8"), "the NHS layout");

        let reset_msg = got
            .iter()
            .find(|m| m.rcpt_to == ["<grace@example.nhs.uk>"])
            .expect("the reset");
        let (headers, text, html) = read_message(&reset_msg.data);
        assert_eq!(
            headers.header("subject"),
            "Reset your digital maturity assessment password"
        );
        assert!(text.contains(reset_link) && text.contains("60 minutes"));
        assert!(html.contains(&format!("href=\"{reset_link}\"")));
        let invite_id = parse_part(&invite.data).header("message-id").to_string();
        assert_ne!(invite_id, headers.header("message-id"));

        let rows = w.rows().await;
        assert!(rows.iter().all(|r| r.status == "sent"
            && r.sent_at.is_some()
            && r.attempts == 1
            && r.locked_until.is_none()));
        // Nothing more to do.
        let again = mail::send_pending(&w.db, &transport, &settings)
            .await
            .unwrap();
        assert_eq!(again, SendReport::default());
        assert_eq!(server.messages().len(), 2);
        server.stop().await;
    }
}

#[tokio::test]
async fn a_rolled_back_change_sends_nothing_and_dedupe_keys_queue_once() {
    for backend in backends() {
        let w = world(backend).await;
        let templates = w.templates.clone();
        let failed = w
            .db
            .write(move |conn| {
                mail::enqueue(
                    conn,
                    &templates,
                    OutgoingEmail {
                        kind: "invitation",
                        to: "rolled.back@example.nhs.uk",
                        template: "invitation",
                        data: json!({"name": "N", "link": "http://x/", "role_label": "R", "expires_days": 7}),
                        dedupe_key: None,
                    },
                )?;
                Err::<(), _>(AppError::Conflict("the change failed".into()))
            })
            .await;
        assert!(failed.is_err());
        assert!(
            w.rows().await.is_empty(),
            "[{backend}] the row was rolled back"
        );

        let enqueue_keyed = |key: &'static str, to: &'static str| {
            let templates = w.templates.clone();
            w.db.write(move |conn| {
                mail::enqueue(
                    conn,
                    &templates,
                    OutgoingEmail {
                        kind: "reminder",
                        to,
                        template: "reminder",
                        data: json!({"name": "N", "organisation": "O", "cycle_label": "2026/27", "deadline": "30 June 2026", "link": "http://x/", "days_left": 14}),
                        dedupe_key: Some(key.to_string()),
                    },
                )
            })
        };
        assert!(enqueue_keyed("reminder:1:2:14", "a@example.nhs.uk")
            .await
            .unwrap());
        assert!(!enqueue_keyed("reminder:1:2:14", "a@example.nhs.uk")
            .await
            .unwrap());
        assert!(enqueue_keyed("reminder:1:2:7", "a@example.nhs.uk")
            .await
            .unwrap());
        // A duplicate inside a transaction leaves the transaction usable.
        let templates = w.templates.clone();
        let (first, second, after) = w
            .db
            .write(move |conn| {
                let email = |key: &str| OutgoingEmail {
                    kind: "reminder",
                    to: "b@example.nhs.uk",
                    template: "reminder",
                    data: json!({"name": "N", "organisation": "O", "cycle_label": "C", "deadline": "D", "link": "L", "overdue": true}),
                    dedupe_key: Some(key.to_string()),
                };
                let first = mail::enqueue(conn, &templates, email("reminder:1:2:overdue"))?;
                let second = mail::enqueue(conn, &templates, email("reminder:1:2:overdue"))?;
                let after: i64 = email_outbox::table.count().get_result(conn)?;
                Ok((first, second, after))
            })
            .await
            .unwrap();
        assert!(first && !second, "[{backend}]");
        assert_eq!(after, 3);
        assert_eq!(w.rows().await.len(), 3, "[{backend}]");

        // Nothing that was rolled back is ever sent.
        let server = SmtpServer::start(0, Arc::default()).await;
        let settings = smtp_settings(&w.settings.mail, server.port());
        let transport = Transport::from_settings(&settings).unwrap();
        let report = mail::send_pending(&w.db, &transport, &settings)
            .await
            .unwrap();
        assert_eq!(report.sent, 3);
        let recipients: Vec<Vec<String>> =
            server.messages().into_iter().map(|m| m.rcpt_to).collect();
        assert!(!recipients
            .iter()
            .flatten()
            .any(|r| r.contains("rolled.back")));
        server.stop().await;
    }
}

#[tokio::test]
async fn an_smtp_outage_delays_mail_and_every_message_arrives_once() {
    for backend in backends() {
        let w = world(backend).await;
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let server = SmtpServer::start(0, received.clone()).await;
        let port = server.port();
        let mut settings = smtp_settings(&w.settings.mail, port);
        settings.max_attempts = 5;
        let transport = Transport::from_settings(&settings).unwrap();

        // Up: two messages go straight out.
        w.enqueue(vec![
            invitation("one@example.nhs.uk", "http://dma.test/1"),
            reset("two@example.nhs.uk", "http://dma.test/2"),
        ])
        .await;
        let start = now();
        let report = mail::send_pending_at(&w.db, &transport, &settings, start)
            .await
            .unwrap();
        assert_eq!(report.sent, 2, "[{backend}]");

        // Down: three more are queued and retried later, with the error kept.
        server.stop().await;
        w.enqueue(vec![
            invitation("three@example.nhs.uk", "http://dma.test/3"),
            reset("four@example.nhs.uk", "http://dma.test/4"),
            invitation("five@example.nhs.uk", "http://dma.test/5"),
        ])
        .await;
        let start = now();
        let report = mail::send_pending_at(&w.db, &transport, &settings, start)
            .await
            .unwrap();
        assert_eq!(
            report,
            SendReport {
                sent: 0,
                failed: 0,
                retried: 3
            },
            "[{backend}]"
        );
        let waiting: Vec<_> = w
            .rows()
            .await
            .into_iter()
            .filter(|r| r.status != "sent")
            .collect();
        assert_eq!(waiting.len(), 3);
        for r in &waiting {
            assert_eq!(r.status, "queued", "[{backend}]");
            assert_eq!(r.attempts, 1);
            assert!(r.next_attempt_at >= start + Duration::seconds(30));
            assert!(r.last_error.as_deref().is_some_and(|e| !e.is_empty()));
            assert!(r.locked_until.is_none());
        }
        // Not due yet: a pass now does nothing.
        let early = mail::send_pending_at(&w.db, &transport, &settings, start)
            .await
            .unwrap();
        assert_eq!(early, SendReport::default());
        // Still down at the first retry: the wait doubles.
        let later = start + Duration::seconds(31);
        let report = mail::send_pending_at(&w.db, &transport, &settings, later)
            .await
            .unwrap();
        assert_eq!(report.retried, 3, "[{backend}]");
        for r in w.rows().await.iter().filter(|r| r.status != "sent") {
            assert_eq!(r.attempts, 2);
            assert!(r.next_attempt_at >= later + Duration::seconds(60));
        }

        // Back up, on the same port: the rest arrive.
        let server = SmtpServer::start(port, received.clone()).await;
        let report =
            mail::send_pending_at(&w.db, &transport, &settings, start + Duration::hours(2))
                .await
                .unwrap();
        assert_eq!(report.sent, 3, "[{backend}]");
        // And again later: nothing is sent twice.
        let report =
            mail::send_pending_at(&w.db, &transport, &settings, start + Duration::hours(5))
                .await
                .unwrap();
        assert_eq!(report, SendReport::default());

        let got = server.messages();
        let mut recipients: Vec<String> = got.iter().flat_map(|m| m.rcpt_to.clone()).collect();
        recipients.sort();
        assert_eq!(
            recipients,
            [
                "<five@example.nhs.uk>",
                "<four@example.nhs.uk>",
                "<one@example.nhs.uk>",
                "<three@example.nhs.uk>",
                "<two@example.nhs.uk>"
            ],
            "[{backend}] every message once"
        );
        for m in &got {
            let (_, text, html) = read_message(&m.data);
            let n = m.rcpt_to[0]
                .trim_matches(['<', '>'])
                .split('@')
                .next()
                .unwrap();
            let digit = ["one", "two", "three", "four", "five"]
                .iter()
                .position(|w| *w == n)
                .unwrap()
                + 1;
            let link = format!("http://dma.test/{digit}");
            assert!(
                text.contains(&link) && html.contains(&link),
                "[{backend}] {n}"
            );
        }
        assert!(w.rows().await.iter().all(|r| r.status == "sent"));
        server.stop().await;
    }
}

/// Several instances (separate pools on one database) deliver the same outbox at once: each
/// message is claimed by one of them and arrives once.
#[tokio::test]
async fn concurrent_workers_never_send_a_message_twice() {
    for backend in backends() {
        let w = world(backend).await;
        let server = SmtpServer::start(0, Arc::default()).await;
        let settings = smtp_settings(&w.settings.mail, server.port());
        let transport = Transport::from_settings(&settings).unwrap();
        let emails = (0..45)
            .map(|i| reset(&format!("person{i}@example.nhs.uk"), "http://dma.test/r"))
            .collect();
        w.enqueue(emails).await;
        let url = w.settings.database().unwrap();
        let pools: Vec<Db> = (0..3).map(|_| Db::connect(&url, 2).unwrap()).collect();
        let at = now();
        let (a, b, c) = tokio::join!(
            mail::send_pending_at(&pools[0], &transport, &settings, at),
            mail::send_pending_at(&pools[1], &transport, &settings, at),
            mail::send_pending_at(&pools[2], &transport, &settings, at),
        );
        let reports = [a.unwrap(), b.unwrap(), c.unwrap()];
        assert_eq!(
            reports.iter().map(|r| r.sent).sum::<u32>(),
            45,
            "[{backend}] {reports:?}"
        );
        let mut recipients: Vec<String> = server
            .messages()
            .into_iter()
            .flat_map(|m| m.rcpt_to)
            .collect();
        assert_eq!(recipients.len(), 45, "[{backend}]");
        recipients.sort();
        recipients.dedup();
        assert_eq!(recipients.len(), 45, "[{backend}] a message was sent twice");
        assert!(w
            .rows()
            .await
            .iter()
            .all(|r| r.status == "sent" && r.attempts == 1));
        server.stop().await;
    }
}

#[tokio::test]
async fn a_message_is_marked_failed_after_the_last_attempt_and_can_be_claimed_after_a_crash() {
    for backend in backends() {
        let w = world(backend).await;
        // A port where nothing listens.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut settings = smtp_settings(&w.settings.mail, port);
        settings.max_attempts = 2;
        if let Some(smtp) = settings.smtp.as_mut() {
            smtp.username = Some("dma".into());
            smtp.password = Some(Secret::new("hunter2-secret"));
        }
        let transport = Transport::from_settings(&settings).unwrap();
        w.enqueue(vec![invitation("x@example.nhs.uk", "http://dma.test/x")])
            .await;
        let start = now();
        let first = mail::send_pending_at(&w.db, &transport, &settings, start)
            .await
            .unwrap();
        assert_eq!(first.retried, 1, "[{backend}]");
        let second =
            mail::send_pending_at(&w.db, &transport, &settings, start + Duration::hours(1))
                .await
                .unwrap();
        assert_eq!(
            second,
            SendReport {
                sent: 0,
                failed: 1,
                retried: 0
            },
            "[{backend}]"
        );
        let row = w.rows().await.remove(0);
        assert_eq!(row.status, "failed");
        assert_eq!(row.attempts, 2);
        let error = row.last_error.unwrap();
        assert!(!error.contains("hunter2"), "no secrets in {error}");
        assert!(error.len() <= 400);
        // A failed message stays failed.
        let later = mail::send_pending_at(&w.db, &transport, &settings, start + Duration::days(2))
            .await
            .unwrap();
        assert_eq!(later, SendReport::default());

        // A message left `sending` by a worker that died is claimed again once its lease
        // has run out, and not before.
        let server = SmtpServer::start(0, Arc::default()).await;
        let settings = smtp_settings(&w.settings.mail, server.port());
        let transport = Transport::from_settings(&settings).unwrap();
        w.enqueue(vec![reset("crash@example.nhs.uk", "http://dma.test/c")])
            .await;
        let lease_end = start + Duration::minutes(5);
        w.db.write(move |conn| {
            diesel::update(email_outbox::table.filter(email_outbox::status.eq("queued")))
                .set((
                    email_outbox::status.eq("sending"),
                    email_outbox::locked_until.eq(Some(lease_end)),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
        let during = mail::send_pending_at(&w.db, &transport, &settings, start)
            .await
            .unwrap();
        assert_eq!(during, SendReport::default(), "[{backend}] still leased");
        let after =
            mail::send_pending_at(&w.db, &transport, &settings, start + Duration::minutes(6))
                .await
                .unwrap();
        assert_eq!(after.sent, 1, "[{backend}]");
        assert_eq!(server.messages().len(), 1);
        server.stop().await;
    }
}

#[tokio::test]
async fn without_smtp_messages_are_written_as_eml_files() {
    for backend in backends() {
        let w = world(backend).await;
        let mut settings = w.settings.mail.clone();
        settings.smtp = None;
        let dir = tempfile::tempdir().unwrap();
        settings.file_dir = dir.path().join("outgoing");
        let transport = Transport::from_settings(&settings).unwrap();
        assert_eq!(
            transport.describe(),
            format!(
                "no SMTP server configured; writing messages to {}",
                settings.file_dir.display()
            )
        );
        w.enqueue(vec![reset("file@example.nhs.uk", "http://dma.test/f")])
            .await;
        let report = mail::send_pending(&w.db, &transport, &settings)
            .await
            .unwrap();
        assert_eq!(report.sent, 1, "[{backend}]");
        let files: Vec<_> = std::fs::read_dir(&settings.file_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].extension().unwrap(), "eml");
        let raw = std::fs::read_to_string(&files[0]).unwrap();
        let (headers, text, html) = read_message(&raw);
        assert_eq!(headers.header("to"), "file@example.nhs.uk");
        assert!(text.contains("http://dma.test/f") && html.contains("http://dma.test/f"));
    }
}

/// Queue one message and mark it failed, as the worker would after its last attempt.
async fn failed_message(app: &TestApp) -> i64 {
    let templates = Templates::load(None).unwrap();
    app.db
        .write(move |conn| {
            mail::enqueue(
                conn,
                &templates,
                OutgoingEmail {
                    kind: "password_reset",
                    to: "bounced@example.nhs.uk",
                    template: "password_reset",
                    data: json!({"name": "B", "link": "http://dma.test/b", "expires_minutes": 60}),
                    dedupe_key: None,
                },
            )?;
            let id: i64 = email_outbox::table
                .filter(email_outbox::recipient.eq("bounced@example.nhs.uk"))
                .select(email_outbox::id)
                .first(conn)?;
            diesel::update(email_outbox::table.find(id))
                .set((
                    email_outbox::status.eq("failed"),
                    email_outbox::attempts.eq(8),
                    email_outbox::last_error.eq(Some("Connection refused <test>")),
                ))
                .execute(conn)?;
            Ok(id)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn administrators_see_the_outbox_and_resend_a_failed_message() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        app.create_user("admin@example.nhs.uk", Role::Administrator, None, PASSWORD)
            .await;
        app.create_user("auditor@example.nhs.uk", Role::Auditor, None, PASSWORD)
            .await;
        let id = failed_message(&app).await;

        let auditor = Browser::new(&app);
        auditor.sign_in("auditor@example.nhs.uk", PASSWORD).await;
        assert_eq!(
            auditor.get("/admin/outbox").await.status(),
            StatusCode::FORBIDDEN,
            "[{backend}]"
        );
        let csrf = auditor.csrf().await;
        let refused = auditor
            .post(
                &format!("/admin/outbox/{id}/resend"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "[{backend}]");

        let admin = Browser::new(&app);
        admin.sign_in("admin@example.nhs.uk", PASSWORD).await;
        let res = admin.get("/admin/outbox").await;
        assert_eq!(res.status(), StatusCode::OK, "[{backend}]");
        let page = res.text().await.unwrap();
        assert!(page.contains("Email outbox"));
        assert!(page.contains("bounced@example.nhs.uk"));
        assert!(page.contains("Reset your digital maturity assessment password"));
        assert!(page.contains("dma-tag--red"), "failed tag");
        assert!(
            page.contains("Connection refused &lt;test&gt;"),
            "escaped error"
        );
        assert!(page.contains(&format!("/admin/outbox/{id}/resend")));
        assert!(
            page.contains("<td class=\"dma-table__cell\">Password reset</td>"),
            "[{backend}] the kind in words"
        );
        assert!(
            !page.contains(">password_reset<"),
            "[{backend}] no raw kind code"
        );
        // A state that does not exist is refused by name, not shown as "all".
        let unknown = admin.get("/admin/outbox?status=zzz").await;
        assert_eq!(unknown.status(), StatusCode::BAD_REQUEST, "[{backend}]");
        let unknown = unknown.text().await.unwrap();
        assert!(
            unknown.contains("There is no message state &quot;zzz&quot;"),
            "{unknown}"
        );
        assert!(!unknown.contains("bounced@example.nhs.uk"));
        let failed_only = admin.text("/admin/outbox?status=failed").await;
        assert!(failed_only.contains("bounced@example.nhs.uk"));
        let sent_only = admin.text("/admin/outbox?status=sent").await;
        assert!(!sent_only.contains("bounced@example.nhs.uk"), "[{backend}]");

        // A forged token is refused and changes nothing.
        let forged = admin
            .post(
                &format!("/admin/outbox/{id}/resend"),
                &[("csrf_token", "forged")],
            )
            .await;
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST);

        let csrf = admin.csrf().await;
        let res = admin
            .post(
                &format!("/admin/outbox/{id}/resend"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        assert_eq!(
            res.headers()["location"].to_str().unwrap(),
            "/admin/outbox?done=resent"
        );
        let (status, attempts, audited) = app
            .db
            .read(move |conn| {
                use dma::db::schema::audit_log;
                let (status, attempts): (String, i32) = email_outbox::table
                    .find(id)
                    .select((email_outbox::status, email_outbox::attempts))
                    .first(conn)?;
                let audited: i64 = audit_log::table
                    .filter(audit_log::action.eq("email.resend"))
                    .filter(audit_log::entity_id.eq(id.to_string()))
                    .filter(audit_log::actor_label.eq("admin@example.nhs.uk"))
                    .count()
                    .get_result(conn)?;
                Ok((status, attempts, audited))
            })
            .await
            .unwrap();
        // The app's own worker may already have delivered it (to its mail folder).
        assert!(
            (status == "queued" && attempts == 0)
                || status == "sending"
                || (status == "sent" && attempts == 1),
            "[{backend}] {status} {attempts}"
        );
        assert_eq!(audited, 1);
        let page = admin.text("/admin/outbox?done=resent").await;
        assert!(page.contains("will be sent again"));
        // Resending a message that is already waiting is refused, not doubled.
        if status == "queued" {
            let again = admin
                .post(
                    &format!("/admin/outbox/{id}/resend"),
                    &[("csrf_token", &csrf)],
                )
                .await;
            assert!(
                again.status() == StatusCode::CONFLICT || again.status() == StatusCode::SEE_OTHER
            );
        }
        let missing = admin
            .post("/admin/outbox/999999/resend", &[("csrf_token", &csrf)])
            .await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}

/// The worker inside the application delivers queued mail by itself (to its mail folder).
#[tokio::test]
async fn the_application_worker_delivers_queued_mail() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let templates = Templates::load(None).unwrap();
        app.db
            .write(move |conn| {
                mail::enqueue(
                    conn,
                    &templates,
                    OutgoingEmail {
                        kind: "password_reset",
                        to: "worker@example.nhs.uk",
                        template: "password_reset",
                        data: json!({"name": "W", "link": "http://dma.test/w", "expires_minutes": 60}),
                        dedupe_key: None,
                    },
                )
            })
            .await
            .unwrap();
        mail::wake();
        let mut status = String::new();
        for _ in 0..100 {
            status = app
                .db
                .read(|conn| {
                    Ok(email_outbox::table
                        .filter(email_outbox::recipient.eq("worker@example.nhs.uk"))
                        .select(email_outbox::status)
                        .first::<String>(conn)?)
                })
                .await
                .unwrap();
            if status == "sent" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(status, "sent", "[{backend}]");
    }
}
