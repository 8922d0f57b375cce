//! One error type for the whole application. It separates what a user is told (a plain
//! sentence, field errors) from what is logged (the cause chain, with a reference the user can
//! quote). Handlers return `Result<_, AppError>`; the `web::errors` middleware turns any error
//! response into an HTML page or, under `/api`, an RFC 9457 problem document.

use actix_web::http::StatusCode;
use actix_web::ResponseError;

use crate::domain::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    /// Not signed in (pages redirect to the sign-in page; the API answers 401).
    #[error("sign in required")]
    Unauthenticated,
    #[error("forbidden")]
    Forbidden,
    #[error("{0}")]
    BadRequest(String),
    /// Input that failed validation; every problem at once, by field path.
    #[error("{} validation error(s)", .0.len())]
    Validation(Vec<FieldError>),
    /// A stale edit or a state that no longer allows the action.
    #[error("{0}")]
    Conflict(String),
    /// Edits made against revisions that have changed since: nothing was stored. `current`
    /// holds what is stored now (the problem document's `conflicts` member).
    #[error("{message}")]
    StaleRevision {
        message: String,
        current: serde_json::Value,
    },
    /// A body in a format this endpoint does not read (the API: JSON or YAML only).
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("too many attempts: {0}")]
    TooManyRequests(String),
    /// A dependency (the database) cannot be reached: 503, with the cause logged.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The database cannot store more (a full disk): 503, with the cause logged. The
    /// transaction was rolled back, so nothing of the request was stored.
    #[error("storage full: {0}")]
    StorageFull(String),
    #[error("database error")]
    Database(#[source] diesel::result::Error),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// A database restart takes seconds; a full disk needs an operator.
pub const RETRY_AFTER_UNAVAILABLE_SECS: u32 = 5;
pub const RETRY_AFTER_FULL_SECS: u32 = 60;

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        AppError::Unavailable(format!("no database connection: {e}"))
    }
}

/// How the database failed, for the few failures that are not a fault of the service.
#[derive(Debug, PartialEq, Eq)]
enum DatabaseFailure {
    /// The connection is gone or the server refuses work: it was stopped, restarted or is
    /// unreachable. Trying again shortly may succeed.
    Unreachable,
    /// SQLite could not grow the file (`SQLITE_FULL`: the disk, or `max_page_count`).
    Full,
    /// Some other error: a fault.
    Other,
}

/// PostgreSQL's messages for a server that is going away or not yet accepting work (SQLSTATE
/// classes 08 and 57P), and libpq's for a lost connection; diesel reports most of these as
/// `ClosedConnection`, the messages catch the rest.
const UNREACHABLE_MESSAGES: &[&str] = &[
    "terminating connection",
    "server closed the connection",
    "no connection to the server",
    "connection to server",
    "could not connect",
    "could not send data to server",
    "could not receive data from server",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "ssl connection has been closed unexpectedly",
];

fn classify(e: &diesel::result::Error) -> DatabaseFailure {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
            DatabaseFailure::Unreachable
        }
        Error::DatabaseError(_, info) => {
            let message = info.message().to_lowercase();
            if message.contains("database or disk is full") {
                DatabaseFailure::Full
            } else if UNREACHABLE_MESSAGES.iter().any(|m| message.contains(m)) {
                DatabaseFailure::Unreachable
            } else {
                DatabaseFailure::Other
            }
        }
        // A transaction whose connection failed under it: the cause is either error.
        Error::RollbackErrorOnCommit {
            rollback_error,
            commit_error,
        } => match (classify(commit_error), classify(rollback_error)) {
            (DatabaseFailure::Other, other) => other,
            (first, _) => first,
        },
        Error::BrokenTransactionManager => DatabaseFailure::Unreachable,
        _ => DatabaseFailure::Other,
    }
}

/// Every database error is a server fault except three. Text the database cannot store:
/// PostgreSQL refuses a NUL character in any text value (SQLite would keep it); that is the
/// sender's to fix, whichever form field or filter carried it, so it is answered 400. A
/// database that cannot be reached (stopped, restarting) and a full disk are outages, not
/// faults: 503 with `Retry-After`. In each case the transaction is rolled back and nothing is
/// stored.
impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        match &e {
            diesel::result::Error::DatabaseError(_, info)
                if info.message().contains("invalid byte sequence")
                    && info.message().contains("0x00") =>
            {
                AppError::BadRequest(
                    "The text contains a NUL character (code 0), which cannot be stored. \
                     Remove it and try again."
                        .into(),
                )
            }
            _ => match classify(&e) {
                DatabaseFailure::Unreachable => {
                    AppError::Unavailable(format!("the database connection failed: {e}"))
                }
                DatabaseFailure::Full => AppError::StorageFull(e.to_string()),
                DatabaseFailure::Other => AppError::Database(e),
            },
        }
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::Internal(anyhow::anyhow!("blocking task failed: {e}"))
    }
}

impl AppError {
    /// A stable identifier for the kind of error (the problem document's `type`).
    pub fn kind(&self) -> &'static str {
        match self {
            AppError::NotFound => "not-found",
            AppError::Unauthenticated => "unauthenticated",
            AppError::Forbidden => "forbidden",
            AppError::BadRequest(_) => "bad-request",
            AppError::Validation(_) => "validation",
            AppError::Conflict(_) => "conflict",
            AppError::StaleRevision { .. } => "stale-revision",
            AppError::UnsupportedMediaType(_) => "unsupported-media-type",
            AppError::PayloadTooLarge(_) => "payload-too-large",
            AppError::TooManyRequests(_) => "too-many-requests",
            AppError::Unavailable(_) | AppError::StorageFull(_) => "unavailable",
            AppError::Database(_) | AppError::Internal(_) => "internal",
        }
    }

    /// What the user may be told. Server-side causes stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            AppError::NotFound => "The page or record you asked for does not exist.".into(),
            AppError::Unauthenticated => "Sign in to continue.".into(),
            AppError::Forbidden => "You do not have permission to do this.".into(),
            AppError::BadRequest(m)
            | AppError::Conflict(m)
            | AppError::UnsupportedMediaType(m)
            | AppError::StaleRevision { message: m, .. } => m.clone(),
            AppError::Validation(errors) => match errors.as_slice() {
                [one] => one.to_string(),
                _ => format!("There are {} problems with what was sent.", errors.len()),
            },
            AppError::PayloadTooLarge(limit) => {
                format!(
                    "The upload is too large. The limit is {}.",
                    human_bytes(*limit)
                )
            }
            AppError::TooManyRequests(m) => m.clone(),
            AppError::Unavailable(_) => {
                "The service is temporarily unavailable, so nothing from this request was saved. Try again in a few minutes.".into()
            }
            AppError::StorageFull(_) => {
                "The service cannot store your answer now, so nothing from this request was saved. Try again later.".into()
            }
            AppError::Database(_) | AppError::Internal(_) => {
                "Sorry, there is a problem with the service. Try again later.".into()
            }
        }
    }

    /// Extra members of the problem document, beyond type, title, status and detail.
    pub fn problem_members(&self) -> Option<(&'static str, serde_json::Value)> {
        match self {
            AppError::StaleRevision { current, .. } => Some(("conflicts", current.clone())),
            _ => None,
        }
    }

    /// For an outage, how many seconds a client should wait before trying again (the
    /// `Retry-After` header).
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            AppError::Unavailable(_) => Some(RETRY_AFTER_UNAVAILABLE_SECS),
            AppError::StorageFull(_) => Some(RETRY_AFTER_FULL_SECS),
            _ => None,
        }
    }

    /// Whether the cause belongs in the error log (server faults) rather than being the
    /// user's to fix.
    pub fn is_server_fault(&self) -> bool {
        self.status_code().is_server_error()
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) | AppError::StaleRevision { .. } => StatusCode::CONFLICT,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) | AppError::StorageFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Database(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

pub fn human_bytes(n: usize) -> String {
    if n >= 1024 * 1024 {
        format!("{:.0} MB", n as f64 / (1024.0 * 1024.0))
    } else if n >= 1024 {
        format!("{:.0} KB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

/// The full cause chain of an error, for the log.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
