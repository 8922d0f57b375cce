//! SQLite's checkpoints, off the write path.
//!
//! In WAL mode each commit appends to the write-ahead log, and by default the commit that takes
//! the log past 1,000 pages also copies the log back into the database file and syncs it (an
//! "automatic checkpoint"). That commit runs behind the writer lock ([`super::Db::write`]), so
//! every save queued behind it waited for the copy: measured under the paced autosave at
//! 1,200 saves a second, about three checkpoints a second of 6-20 ms each, which set the p99
//! (25-28 ms against PostgreSQL's 7.6 ms on the same load). So the writer's automatic
//! checkpoint threshold is raised to [`WRITER_AUTOCHECKPOINT`] pages (a safety net, and what
//! CLI commands, which run no checkpointer, use), and a running server copies the log back
//! from a thread of its own, on a connection of its own, every [`INTERVAL`]. A `PASSIVE`
//! checkpoint takes no lock a writer or reader waits for: commits carry on while it copies.

use std::sync::mpsc;
use std::time::Duration;

use diesel::sql_types::Integer;
use diesel::{QueryableByName, RunQueryDsl};

use super::{open, Access, DatabaseUrl, DbConnection};

/// The writer's automatic checkpoint threshold, in pages (4 KiB each): about 40 MB of log.
/// The checkpointer keeps the log far below it; if it cannot (it failed, or none runs, as in
/// a CLI command), a commit checkpoints at this size as SQLite would at 1,000.
pub(super) const WRITER_AUTOCHECKPOINT: u32 = 10_000;

/// How often the checkpointer copies the log back.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// The outcome of `PRAGMA wal_checkpoint`: whether it was blocked, and the log's size and
/// how much of it is now in the database file, in pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct Checkpointed {
    #[diesel(sql_type = Integer)]
    pub busy: i32,
    #[diesel(sql_type = Integer)]
    pub log: i32,
    #[diesel(sql_type = Integer)]
    pub checkpointed: i32,
}

/// Copy what the log holds back into the database file, without waiting for anyone.
fn passive(conn: &mut DbConnection) -> diesel::QueryResult<Checkpointed> {
    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(conn)
}

/// The running checkpointer. Dropping it (with the server) wakes the thread, which stops, and
/// waits for it, so its connection is closed before the process exits (the last connection
/// to close removes the log, which `dma restore` looks for).
#[derive(Debug)]
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel wakes the thread at once.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::warn!("the checkpointer thread panicked");
            }
        }
    }
}

/// Start checkpointing the SQLite database at `url` every [`INTERVAL`] on a thread of its
/// own. A failure (the file gone, a full disk) is logged once, then tried again each time
/// until it succeeds; until then the writer's own threshold bounds the log.
pub(super) fn spawn(url: DatabaseUrl) -> Result<Checkpointer, std::io::Error> {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let mut conn: Option<DbConnection> = None;
            let mut failing = false;
            // Woken by the interval, or by the channel closing (stop).
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                // A connection kept from last time, or a new one; kept only if it worked.
                let outcome = match conn.take() {
                    Some(c) => Ok(c),
                    None => open(&url, Access::ReadWrite).map_err(|e| e.to_string()),
                }
                .and_then(|mut c| {
                    let done = passive(&mut c).map_err(|e| e.to_string())?;
                    conn = Some(c);
                    Ok(done)
                });
                match outcome {
                    Ok(done) => {
                        if failing {
                            tracing::info!("checkpoints resumed");
                            failing = false;
                        }
                        tracing::trace!(?done, "checkpoint");
                    }
                    Err(error) => {
                        if !failing {
                            tracing::warn!(%error, every = ?INTERVAL, "checkpoint failed; trying again");
                            failing = true;
                        }
                    }
                }
            }
        })?;
    Ok(Checkpointer {
        stop: Some(stop),
        thread: Some(thread),
    })
}
