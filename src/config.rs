//! Typed configuration, layered: built-in defaults, then an optional TOML file, then
//! environment variables. Everything is validated once at start-up so a typo in a deployment
//! fails immediately with a message naming the key, rather than at the first request that
//! needs it. Secrets live in [`Secret`], which never prints its value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    /// Folder whose templates override the built-in ones (same file names).
    pub templates_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `None` means the embedded SQLite file in `data_dir`.
    pub database_url: Option<Secret>,
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    pub base_url: String,
    pub secret_key: Secret,
    pub db_pool_size: u32,
    pub session_idle_minutes: i64,
    pub session_absolute_hours: i64,
    pub max_upload_bytes: usize,
    pub mail: MailSettings,
    pub workers: usize,
}

/// Every key the configuration understands, with its environment variable and meaning.
/// `.env.example` and the README document the same list; a test keeps them in step.
pub const KEYS: &[(&str, &str, &str)] = &[
    ("database_url", "DATABASE_URL", "postgres://... or sqlite://PATH; default: SQLite file in the data folder"),
    ("data_dir", "DMA_DATA_DIR", "folder for the embedded database, mail files and the generated secret key (default ./data)"),
    ("bind", "DMA_BIND", "address the web server listens on (default 127.0.0.1:8080)"),
    ("base_url", "DMA_BASE_URL", "public URL used in links in emails (default http://<bind>)"),
    ("secret_key", "DMA_SECRET_KEY", "at least 32 characters; signs CSRF tokens; generated into the data folder when unset"),
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
    ("templates_dir", "DMA_TEMPLATES_DIR", "folder of email templates overriding the built-in ones"),
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
        Self::validate(&layer)
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
        let reminder_days = match layer.get("reminder_days") {
            None => vec![28, 14, 7, 2],
            Some((v, src)) => {
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
                days
            }
        };
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
                templates_dir: layer.get("templates_dir").map(|(v, _)| PathBuf::from(v)),
            },
            workers,
            data_dir,
        })
    }
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
    let key = crate::auth::tokens::random_token();
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
    fn env_example_documents_every_key() {
        let example = include_str!("../.env.example");
        for (_, var, _) in KEYS {
            assert!(example.contains(var), ".env.example lacks {var}");
        }
    }
}
