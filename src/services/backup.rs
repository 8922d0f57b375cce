//! Backups of the embedded SQLite database, taken while the server runs, and their restore.
//!
//! `dma backup FILE` uses SQLite's `VACUUM INTO`: one read transaction, so the copy is the
//! database as of one moment however many writes the server makes meanwhile (in WAL mode a
//! reader never blocks the writer), and the copy is compact and self-contained (no `-wal`
//! file beside it). `dma restore FILE` checks the copy before it replaces anything: SQLite's
//! `integrity_check`, and that its schema is one this binary knows. It replaces the database
//! by renaming a checked copy over it, so a failed restore leaves the old database whole, and
//! it refuses a database that holds data or is in use unless told `--force`.
//!
//! PostgreSQL is backed up with its own tools (`pg_dump`, or base backups with WAL archiving
//! for point-in-time recovery); docs/operations.md says how.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::SqliteConnection;

use crate::config::Settings;
use crate::db::schema::{organisations, score_sets, scores, submissions, users};
use crate::db::DatabaseUrl;

/// What a backup or a restored database holds: enough to see at a glance that it is whole.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Contents {
    pub file: String,
    pub bytes: u64,
    /// The newest migration applied (the schema version).
    pub schema_version: String,
    pub organisations: i64,
    pub users: i64,
    pub submissions: i64,
    pub score_sets: i64,
    pub scores: i64,
}

#[derive(QueryableByName)]
struct IntegrityRow {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

#[derive(QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = Text)]
    version: String,
}

fn open(path: &Path) -> anyhow::Result<SqliteConnection> {
    let mut conn = SqliteConnection::establish(&path.display().to_string())
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    conn.batch_execute("PRAGMA busy_timeout = 10000;")?;
    Ok(conn)
}

/// The migrations this binary carries, by version.
fn known_versions() -> anyhow::Result<Vec<String>> {
    let migrations =
        MigrationSource::<diesel::sqlite::Sqlite>::migrations(&crate::db::SQLITE_MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("cannot list the built-in migrations: {e}"))?;
    Ok(migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}

/// Check a SQLite file the way a restore needs: intact pages and indexes, and a dma schema
/// this binary knows. Returns what it holds.
pub fn check(path: &Path) -> anyhow::Result<Contents> {
    let mut conn = open(path)?;
    let problems: Vec<String> = diesel::sql_query("PRAGMA integrity_check")
        .load::<IntegrityRow>(&mut conn)
        .map_err(|e| anyhow::anyhow!("{} is not a readable SQLite database: {e}", path.display()))?
        .into_iter()
        .map(|r| r.integrity_check)
        .filter(|line| line != "ok")
        .collect();
    if !problems.is_empty() {
        anyhow::bail!(
            "{} fails SQLite's integrity check: {}",
            path.display(),
            problems.join("; ")
        );
    }
    let mut applied: Vec<String> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
            .load::<VersionRow>(&mut conn)
            .map_err(|_| {
                anyhow::anyhow!(
                    "{} is not a dma database (no migrations table)",
                    path.display()
                )
            })?
            .into_iter()
            .map(|r| r.version)
            .collect();
    applied.sort();
    let known = known_versions()?;
    if let Some(unknown) = applied.iter().find(|v| !known.contains(v)) {
        anyhow::bail!(
            "{} has schema version {unknown}, which this dma does not know: restore it with the \
             dma release that made it",
            path.display()
        );
    }
    let Some(schema_version) = applied.last().cloned() else {
        anyhow::bail!(
            "{} is not a dma database (no migrations applied)",
            path.display()
        );
    };
    let contents = Contents {
        file: path.display().to_string(),
        bytes: std::fs::metadata(path)?.len(),
        schema_version,
        organisations: organisations::table.count().get_result(&mut conn)?,
        users: users::table.count().get_result(&mut conn)?,
        submissions: submissions::table.count().get_result(&mut conn)?,
        score_sets: score_sets::table.count().get_result(&mut conn)?,
        scores: scores::table.count().get_result(&mut conn)?,
    };
    Ok(contents)
}

fn sqlite_path(settings: &Settings, command: &str) -> anyhow::Result<Option<PathBuf>> {
    match settings.database()? {
        DatabaseUrl::Sqlite(path) => Ok(Some(path)),
        DatabaseUrl::Postgres(_) => {
            eprintln!(
                "dma {command} copies the embedded SQLite database; this configuration uses \
                 PostgreSQL, which is backed up with pg_dump or base backups and WAL archiving \
                 (see docs/operations.md)"
            );
            Ok(None)
        }
    }
}

/// Make a consistent copy of the database at `source` into the new file `target`.
pub fn backup(source: &Path, target: &Path) -> anyhow::Result<Contents> {
    if !source.exists() {
        anyhow::bail!("there is no database at {}", source.display());
    }
    if target.exists() {
        anyhow::bail!(
            "{} already exists; choose a new file name",
            target.display()
        );
    }
    let mut conn = open(source)?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(target.display().to_string())
        .execute(&mut conn)
        .map_err(|e| anyhow::anyhow!("backup to {} failed: {e}", target.display()))?;
    drop(conn);
    check(target)
}

/// The database's companion files, which belong to the file they sit beside.
fn companions(path: &Path) -> [PathBuf; 2] {
    let name = path.display().to_string();
    [
        PathBuf::from(format!("{name}-wal")),
        PathBuf::from(format!("{name}-shm")),
    ]
}

/// Why `target` may not be replaced without `--force`, if there is a reason.
fn in_use_or_holding_data(target: &Path) -> anyhow::Result<Option<String>> {
    if !target.exists() {
        return Ok(None);
    }
    // In WAL mode the -wal file exists while any connection is open (and after a crash).
    if companions(target)[0].exists() {
        return Ok(Some(format!(
            "{} looks in use (its write-ahead log is open): stop every dma process using it",
            target.display()
        )));
    }
    if std::fs::metadata(target)?.len() == 0 {
        return Ok(None);
    }
    let mut conn = open(target)?;
    let holds: Option<i64> = organisations::table
        .count()
        .get_result::<i64>(&mut conn)
        .ok()
        .zip(users::table.count().get_result::<i64>(&mut conn).ok())
        .map(|(o, u)| o + u);
    Ok(match holds {
        Some(0) => None,
        Some(n) => Some(format!(
            "{} holds data ({n} organisations and accounts)",
            target.display()
        )),
        None => Some(format!("{} is not an empty dma database", target.display())),
    })
}

/// Replace the database at `target` with the checked backup `file`.
pub fn restore(file: &Path, target: &Path, force: bool) -> anyhow::Result<Contents> {
    if !file.is_file() {
        anyhow::bail!("there is no backup at {}", file.display());
    }
    if !force {
        if let Some(reason) = in_use_or_holding_data(target)? {
            anyhow::bail!("{reason}; restore refused (use --force to replace it anyway)");
        }
    }
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    // Check a private copy in the target's folder, so the backup itself is never opened for
    // writing and the final rename stays on one file system.
    let staging = PathBuf::from(format!("{}.restoring", target.display()));
    for stale in std::iter::once(staging.clone()).chain(companions(&staging)) {
        let _ = std::fs::remove_file(stale);
    }
    std::fs::copy(file, &staging)
        .map_err(|e| anyhow::anyhow!("cannot copy {}: {e}", file.display()))?;
    let checked = match check(&staging) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            return Err(e);
        }
    };
    // A write-ahead log left beside the old database would be replayed into the new one.
    for companion in companions(target) {
        match std::fs::remove_file(&companion) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("cannot remove {}: {e}", companion.display()),
        }
    }
    std::fs::rename(&staging, target)?;
    Ok(Contents {
        file: target.display().to_string(),
        ..checked
    })
}

/// `dma backup FILE`.
pub fn backup_command(settings: &Settings, file: &Path) -> anyhow::Result<ExitCode> {
    let Some(source) = sqlite_path(settings, "backup")? else {
        return Ok(ExitCode::from(2));
    };
    print_outcome(backup(&source, file))
}

/// `dma restore FILE [--force]`.
pub fn restore_command(settings: &Settings, file: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let Some(target) = sqlite_path(settings, "restore")? else {
        return Ok(ExitCode::from(2));
    };
    print_outcome(restore(file, &target, force))
}

/// What a command prints: the contents as JSON, or the refusal as a sentence (exit 1).
fn print_outcome(outcome: anyhow::Result<Contents>) -> anyhow::Result<ExitCode> {
    match outcome {
        Ok(contents) => {
            println!("{}", serde_json::to_string_pretty(&contents)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
