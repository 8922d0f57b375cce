//! Storage: one diesel schema over two backends. PostgreSQL serves production; SQLite is the
//! embedded default so `dma serve` works on a fresh machine with no database server. The
//! backend is chosen from the URL's scheme, and the few places where the two differ match on
//! [`DbConnection`] here rather than across the code base.
//!
//! Every unit of work runs on the blocking pool ([`Db::read`], [`Db::write`]) because diesel is
//! synchronous; `pool.get()` happens there too, so a slow pool never stalls the async workers.

pub mod checkpoint;
pub mod schema;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::Pool;
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
}

/// Whether a connection may change data. On SQLite only the writer's connection may: every
/// other one is opened with `PRAGMA query_only`, so a write issued outside [`Db::write`] fails
/// at once ("attempt to write a readonly database") instead of racing the writer for SQLite's
/// lock and failing under load with "database is locked".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadOnly,
    ReadWrite,
}

/// Open one connection of the backend the URL names, configured for use. Each backend's own
/// `establish` is called directly: diesel's `MultiConnection::establish` tries every backend
/// in turn and reports only "Invalid connection url for multiconnection", which hid the real
/// cause (a refused connection, an unknown database, a bad password).
fn open(url: &DatabaseUrl, access: Access) -> Result<DbConnection, diesel::r2d2::Error> {
    let mut conn = match url {
        DatabaseUrl::Postgres(u) => DbConnection::Pg(
            PgConnection::establish(u).map_err(diesel::r2d2::Error::ConnectionError)?,
        ),
        DatabaseUrl::Sqlite(path) => DbConnection::Sqlite(
            SqliteConnection::establish(&path.display().to_string())
                .map_err(diesel::r2d2::Error::ConnectionError)?,
        ),
    };
    configure(&mut conn, access).map_err(diesel::r2d2::Error::QueryError)?;
    Ok(conn)
}

fn configure(conn: &mut DbConnection, access: Access) -> diesel::QueryResult<()> {
    match conn {
        // WAL lets readers work while one writer commits; the busy timeout makes a second
        // writer (such as a CLI command beside the server) wait instead of failing.
        // `synchronous = FULL` makes each commit durable before it is acknowledged: in WAL,
        // NORMAL can lose the last acknowledged commits on power loss (its cost, measured, is
        // in BENCHMARKS.md). A writer checkpoints only when the log is large: the server
        // checkpoints from a thread of its own (`checkpoint`).
        DbConnection::Sqlite(c) => {
            c.batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;",
            )?;
            match access {
                Access::ReadOnly => c.batch_execute("PRAGMA query_only = ON")?,
                Access::ReadWrite => c.batch_execute(&format!(
                    "PRAGMA wal_autocheckpoint = {}",
                    checkpoint::WRITER_AUTOCHECKPOINT
                ))?,
            }
            Ok(())
        }
        DbConnection::Pg(c) => c.batch_execute("SET TIME ZONE 'UTC'"),
    }
}

/// Opens pooled connections of one backend and access.
#[derive(Debug)]
struct Connector {
    url: DatabaseUrl,
    access: Access,
    outage: Outage,
}

/// When the database last failed a connection or a statement for want of a connection.
///
/// A pooled connection open when PostgreSQL stopped is dead when it comes back, and the pool
/// cannot tell without a round trip. Testing every checkout with `SELECT 1` costs a round
/// trip per unit of work (two per autosave) for an event that is rare; never testing hands
/// each dead connection to one more request, answered 503 after the database is back. So
/// connections are tested on checkout only for [`Outage::WINDOW`] after a failure: while
/// the database is down (every request fails and renews the window) and in the minute after
/// it is back, when the dead connections are found and replaced before any request uses
/// them.
#[derive(Debug, Clone, Default)]
struct Outage(Arc<std::sync::atomic::AtomicI64>);

impl Outage {
    const WINDOW: Duration = Duration::from_secs(60);

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }

    fn note(&self) {
        self.0
            .store(Self::now(), std::sync::atomic::Ordering::Relaxed);
    }

    fn recent(&self) -> bool {
        let at = self.0.load(std::sync::atomic::Ordering::Relaxed);
        at != 0 && Self::now() - at <= Self::WINDOW.as_secs() as i64
    }

    /// Note `result`'s failure if it is the database being unreachable.
    fn watch<T>(&self, result: Result<T, AppError>) -> Result<T, AppError> {
        if matches!(result, Err(AppError::Unavailable(_))) {
            self.note();
        }
        result
    }
}

impl diesel::r2d2::ManageConnection for Connector {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        open(&self.url, self.access)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        if !self.outage.recent() {
            return Ok(());
        }
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || diesel::r2d2::R2D2Connection::is_broken(conn)
    }
}

/// Open a single connection (CLI commands and tests), configured like pooled ones; it may
/// write, so it is for code that does not share a database with a running pool's writer or
/// that waits on SQLite's lock (the busy timeout) like any second process.
pub fn establish(url: &DatabaseUrl) -> Result<DbConnection, AppError> {
    prepare_location(url)?;
    open(url, Access::ReadWrite)
        .map_err(|e| AppError::Unavailable(format!("cannot connect to {}: {e}", url.describe())))
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

type DbPool = Pool<Connector>;

/// Run `f` in a transaction: commit what it returns `Ok`, roll back on `Err`. Unlike
/// diesel's `Connection::transaction`, a failed rollback never replaces the error that caused
/// it: SQLite ends the transaction itself on some errors (a full disk, `SQLITE_FULL`), and a
/// lost PostgreSQL connection cannot roll back, and in both cases the first error is the
/// one that says what happened (it decides between 503 and 500). A connection whose
/// transaction could not be ended is discarded by the pool (`has_broken`).
fn in_transaction<T>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, AppError>,
) -> Result<T, AppError> {
    use diesel::connection::TransactionManager;
    type Manager = <DbConnection as Connection>::TransactionManager;
    Manager::begin_transaction(conn)?;
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => {
            match Manager::rollback_transaction(conn) {
                Ok(()) | Err(diesel::result::Error::NotInTransaction) => {}
                Err(rollback) => tracing::warn!(
                    error = %rollback,
                    "rolling back a failed transaction failed too"
                ),
            }
            Err(error)
        }
    }
}

/// The application's handle on the database. On PostgreSQL, one pool serves reads and
/// writes. On SQLite, which allows one writer, there are two: readers opened `query_only`,
/// and the writer, one connection behind a process-wide lock that queues writers in single
/// file (SQLite's own lock would make a transaction that upgrades from read to write fail with
/// "database is locked"). So every SQLite write goes through the one writer by construction:
/// [`Db::read`] hands out a connection that cannot write.
#[derive(Clone)]
pub struct Db {
    url: DatabaseUrl,
    readers: DbPool,
    writer: DbPool,
    backend: Backend,
    sqlite_writer: Arc<std::sync::Mutex<()>>,
    outage: Outage,
}

/// Where a [`Db::read_cancellable`] is: its request side and its blocking side share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ticket {
    Waiting,
    /// Running on the connection of this PostgreSQL backend (`None` on SQLite).
    Running(Option<i32>),
    Finished,
    Abandoned,
}

type SharedTicket = Arc<std::sync::Mutex<Ticket>>;

impl Ticket {
    fn lock(ticket: &SharedTicket) -> std::sync::MutexGuard<'_, Ticket> {
        ticket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Mark the work started, unless its request was abandoned first.
    fn start(ticket: &SharedTicket, pid: Option<i32>) -> bool {
        let mut t = Ticket::lock(ticket);
        if *t == Ticket::Abandoned {
            return false;
        }
        *t = Ticket::Running(pid);
        true
    }

    fn finish(ticket: &SharedTicket) {
        *Ticket::lock(ticket) = Ticket::Finished;
    }
}

/// Dropped with the request's future: abandons the read it was waiting for.
struct Abandon {
    ticket: SharedTicket,
    /// The cancel goes over a connection of its own: the pool may be exhausted by the very
    /// reads being abandoned.
    url: DatabaseUrl,
}

impl Abandon {
    /// The read returned: nothing to abandon.
    fn disarm(self) {
        *Ticket::lock(&self.ticket) = Ticket::Finished;
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        let mut t = Ticket::lock(&self.ticket);
        match *t {
            Ticket::Waiting => *t = Ticket::Abandoned,
            Ticket::Running(Some(pid)) => {
                *t = Ticket::Abandoned;
                drop(t);
                // The cancel needs a connection, so it is sent from a thread of its own; it
                // holds the ticket while it sends, and the read marks itself finished under
                // the same lock before its connection returns to the pool, so the cancel
                // reaches this read's statement or, if it has just ended, an idle backend,
                // which ignores it, and never the connection's next user.
                let (ticket, url) = (self.ticket.clone(), self.url.clone());
                std::thread::spawn(move || {
                    let t = Ticket::lock(&ticket);
                    if *t != Ticket::Abandoned {
                        return;
                    }
                    if let Ok(DbConnection::Pg(mut pg)) = open(&url, Access::ReadWrite) {
                        let cancelled = diesel::RunQueryDsl::execute(
                            diesel::sql_query(format!("SELECT pg_cancel_backend({pid})")),
                            &mut pg,
                        );
                        tracing::debug!(pid, ok = cancelled.is_ok(), "cancelled an abandoned read");
                    }
                    drop(t);
                });
            }
            _ => {}
        }
    }
}

/// The PostgreSQL backend serving `conn`.
fn backend_pid(conn: &mut PgConnection) -> Result<i32, AppError> {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let row: Pid =
        diesel::RunQueryDsl::get_result(diesel::sql_query("SELECT pg_backend_pid() AS pid"), conn)?;
    Ok(row.pid)
}

fn pool(url: &DatabaseUrl, access: Access, size: u32, outage: &Outage) -> Result<DbPool, AppError> {
    Pool::builder()
        .max_size(size)
        // No background connection opening: each connection is made for a caller that
        // waits for it. A pool that tops itself up can still be mid-handshake inside
        // libpq/OpenSSL when a short-lived command exits, which crashes the process.
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(10))
        // Checked out connections are tested only after the database was lost (see
        // [`Outage`]): no `SELECT 1` round trip before each unit of work while all is well
        // (two per autosave), and no stale connection handed out after the database is back.
        .test_on_check_out(true)
        .event_handler(Box::new(crate::metrics::PoolEvents))
        .build(Connector {
            url: url.clone(),
            access,
            outage: outage.clone(),
        })
        .map_err(|e| AppError::Unavailable(format!("cannot connect to {}: {e}", url.describe())))
}

impl Db {
    /// Open the pools, creating the SQLite file's folder when needed.
    pub fn connect(url: &DatabaseUrl, size: u32) -> Result<Self, AppError> {
        prepare_location(url)?;
        let outage = Outage::default();
        let (readers, writer) = match url.backend() {
            Backend::Postgres => {
                let both = pool(url, Access::ReadWrite, size, &outage)?;
                (both.clone(), both)
            }
            Backend::Sqlite => (
                pool(url, Access::ReadOnly, size, &outage)?,
                pool(url, Access::ReadWrite, 1, &outage)?,
            ),
        };
        Ok(Db {
            url: url.clone(),
            readers,
            writer,
            backend: url.backend(),
            sqlite_writer: Arc::new(std::sync::Mutex::new(())),
            outage,
        })
    }

    /// Open the pool and bring the schema up to date: what every command and the server do
    /// before anything else.
    pub async fn open(url: &DatabaseUrl, pool_size: u32) -> Result<Self, AppError> {
        tracing::info!(database = %url.describe(), "opening database");
        let db = Db::connect(url, pool_size)?;
        let applied = db.migrate().await?;
        for m in applied {
            tracing::info!(migration = %m, "applied migration");
        }
        db.optimize().await?;
        Ok(db)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// On SQLite, start copying the write-ahead log back into the database file from a thread
    /// of its own, so no commit behind the writer lock does it ([`checkpoint`]); `None` on
    /// PostgreSQL. The server holds the handle: dropping it stops the thread.
    pub fn spawn_checkpointer(&self) -> Result<Option<checkpoint::Checkpointer>, AppError> {
        match self.backend {
            Backend::Sqlite => checkpoint::spawn(self.url.clone()).map(Some).map_err(|e| {
                AppError::Internal(anyhow::anyhow!("cannot start the checkpointer: {e}"))
            }),
            Backend::Postgres => Ok(None),
        }
    }

    /// Run read-only work on the blocking pool. On SQLite the connection is `query_only`: a
    /// write here is an error, not a race with the writer.
    pub async fn read<F, T>(&self, f: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.readers.clone();
        let outage = self.outage.clone();
        actix_web::web::block(move || {
            outage.watch(
                pool.get()
                    .map_err(AppError::from)
                    .and_then(|mut conn| f(&mut conn)),
            )
        })
        .await?
    }

    /// [`Db::read`] for long reads (the report pages): when the request's future is dropped
    /// before the work ends (the client went away: the server does not allow half-closed
    /// connections, so a closed client connection drops its request), work not yet started
    /// never starts, and on PostgreSQL a statement running is cancelled
    /// (`pg_cancel_backend`), so a page nobody waits for stops costing the database (issue
    /// 21). Costs one round trip (`pg_backend_pid()`) more than `read`.
    pub async fn read_cancellable<F, T>(&self, f: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let ticket = Arc::new(std::sync::Mutex::new(Ticket::Waiting));
        let abandon = Abandon {
            ticket: ticket.clone(),
            url: self.url.clone(),
        };
        let pool = self.readers.clone();
        let outage = self.outage.clone();
        let result = actix_web::web::block(move || {
            outage.watch(pool.get().map_err(AppError::from).and_then(|mut conn| {
                let pid = match &mut *conn {
                    DbConnection::Pg(pg) => Some(backend_pid(pg)?),
                    DbConnection::Sqlite(_) => None,
                };
                if !Ticket::start(&ticket, pid) {
                    return Err(AppError::Unavailable("the request was abandoned".into()));
                }
                let result = f(&mut conn);
                // Before the connection goes back to the pool: from here a cancel would
                // reach whoever uses it next, so the canceller checks this under the lock.
                Ticket::finish(&ticket);
                result
            }))
        })
        .await;
        abandon.disarm();
        result?
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
        self.with_writer(|conn| in_transaction(conn, f))
    }

    /// Run `f` on the writer's connection, queued behind the writer lock on SQLite, without
    /// opening a transaction (migrations open their own).
    fn with_writer<F, T>(&self, f: F) -> Result<T, AppError>
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
        self.outage.watch(
            self.writer
                .get()
                .map_err(AppError::from)
                .and_then(|mut pooled| f(&mut pooled)),
        )
    }

    /// Bring the schema up to date (each migration runs in its own transaction).
    pub async fn migrate(&self) -> Result<Vec<String>, AppError> {
        let db = self.clone();
        actix_web::web::block(move || db.with_writer(run_migrations)).await?
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

    /// The pool's connections: (open, idle, configured maximum), for the metrics.
    /// On SQLite the writer's one connection is counted with the readers.
    pub fn pool_state(&self) -> (u32, u32, u32) {
        let readers = self.readers.state();
        let (mut open, mut idle, mut max) = (
            readers.connections,
            readers.idle_connections,
            self.readers.max_size(),
        );
        if self.backend == Backend::Sqlite {
            let writer = self.writer.state();
            open += writer.connections;
            idle += writer.idle_connections;
            max += self.writer.max_size();
        }
        (open, idle, max)
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
