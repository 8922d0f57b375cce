//! Typed configuration, layered: built-in defaults, then an optional TOML file, then
//! environment variables. Everything is validated once at start-up so a typo in a deployment
//! fails immediately with a message naming the key, rather than at the first request that
//! needs it. Secrets live in [`Secret`], which never prints its value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::error::AppError;

/// A value that must never reach a log, an error message or a `Debug` dump.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The only way to read the value; grep for it when auditing where secrets go.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// How to reach the SMTP server. Absent settings mean mail is written to files instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// No encryption (a relay on the same host or network segment).
    Plain,
    /// Upgrade a plain connection with STARTTLS (usually port 587).
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `Some` to deliver over SMTP; `None` to write `.eml` files into `file_dir`.
    pub smtp: Option<SmtpSettings>,
    pub from: String,
    pub file_dir: PathBuf,
    pub max_attempts: u32,
    /// Days before the deadline on which reminders go out.
    pub reminder_days: Vec<u32>,
    /// Days before a section's due date (or the deadline) on which the people who hold a
    /// section that is not yet ready for review are reminded.
    pub section_reminder_days: Vec<u32>,
    /// Folder whose templates override the built-in ones (same file names).
    pub templates_dir: Option<PathBuf>,
    /// Seals outbox bodies that carry a secret link; derived from `DMA_SECRET_KEY`.
    pub sealing_key: crate::crypto::SealingKey,
}

/// How long records are kept before the retention purge removes them (0 keeps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    pub sessions_days: i64,
    pub links_days: i64,
    pub mail_body_days: i64,
    pub answer_history_years: i64,
}

/// Operations: where metrics are served, who may read them, and what this instance is called.
#[derive(Debug, Clone)]
pub struct OpsSettings {
    /// A separate address serving `/metrics` only; `None` serves no metrics.
    pub metrics_bind: Option<SocketAddr>,
    /// When set, `/metrics` asks for `Authorization: Bearer <token>`.
    pub metrics_token: Option<Secret>,
    /// Named in the `X-Dma-Instance` response header, so an operator (or a test) can tell
    /// which instance behind a load balancer answered.
    pub instance_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `None` means the embedded SQLite file in `data_dir`.
    pub database_url: Option<Secret>,
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    pub base_url: String,
    /// The base URL was not configured, so it is `http://<bind>` and follows the bind address.
    pub base_url_from_bind: bool,
    pub secret_key: Secret,
    pub db_pool_size: u32,
    pub session_idle_minutes: i64,
    pub session_absolute_hours: i64,
    pub max_upload_bytes: usize,
    pub mail: MailSettings,
    pub workers: usize,
    pub retention: RetentionSettings,
    pub ops: OpsSettings,
    pub auth: AuthSettings,
    pub evidence: EvidenceSettings,
}

/// Evidence files attached to answers (docs/evidence.md): how large one file may be and how
/// much one assessment may hold in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvidenceSettings {
    pub max_file_bytes: usize,
    pub max_assessment_bytes: u64,
}

/// Role names, as stored in `users.role`, that `second_factor_roles` may name. The services'
/// `Role` is above this layer; a test there keeps the two lists equal.
pub const ROLE_NAMES: &[&str] = &[
    "administrator",
    "auditor",
    "group_viewer",
    "org_approver",
    "org_contributor",
];

/// Signing in: who must have a second factor, how recent a sign-in sensitive actions need,
/// and the key that seals second-factor secrets.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Roles (as in [`ROLE_NAMES`]) whose accounts must set up a second factor to sign in.
    pub second_factor_roles: Vec<String>,
    /// Sensitive actions ask the person to confirm who they are when they last did more
    /// than this many minutes ago.
    pub reauth_minutes: i64,
    /// Seals TOTP secrets at rest; derived from `DMA_SECRET_KEY`.
    pub totp_key: crate::crypto::SealingKey,
    /// OpenID Connect providers offered at sign-in, in the order `oidc_providers` lists them.
    pub sso_providers: Vec<SsoProvider>,
}

/// One OpenID Connect provider (NHS CIS2, an organisation's Entra ID, ...): configured by
/// `DMA_OIDC_<NAME>_ISSUER`, `_CLIENT_ID`, `_CLIENT_SECRET` and optional `_LABEL`, or by a
/// `[oidc.<name>]` table in the file. Everything else (endpoints, keys) comes from the
/// issuer's discovery document at sign-in.
#[derive(Debug, Clone)]
pub struct SsoProvider {
    /// The short name: lower-case letters and digits, in URLs and stored with identities.
    pub key: String,
    /// What the sign-in button says after "Sign in with".
    pub label: String,
    /// The issuer URL; its `/.well-known/openid-configuration` is the discovery document.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
}

/// The fields of one provider, as `DMA_OIDC_<NAME>_<FIELD>` spells them.
const SSO_FIELDS: &[&str] = &["issuer", "client_id", "client_secret", "label"];

/// Every key the configuration understands, with its environment variable and meaning.
/// `.env.example` and the README document the same list; a test keeps them in step.
pub const KEYS: &[(&str, &str, &str)] = &[
    ("database_url", "DATABASE_URL", "postgres://... or sqlite://PATH; default: SQLite file in the data folder"),
    ("data_dir", "DMA_DATA_DIR", "folder for the embedded database, mail files and the generated secret key (default ./data)"),
    ("bind", "DMA_BIND", "address the web server listens on (default 127.0.0.1:8080)"),
    ("base_url", "DMA_BASE_URL", "public URL used in links in emails (default http://<bind>)"),
    ("secret_key", "DMA_SECRET_KEY", "at least 32 characters; the key that seals emails carrying a link (invitations, resets) in the outbox; generated into the data folder when unset"),
    ("db_pool_size", "DMA_DB_POOL_SIZE", "database connections per instance (default 10)"),
    ("session_idle_minutes", "DMA_SESSION_IDLE_MINUTES", "sign out after this much inactivity (default 60)"),
    ("session_absolute_hours", "DMA_SESSION_ABSOLUTE_HOURS", "sign out this long after sign-in whatever the activity (default 12)"),
    ("max_upload_bytes", "DMA_MAX_UPLOAD_BYTES", "largest accepted upload or request body (default 2097152)"),
    ("workers", "DMA_WORKERS", "HTTP worker threads (default: number of cores)"),
    ("smtp_host", "DMA_SMTP_HOST", "SMTP server; when unset, mail is written as .eml files to mail_dir"),
    ("smtp_port", "DMA_SMTP_PORT", "SMTP port (default 25 for plain, 587 for starttls, 465 for tls)"),
    ("smtp_security", "DMA_SMTP_SECURITY", "plain, starttls or tls (default starttls)"),
    ("smtp_username", "DMA_SMTP_USERNAME", "SMTP user name, when the server wants authentication"),
    ("smtp_password", "DMA_SMTP_PASSWORD", "SMTP password"),
    ("smtp_timeout_secs", "DMA_SMTP_TIMEOUT_SECS", "give up on an SMTP conversation after this long (default 30)"),
    ("mail_from", "DMA_MAIL_FROM", "sender address of every message (default \"Digital maturity assessment <noreply@localhost>\")"),
    ("mail_dir", "DMA_MAIL_DIR", "folder for .eml files when no SMTP server is set (default <data_dir>/mail)"),
    ("mail_max_attempts", "DMA_MAIL_MAX_ATTEMPTS", "deliveries tried before a message is marked failed (default 8)"),
    ("reminder_days", "DMA_REMINDER_DAYS", "comma-separated days before the deadline for reminders (default 28,14,7,2)"),
    ("section_reminder_days", "DMA_SECTION_REMINDER_DAYS", "comma-separated days before a section is due (its due date, else the deadline) on which the people who hold it are reminded while it is not ready for review (default 7,2)"),
    ("templates_dir", "DMA_TEMPLATES_DIR", "folder of email templates overriding the built-in ones"),
    ("metrics_bind", "DMA_METRICS_BIND", "address serving /metrics (Prometheus) apart from the application; unset: no metrics"),
    ("metrics_token", "DMA_METRICS_TOKEN", "when set, /metrics needs Authorization: Bearer <token>"),
    ("instance_name", "DMA_INSTANCE_NAME", "this instance's name, sent in the X-Dma-Instance response header"),
    ("retention_sessions_days", "DMA_RETENTION_SESSIONS_DAYS", "days ended sessions and sign-in attempts are kept (default 30; 0 keeps them)"),
    ("retention_links_days", "DMA_RETENTION_LINKS_DAYS", "days used or expired single-use links are kept (default 30; 0 keeps them)"),
    ("retention_mail_body_days", "DMA_RETENTION_MAIL_BODY_DAYS", "days the bodies of delivered emails are kept (default 90; 0 keeps them)"),
    ("second_factor_roles", "DMA_SECOND_FACTOR_ROLES", "comma-separated roles that must sign in with a second factor (default administrator,auditor; none: nobody must)"),
    ("reauth_minutes", "DMA_REAUTH_MINUTES", "sensitive actions ask for the password (and code) again when the last sign-in is older than this (default 10)"),
    ("retention_answer_history_years", "DMA_RETENTION_ANSWER_HISTORY_YEARS", "years answer history is kept (default 0: for ever)"),
    ("oidc_providers", "DMA_OIDC_PROVIDERS", "comma-separated short names (letters and digits) of OpenID Connect providers offered at sign-in, e.g. cis2,entra; each needs DMA_OIDC_<NAME>_ISSUER, DMA_OIDC_<NAME>_CLIENT_ID and DMA_OIDC_<NAME>_CLIENT_SECRET, and may have DMA_OIDC_<NAME>_LABEL (the button's name); unset: none"),
    ("evidence_max_file_bytes", "DMA_EVIDENCE_MAX_FILE_BYTES", "largest evidence file accepted, in bytes (default 20971520, 20 MiB)"),
    ("evidence_max_assessment_bytes", "DMA_EVIDENCE_MAX_ASSESSMENT_BYTES", "most evidence one assessment may hold in all, in bytes (default 209715200, 200 MiB)"),
];

/// A configuration problem, naming the key as the operator wrote it.
#[derive(Debug, thiserror::Error)]
#[error("configuration {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Raw key/value pairs before validation, remembering where each value came from so errors
/// can name `DMA_BIND` or `bind (in dma.toml)` as the operator wrote it.
struct Layer {
    values: BTreeMap<&'static str, (String, String)>,
    /// Single sign-on providers' fields: (provider, field) -> (value, source).
    sso: BTreeMap<(String, String), (String, String)>,
}

impl Layer {
    fn get(&self, key: &str) -> Option<(&str, &str)> {
        self.values
            .get(key)
            .map(|(v, src)| (v.as_str(), src.as_str()))
            .filter(|(v, _)| !v.trim().is_empty())
    }
}

impl Settings {
    /// Load from an optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::from_sources(file, &env)
    }

    /// Load from an optional file and the given environment (tests pass their own).
    pub fn from_sources(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut layer = Layer {
            values: BTreeMap::new(),
            sso: BTreeMap::new(),
        };
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env.get("DMA_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            read_file(&path, &mut layer)?;
        }
        for (key, var, _) in KEYS {
            if let Some(v) = env.get(*var) {
                layer.values.insert(key, (v.clone(), (*var).to_string()));
            }
        }
        for (var, v) in env {
            let Some(rest) = var.strip_prefix("DMA_OIDC_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            if let Some((name, field)) = rest.split_once('_') {
                if SSO_FIELDS.contains(&field) {
                    layer.sso.insert(
                        (name.to_string(), field.to_string()),
                        (v.clone(), var.clone()),
                    );
                }
            }
        }
        Self::validate(&layer)
    }

    /// Listen on another address (`dma serve --bind`). Links in emails follow it unless a base
    /// URL was configured, as they do when the address comes from `DMA_BIND`.
    pub fn set_bind(&mut self, bind: SocketAddr) {
        self.bind = bind;
        if self.base_url_from_bind {
            self.base_url = format!("http://{bind}");
        }
    }

    /// The database this configuration points at: the given URL, or the embedded SQLite
    /// file in the data folder.
    pub fn database(&self) -> Result<crate::db::DatabaseUrl, AppError> {
        match &self.database_url {
            Some(url) => crate::db::DatabaseUrl::parse(url.expose()).map_err(AppError::BadRequest),
            None => Ok(crate::db::DatabaseUrl::Sqlite(
                self.data_dir.join("dma.sqlite3"),
            )),
        }
    }

    /// Open the configured database's pool and bring its schema up to date.
    pub async fn open_database(&self) -> Result<crate::db::Db, AppError> {
        crate::db::Db::open(&self.database()?, self.db_pool_size).await
    }

    fn validate(layer: &Layer) -> Result<Self, ConfigError> {
        let data_dir = layer
            .get("data_dir")
            .map(|(v, _)| PathBuf::from(v))
            .unwrap_or_else(|| PathBuf::from("data"));
        let database_url = match layer.get("database_url") {
            Some((v, src)) => {
                crate::db::DatabaseUrl::parse(v).map_err(|m| err(src, m))?;
                Some(Secret::new(v))
            }
            None => None,
        };
        let bind: SocketAddr = match layer.get("bind") {
            Some((v, src)) => v.parse().map_err(|_| {
                err(
                    src,
                    format!("\"{v}\" is not an address to listen on; write it like 127.0.0.1:8080"),
                )
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let base_url = match layer.get("base_url") {
            Some((v, src)) => {
                if !(v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(err(
                        src,
                        "must start with http:// or https://, e.g. https://dma.example.nhs.uk",
                    ));
                }
                v.trim_end_matches('/').to_string()
            }
            None => format!("http://{bind}"),
        };
        let secret_key = match layer.get("secret_key") {
            Some((v, src)) if v.chars().count() < 32 => {
                return Err(err(src, "must be at least 32 characters long"))
            }
            Some((v, _)) => Secret::new(v),
            None => load_or_create_secret(&data_dir)?,
        };
        let sealing_key =
            crate::crypto::SealingKey::derive(secret_key.expose(), crate::crypto::OUTBOX_SEALING);
        let totp_key =
            crate::crypto::SealingKey::derive(secret_key.expose(), crate::crypto::TOTP_SEALING);
        let second_factor_roles = match layer.get("second_factor_roles") {
            None => vec!["administrator".to_string(), "auditor".to_string()],
            Some((v, src)) => {
                let mut roles = Vec::new();
                // "none": nobody must (an empty value means the default, as for every key).
                let named = v.split(',').map(str::trim).filter(|p| !p.is_empty());
                for part in named.filter(|p| !p.eq_ignore_ascii_case("none")) {
                    if !ROLE_NAMES.contains(&part) {
                        return Err(err(
                            src,
                            format!(
                                "\"{part}\" is not a role; write some of {}",
                                ROLE_NAMES.join(", ")
                            ),
                        ));
                    }
                    roles.push(part.to_string());
                }
                roles
            }
        };
        let smtp = match layer.get("smtp_host") {
            None => None,
            Some((host, _)) => {
                let security = match layer.get("smtp_security") {
                    None => SmtpSecurity::StartTls,
                    Some((v, src)) => match v.to_ascii_lowercase().as_str() {
                        "plain" | "none" => SmtpSecurity::Plain,
                        "starttls" => SmtpSecurity::StartTls,
                        "tls" | "ssl" => SmtpSecurity::Tls,
                        _ => return Err(err(src, "must be plain, starttls or tls")),
                    },
                };
                let default_port = match security {
                    SmtpSecurity::Plain => 25,
                    SmtpSecurity::StartTls => 587,
                    SmtpSecurity::Tls => 465,
                };
                Some(SmtpSettings {
                    host: host.to_string(),
                    port: number(layer, "smtp_port", default_port, 1, 65535)?,
                    security,
                    username: layer.get("smtp_username").map(|(v, _)| v.to_string()),
                    password: layer.get("smtp_password").map(|(v, _)| Secret::new(v)),
                    timeout_secs: number(layer, "smtp_timeout_secs", 30, 1, 600)?,
                })
            }
        };
        let reminder_days = day_list(layer, "reminder_days", &[28, 14, 7, 2])?;
        let section_reminder_days = day_list(layer, "section_reminder_days", &[7, 2])?;
        let from = layer
            .get("mail_from")
            .map(|(v, _)| v.to_string())
            .unwrap_or_else(|| "Digital maturity assessment <noreply@localhost>".to_string());
        if let Some((v, src)) = layer.get("mail_from") {
            if v.parse::<lettre::message::Mailbox>().is_err() {
                return Err(err(
                    src,
                    "is not an email address; write e.g. \"DMA <dma@example.nhs.uk>\"",
                ));
            }
        }
        let workers = match layer.get("workers") {
            Some(_) => number(layer, "workers", 1, 1, 512)?,
            None => std::thread::available_parallelism().map_or(2, usize::from),
        };
        Ok(Settings {
            database_url,
            bind,
            base_url_from_bind: layer.get("base_url").is_none(),
            base_url,
            secret_key,
            db_pool_size: number(layer, "db_pool_size", 10, 1, 1000)?,
            session_idle_minutes: number(layer, "session_idle_minutes", 60, 1, 24 * 60)?,
            session_absolute_hours: number(layer, "session_absolute_hours", 12, 1, 24 * 30)?,
            max_upload_bytes: number(layer, "max_upload_bytes", 2 * 1024 * 1024, 1024, 1 << 30)?,
            mail: MailSettings {
                smtp,
                from,
                file_dir: layer
                    .get("mail_dir")
                    .map(|(v, _)| PathBuf::from(v))
                    .unwrap_or_else(|| data_dir.join("mail")),
                max_attempts: number(layer, "mail_max_attempts", 8, 1, 100)?,
                reminder_days,
                section_reminder_days,
                templates_dir: layer.get("templates_dir").map(|(v, _)| PathBuf::from(v)),
                sealing_key,
            },
            workers,
            data_dir,
            retention: RetentionSettings {
                sessions_days: number(layer, "retention_sessions_days", 30, 0, 36500)?,
                links_days: number(layer, "retention_links_days", 30, 0, 36500)?,
                mail_body_days: number(layer, "retention_mail_body_days", 90, 0, 36500)?,
                answer_history_years: number(layer, "retention_answer_history_years", 0, 0, 100)?,
            },
            ops: OpsSettings {
                metrics_bind: match layer.get("metrics_bind") {
                    Some((v, src)) => Some(v.parse().map_err(|_| {
                        err(
                            src,
                            format!("\"{v}\" is not an address to listen on; write it like 127.0.0.1:9090"),
                        )
                    })?),
                    None => None,
                },
                metrics_token: match layer.get("metrics_token") {
                    Some((v, src)) if v.chars().count() < 16 => {
                        return Err(err(src, "must be at least 16 characters long"))
                    }
                    Some((v, _)) => Some(Secret::new(v)),
                    None => None,
                },
                instance_name: match layer.get("instance_name") {
                    Some((v, src))
                        if v.len() > 64
                            || !v
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
                    {
                        return Err(err(
                            src,
                            "must be up to 64 letters, digits, '-', '_' or '.'",
                        ))
                    }
                    Some((v, _)) => Some(v.to_string()),
                    None => None,
                },
            },
            auth: AuthSettings {
                second_factor_roles,
                reauth_minutes: number(layer, "reauth_minutes", 10, 1, 24 * 60)?,
                totp_key,
                sso_providers: sso_providers(layer)?,
            },
            evidence: EvidenceSettings {
                max_file_bytes: number(layer, "evidence_max_file_bytes", 20 << 20, 1024, 1 << 30)?,
                max_assessment_bytes: number(
                    layer,
                    "evidence_max_assessment_bytes",
                    200 << 20,
                    1024,
                    1 << 40,
                )?,
            },
        })
    }
}

/// A comma-separated list of days before a date (`28,14,7,2`), largest first, each once.
fn day_list(layer: &Layer, key: &str, default: &[u32]) -> Result<Vec<u32>, ConfigError> {
    let Some((v, src)) = layer.get(key) else {
        return Ok(default.to_vec());
    };
    let mut days = Vec::new();
    for part in v.split(',') {
        let day: u32 = part.trim().parse().map_err(|_| {
            err(
                src,
                format!(
                    "\"{}\" is not a whole number of days; write e.g. 28,14,7,2",
                    part.trim()
                ),
            )
        })?;
        days.push(day);
    }
    days.sort_unstable_by(|a, b| b.cmp(a));
    days.dedup();
    Ok(days)
}

/// The providers `oidc_providers` names, each with its issuer (https, or http on loopback
/// for tests), client id and secret.
fn sso_providers(layer: &Layer) -> Result<Vec<SsoProvider>, ConfigError> {
    let Some((list, list_src)) = layer.get("oidc_providers") else {
        return Ok(Vec::new());
    };
    let mut providers: Vec<SsoProvider> = Vec::new();
    for key in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        let key = key.to_ascii_lowercase();
        if key.len() > 32
            || !key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(err(
                list_src,
                format!(
                    "\"{key}\" is not a provider name: use up to 32 letters and digits, e.g. cis2"
                ),
            ));
        }
        if providers.iter().any(|p| p.key == key) {
            return Err(err(list_src, format!("names \"{key}\" twice")));
        }
        let field = |name: &str| {
            layer
                .sso
                .get(&(key.clone(), name.to_string()))
                .filter(|(v, _)| !v.trim().is_empty())
                .map(|(v, src)| (v.trim().to_string(), src.clone()))
        };
        let missing = |name: &str| {
            err(
                &format!(
                    "DMA_OIDC_{}_{}",
                    key.to_ascii_uppercase(),
                    name.to_ascii_uppercase()
                ),
                format!("is needed because {list_src} names \"{key}\""),
            )
        };
        let (issuer, issuer_src) = field("issuer").ok_or_else(|| missing("issuer"))?;
        let parsed = url::Url::parse(&issuer).map_err(|_| {
            err(
                &issuer_src,
                "is not a URL; write the issuer, e.g. https://login.example/tenant/v2.0",
            )
        })?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
            return Err(err(
                &issuer_src,
                "must be an https:// URL (http:// only on this machine, for tests)",
            ));
        }
        let (client_id, _) = field("client_id").ok_or_else(|| missing("client_id"))?;
        let (client_secret, _) = field("client_secret").ok_or_else(|| missing("client_secret"))?;
        let label = field("label").map_or_else(|| key.clone(), |(v, _)| v);
        providers.push(SsoProvider {
            key,
            label: label.chars().take(60).collect(),
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id,
            client_secret: Secret::new(client_secret),
        });
    }
    Ok(providers)
}

fn number<T>(layer: &Layer, key: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    match layer.get(key) {
        None => Ok(default),
        Some((v, src)) => match v.trim().parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(n),
            _ => Err(err(
                src,
                format!("must be a whole number from {min} to {max}, not \"{v}\""),
            )),
        },
    }
}

fn read_file(path: &Path, layer: &mut Layer) -> Result<(), ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(&name, format!("cannot read the configuration file: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(&name, format!("is not valid TOML: {}", e.message())))?;
    for (k, v) in table {
        if k == "oidc" {
            read_sso_table(&name, v, layer)?;
            continue;
        }
        let Some((key, _, _)) = KEYS.iter().find(|(key, _, _)| *key == k) else {
            return Err(err(
                &format!("{k} (in {name})"),
                "is not a configuration key; see .env.example for the list",
            ));
        };
        let value = match v {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Array(items) => {
                items.iter().map(scalar_text).collect::<Vec<_>>().join(",")
            }
            other => scalar_text(&other),
        };
        layer
            .values
            .insert(key, (value, format!("{k} (in {name})")));
    }
    Ok(())
}

/// `[oidc.<name>]` tables: each provider's fields, as `DMA_OIDC_<NAME>_<FIELD>` would give them.
fn read_sso_table(file: &str, value: toml::Value, layer: &mut Layer) -> Result<(), ConfigError> {
    let toml::Value::Table(providers) = value else {
        return Err(err(
            &format!("oidc (in {file})"),
            "must be a table of providers, [oidc.<name>]",
        ));
    };
    for (name, fields) in providers {
        let toml::Value::Table(fields) = fields else {
            return Err(err(&format!("oidc.{name} (in {file})"), "must be a table"));
        };
        for (field, v) in fields {
            if !SSO_FIELDS.contains(&field.as_str()) {
                return Err(err(
                    &format!("oidc.{name}.{field} (in {file})"),
                    format!("is not a provider setting; use {}", SSO_FIELDS.join(", ")),
                ));
            }
            layer.sso.insert(
                (name.to_ascii_lowercase(), field.clone()),
                (scalar_text(&v), format!("oidc.{name}.{field} (in {file})")),
            );
        }
    }
    Ok(())
}

/// A TOML scalar as the text an environment variable would hold.
fn scalar_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) | toml::Value::Table(_) => String::new(),
    }
}

/// With no configured key, keep one in the data folder so sessions and CSRF tokens survive a
/// restart of the embedded default. Production sets `DMA_SECRET_KEY` explicitly.
fn load_or_create_secret(data_dir: &Path) -> Result<Secret, ConfigError> {
    let path = data_dir.join("secret-key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(Secret::new(existing));
        }
    }
    std::fs::create_dir_all(data_dir).map_err(|e| {
        err(
            "DMA_DATA_DIR",
            format!("cannot create the data folder {}: {e}", data_dir.display()),
        )
    })?;
    let key = crate::crypto::random_token();
    write_private(&path, &key).map_err(|e| {
        err(
            "DMA_SECRET_KEY",
            format!(
                "unset, and the generated key cannot be saved to {}: {e}",
                path.display()
            ),
        )
    })?;
    Ok(Secret::new(key))
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let dir = tempfile::tempdir().unwrap().keep();
        let mut m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        m.entry("DMA_DATA_DIR".into())
            .or_insert_with(|| dir.display().to_string());
        m
    }

    #[test]
    fn defaults_are_valid() {
        let s = Settings::from_sources(None, &env(&[])).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert!(s.database_url.is_none());
        assert!(s.mail.smtp.is_none());
        assert_eq!(s.mail.reminder_days, vec![28, 14, 7, 2]);
        assert!(s.secret_key.expose().len() >= 32);
    }

    #[test]
    fn links_follow_the_bind_option_unless_a_base_url_is_set() {
        let mut s = Settings::from_sources(None, &env(&[])).unwrap();
        s.set_bind("127.0.0.1:9123".parse().unwrap());
        assert_eq!(s.base_url, "http://127.0.0.1:9123");
        let mut s =
            Settings::from_sources(None, &env(&[("DMA_BASE_URL", "https://dma.example")])).unwrap();
        s.set_bind("127.0.0.1:9123".parse().unwrap());
        assert_eq!(s.base_url, "https://dma.example");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (var, value) in [
            ("DMA_BIND", "localhost"),
            ("DATABASE_URL", "mysql://x"),
            ("DMA_SECRET_KEY", "short"),
            ("DMA_DB_POOL_SIZE", "0"),
            ("DMA_SMTP_SECURITY", "maybe"),
            ("DMA_REMINDER_DAYS", "28,soon"),
            ("DMA_BASE_URL", "dma.example"),
        ] {
            let mut e = env(&[(var, value)]);
            e.insert("DMA_SMTP_HOST".into(), "mail".into());
            let error = Settings::from_sources(None, &e).unwrap_err();
            assert_eq!(error.key, var, "{error}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let e = env(&[
            (
                "DMA_SECRET_KEY",
                "0123456789abcdef0123456789abcdef-very-secret",
            ),
            ("DMA_SMTP_HOST", "mail"),
            ("DMA_SMTP_PASSWORD", "hunter2-password"),
            ("DATABASE_URL", "postgres://u:pg-password@localhost/db"),
        ]);
        let s = Settings::from_sources(None, &e).unwrap();
        let printed = format!("{s:?}");
        for secret in ["very-secret", "hunter2-password", "pg-password"] {
            assert!(!printed.contains(secret), "{secret} leaked: {printed}");
        }
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dma.toml");
        std::fs::write(
            &file,
            "bind = \"0.0.0.0:9000\"\ndb_pool_size = 3\nreminder_days = [7, 30]\n",
        )
        .unwrap();
        let s = Settings::from_sources(Some(&file), &env(&[("DMA_DB_POOL_SIZE", "5")])).unwrap();
        assert_eq!(s.bind.port(), 9000);
        assert_eq!(s.db_pool_size, 5, "environment overrides the file");
        assert_eq!(s.mail.reminder_days, vec![30, 7]);

        std::fs::write(&file, "bnid = \"0.0.0.0:9000\"\n").unwrap();
        let error = Settings::from_sources(Some(&file), &env(&[])).unwrap_err();
        assert!(error.key.starts_with("bnid"), "{error}");
    }

    #[test]
    fn sso_providers_are_read_from_the_environment_or_the_file_and_checked() {
        let e = env(&[
            ("DMA_OIDC_PROVIDERS", "cis2, Entra"),
            ("DMA_OIDC_CIS2_ISSUER", "https://cis2.example/realm/"),
            ("DMA_OIDC_CIS2_CLIENT_ID", "dma"),
            ("DMA_OIDC_CIS2_CLIENT_SECRET", "cis2-very-secret"),
            ("DMA_OIDC_CIS2_LABEL", "NHS Care Identity"),
            ("DMA_OIDC_ENTRA_ISSUER", "http://127.0.0.1:9000"),
            ("DMA_OIDC_ENTRA_CLIENT_ID", "dma2"),
            ("DMA_OIDC_ENTRA_CLIENT_SECRET", "entra-very-secret"),
        ]);
        let s = Settings::from_sources(None, &e).unwrap();
        let p = &s.auth.sso_providers;
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].key.as_str(), p[0].label.as_str()),
            ("cis2", "NHS Care Identity")
        );
        assert_eq!(p[0].issuer, "https://cis2.example/realm");
        assert_eq!((p[1].key.as_str(), p[1].label.as_str()), ("entra", "entra"));
        let printed = format!("{s:?}");
        assert!(!printed.contains("very-secret"), "{printed}");

        for (var, value, named) in [
            ("DMA_OIDC_CIS2_ISSUER", "", "DMA_OIDC_CIS2_ISSUER"),
            (
                "DMA_OIDC_CIS2_ISSUER",
                "http://cis2.example",
                "DMA_OIDC_CIS2_ISSUER",
            ),
            (
                "DMA_OIDC_CIS2_CLIENT_SECRET",
                "",
                "DMA_OIDC_CIS2_CLIENT_SECRET",
            ),
            ("DMA_OIDC_PROVIDERS", "cis2,cis2", "DMA_OIDC_PROVIDERS"),
            ("DMA_OIDC_PROVIDERS", "nhs_mail", "DMA_OIDC_PROVIDERS"),
        ] {
            let mut bad = e.clone();
            bad.insert(var.into(), value.into());
            let error = Settings::from_sources(None, &bad).unwrap_err();
            assert_eq!(error.key, named, "{var}={value}: {error}");
        }

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dma.toml");
        std::fs::write(
            &file,
            "oidc_providers = [\"cis2\"]\n[oidc.cis2]\nissuer = \"https://cis2.example\"\nclient_id = \"dma\"\nclient_secret = \"s\"\n",
        )
        .unwrap();
        let s = Settings::from_sources(Some(&file), &env(&[])).unwrap();
        assert_eq!(s.auth.sso_providers[0].client_id, "dma");
        std::fs::write(&file, "[oidc.cis2]\nisuer = \"https://cis2.example\"\n").unwrap();
        let error = Settings::from_sources(Some(&file), &env(&[])).unwrap_err();
        assert!(error.key.starts_with("oidc.cis2.isuer"), "{error}");
    }

    #[test]
    fn env_example_documents_every_key() {
        let example = include_str!("../.env.example");
        for (_, var, _) in KEYS {
            assert!(example.contains(var), ".env.example lacks {var}");
        }
    }
}
