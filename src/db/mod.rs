//! Storage: one diesel schema over two backends. PostgreSQL serves production; SQLite is the
//! embedded default so `dma serve` works on a fresh machine with no database server. The
//! backend is chosen from the URL's scheme, and the few places where the two differ match on
//! [`DbConnection`] here rather than across the code base.
//!
//! Every unit of work runs on the blocking pool ([`Db::read`], [`Db::write`]) because diesel is
//! synchronous; `pool.get()` happens there too, so a slow pool never stalls the async workers.

pub mod schema;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::AppError;

pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// A connection to either backend. Queries written against it compile for both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Postgres => "PostgreSQL",
            Backend::Sqlite => "SQLite",
        })
    }
}

impl DbConnection {
    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Pg(_) => Backend::Postgres,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Evaluate the same diesel code against the concrete connection `conn` wraps, for the few
/// statements `DbConnection` cannot build itself. Today that is the multi-row `INSERT`:
/// diesel assembles SQLite's batch insert only for a `SqliteConnection` (and only when no
/// value is `DEFAULT`, so such rows derive `Insertable` with
/// `treat_none_as_default_value = false`). The body is compiled once per backend.
macro_rules! with_concrete_connection {
    ($conn:expr, $c:ident => $body:expr) => {
        match &mut *$conn {
            $crate::db::DbConnection::Pg($c) => $body,
            $crate::db::DbConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use with_concrete_connection;

#[diesel::declare_sql_function]
extern "SQL" {
    /// SQL `lower()`, the same on both backends, for case-insensitive text filters (SQLite's
    /// folds ASCII letters only).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// `%` and `_` are wildcards in SQL `LIKE`; this makes them literal (with `\` as the escape).
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A parsed `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// `postgres://` and `postgresql://` select PostgreSQL; `sqlite://PATH`, `sqlite:PATH` or a
    /// plain file path select SQLite.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        let path = if let Some(rest) = url.strip_prefix("sqlite://") {
            rest
        } else if let Some(rest) = url.strip_prefix("sqlite:") {
            rest
        } else if url.contains("://") {
            return Err(
                "must start with postgres:// or sqlite:// (or be a path to a SQLite file)"
                    .to_string(),
            );
        } else {
            url
        };
        if path.is_empty() || path.contains(":memory:") {
            return Err(
                "needs a file path for SQLite (an in-memory database cannot be shared by the pool)"
                    .to_string(),
            );
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Postgres(_) => Backend::Postgres,
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// What to show in logs: the backend and, for SQLite, the file; never credentials.
    pub fn describe(&self) -> String {
        match self {
            DatabaseUrl::Postgres(url) => {
                let host = url
                    .split_once('@')
                    .map(|(_, rest)| rest)
                    .or_else(|| url.split_once("://").map(|(_, rest)| rest))
                    .unwrap_or("");
                format!("PostgreSQL at {host}")
            }
            DatabaseUrl::Sqlite(path) => format!("SQLite file {}", path.display()),
        }
    }

    fn connection_string(&self) -> String {
        match self {
            DatabaseUrl::Postgres(url) => url.clone(),
            DatabaseUrl::Sqlite(path) => path.display().to_string(),
        }
    }
}

/// Sets per-connection options the moment r2d2 opens a connection.
#[derive(Debug)]
struct ConnectionOptions;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for ConnectionOptions {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        configure(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}

fn configure(conn: &mut DbConnection) -> diesel::QueryResult<()> {
    match conn {
        // WAL lets readers work while one writer commits; the busy timeout makes a second
        // writer (such as a CLI command beside the server) wait instead of failing.
        DbConnection::Sqlite(c) => c.batch_execute(
            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
        ),
        DbConnection::Pg(c) => c.batch_execute("SET TIME ZONE 'UTC'"),
    }
}

/// Open a single connection (CLI commands and tests), configured like pooled ones.
pub fn establish(url: &DatabaseUrl) -> Result<DbConnection, AppError> {
    prepare_location(url)?;
    let mut conn = DbConnection::establish(&url.connection_string())
        .map_err(|e| AppError::Unavailable(format!("cannot connect to {}: {e}", url.describe())))?;
    configure(&mut conn)?;
    Ok(conn)
}

fn prepare_location(url: &DatabaseUrl) -> Result<(), AppError> {
    if let DatabaseUrl::Sqlite(path) = url {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                AppError::Unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
    }
    Ok(())
}

/// Bring the schema up to date.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, AppError> {
    let applied = match conn {
        DbConnection::Pg(c) => c.run_pending_migrations(PG_MIGRATIONS),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(|e| AppError::Internal(anyhow::anyhow!("migration failed: {e}")))?;
    Ok(applied.iter().map(ToString::to_string).collect())
}

/// Undo every migration (used by the up-down-up test).
pub fn revert_all_migrations(conn: &mut DbConnection) -> Result<Vec<String>, AppError> {
    let reverted = match conn {
        DbConnection::Pg(c) => c.revert_all_migrations(PG_MIGRATIONS),
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(|e| AppError::Internal(anyhow::anyhow!("reverting migrations failed: {e}")))?;
    Ok(reverted.iter().map(ToString::to_string).collect())
}

pub type DbPool = Pool<ConnectionManager<DbConnection>>;
pub type PooledDb = PooledConnection<ConnectionManager<DbConnection>>;

/// The application's handle on the database: a pool plus, for SQLite, the lock that keeps
/// writers in single file (SQLite allows one writer; queueing here avoids "database is
/// locked" errors when a read transaction would have to upgrade).
#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    backend: Backend,
    sqlite_writer: Arc<std::sync::Mutex<()>>,
}

impl Db {
    /// Open a pool, creating the SQLite file's folder when needed, and migrate.
    pub fn connect(url: &DatabaseUrl, size: u32) -> Result<Self, AppError> {
        prepare_location(url)?;
        let manager = ConnectionManager::<DbConnection>::new(url.connection_string());
        let pool = Pool::builder()
            .max_size(size)
            // No background connection opening: each connection is made for a caller that
            // waits for it. A pool that tops itself up can still be mid-handshake inside
            // libpq/OpenSSL when a short-lived command exits, which crashes the process.
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(ConnectionOptions))
            .build(manager)
            .map_err(|e| {
                AppError::Unavailable(format!("cannot connect to {}: {e}", url.describe()))
            })?;
        Ok(Db {
            pool,
            backend: url.backend(),
            sqlite_writer: Arc::new(std::sync::Mutex::new(())),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Run read-only work on the blocking pool.
    pub async fn read<F, T>(&self, f: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await?
    }

    /// Run work that changes data, in one transaction, on the blocking pool.
    pub async fn write<F, T>(&self, f: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        actix_web::web::block(move || db.write_blocking(f)).await?
    }

    /// The blocking form of [`Db::write`], for code already on a blocking thread.
    pub fn write_blocking<F, T>(&self, f: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, AppError>,
    {
        let _guard = match self.backend {
            Backend::Sqlite => Some(
                self.sqlite_writer
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            ),
            Backend::Postgres => None,
        };
        let mut pooled = self.pool.get()?;
        let conn: &mut DbConnection = &mut pooled;
        conn.transaction(f)
    }

    /// Bring the schema up to date (each migration runs in its own transaction).
    pub async fn migrate(&self) -> Result<Vec<String>, AppError> {
        self.read(run_migrations).await
    }

    /// On SQLite, gather the query planner's statistics for tables that have none or have
    /// grown since (`PRAGMA optimize = 0x10002`: bounded work, none when they are current).
    /// PostgreSQL's autovacuum does this by itself. Without them SQLite read every cycle's
    /// scores to find one cycle's figures (measured at 30,000 organisations: 1.07 s against
    /// 0.32 s). It writes, so it runs as a write, behind the writer lock: a writer outside
    /// it would make other write transactions fail with "database is locked".
    pub async fn optimize(&self) -> Result<(), AppError> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        self.write(|conn| {
            conn.batch_execute("PRAGMA optimize = 0x10002")?;
            Ok(())
        })
        .await
    }

    /// Whether the database answers a trivial query (the readiness probe).
    pub async fn ping(&self) -> Result<(), AppError> {
        self.read(|conn| {
            conn.batch_execute("SELECT 1")?;
            Ok(())
        })
        .await
    }
}
