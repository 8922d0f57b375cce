//! The entry points: a file from the command line or the admin page, and the demo registry.
//! They read the file, parse it off the async threads and apply it in one write transaction.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;

use super::apply::apply_or_refuse;
use super::parse::parse_csv;
use super::rows::{ImportError, ImportReport};
use super::{DEMO_FILES, MAX_FILE_BYTES};
use crate::db::Db;
use crate::error::AppError;

/// Checks and imports a registry file in one transaction. Parsing runs on the blocking pool
/// (a large file takes a moment); the database work runs under [`Db::write`].
pub async fn import_file(
    db: &Db,
    bytes: Vec<u8>,
    actor: Option<i64>,
) -> Result<ImportReport, ImportError> {
    let rows = actix_web::web::block(move || parse_csv(&bytes))
        .await
        .map_err(AppError::from)?
        .map_err(ImportError::Rows)?;
    let today = Utc::now().date_naive();
    db.write(move |conn| apply_or_refuse(conn, &rows, actor, today))
        .await?
        .map_err(ImportError::Rows)
}

/// Imports the demo registry (the snapshots in date order), as the embedded default does.
pub async fn import_demo(db: &Db) -> Result<Vec<ImportReport>, ImportError> {
    let mut reports = Vec::new();
    for (_, bytes) in DEMO_FILES {
        reports.push(import_file(db, bytes.to_vec(), None).await?);
    }
    Ok(reports)
}

/// `dma org import FILE`: the report as JSON on stdout; each problem on its own line on
/// stderr, and a failure exit code, when the file is refused.
pub async fn import_command(
    settings: &crate::config::Settings,
    path: &Path,
) -> anyhow::Result<ExitCode> {
    let bytes = read_limited(path)?;
    let db = settings.open_database().await?;
    match import_file(&db, bytes, None).await {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(ImportError::Rows(errors)) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "error: {} was not imported ({} problem{}); the registry is unchanged",
                path.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
        Err(ImportError::App(e)) => Err(e.into()),
    }
}

/// Reads at most one byte more than the limit, so a huge file is refused without being
/// loaded.
fn read_limited(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(bytes)
}
