//! Where evidence files' bytes live. [`BlobStore`] is the small interface the rest of the
//! service uses; [`DbStore`], the default and today the only one, keeps them in the database,
//! so one machine and many instances behind a load balancer see the same files with nothing
//! else to run or back up (design decision 12).
//!
//! Blobs are content-addressed: the key is the SHA-256 digest of the bytes, the primary key of
//! `evidence_blobs`, so the same file uploaded twice, by two people at once, or carried into
//! next year, is stored once. The bytes are split into [`CHUNK_BYTES`] rows of
//! `evidence_blob_chunks`, written and read one at a time, so neither an upload nor a download
//! holds a whole file in memory.
//!
//! Every method runs in the caller's transaction: a blob is stored with the evidence row that
//! names it, or not at all.

use std::io::Read;

use chrono::Utc;
use diesel::prelude::*;

use crate::db::schema::{evidence, evidence_blob_chunks, evidence_blobs};
use crate::db::{with_concrete_connection, DbConnection};
use crate::error::AppError;
use crate::services::evidence::files::Staged;

/// The size of one stored chunk: 1 MiB, so a download holds about this much at a time.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// What is stored about a blob.
#[derive(Debug, Clone)]
pub struct BlobInfo {
    pub digest: String,
    pub size: i64,
    pub chunks: i32,
}

/// Where evidence bytes are kept.
pub trait BlobStore: Send + Sync {
    /// Store the staged file under its digest unless it is stored already. Safe against a
    /// simultaneous store of the same bytes and a simultaneous removal.
    fn put(&self, conn: &mut DbConnection, file: &Staged) -> Result<(), AppError>;
    /// The blob's size and chunk count, if it is stored.
    fn info(&self, conn: &mut DbConnection, digest: &str) -> Result<Option<BlobInfo>, AppError>;
    /// One chunk of a blob, by its number from 0.
    fn chunk(
        &self,
        conn: &mut DbConnection,
        digest: &str,
        seq: i32,
    ) -> Result<Option<Vec<u8>>, AppError>;
    /// Remove the blob if no evidence names it any more; whether it was removed.
    fn release(&self, conn: &mut DbConnection, digest: &str) -> Result<bool, AppError>;
}

/// Blobs in the database, in 1 MiB chunks.
#[derive(Debug, Clone, Copy, Default)]
pub struct DbStore;

/// The store the service uses.
pub fn default_store() -> &'static dyn BlobStore {
    &DbStore
}

fn chunk_count(size: u64) -> i32 {
    i32::try_from(size.div_ceil(CHUNK_BYTES as u64)).unwrap_or(i32::MAX)
}

impl BlobStore for DbStore {
    fn put(&self, conn: &mut DbConnection, file: &Staged) -> Result<(), AppError> {
        let size = i64::try_from(file.size)
            .map_err(|_| AppError::Internal(anyhow::anyhow!("evidence size out of range")))?;
        // An upsert rather than "insert or ignore": touching the row locks it until this
        // transaction ends, so a removal of the same blob running now waits, then finds this
        // transaction's evidence naming it and leaves it alone. Two simultaneous uploads of
        // the same bytes: the second waits on the unique key, then sees the first's chunks.
        with_concrete_connection!(conn, c => {
            diesel::insert_into(evidence_blobs::table)
                .values((
                    evidence_blobs::digest.eq(&file.digest),
                    evidence_blobs::size.eq(size),
                    evidence_blobs::content_type.eq(file.kind.media_type),
                    evidence_blobs::created_at.eq(Utc::now().naive_utc()),
                ))
                .on_conflict(evidence_blobs::digest)
                .do_update()
                .set(evidence_blobs::size.eq(size))
                .execute(c)
        })?;
        let stored: i64 = evidence_blob_chunks::table
            .filter(evidence_blob_chunks::digest.eq(&file.digest))
            .count()
            .get_result(conn)?;
        if stored == i64::from(chunk_count(file.size)) {
            return Ok(());
        }
        let mut reader = file.reader()?;
        let mut buffer = vec![0u8; CHUNK_BYTES];
        let mut seq = 0i32;
        loop {
            let mut filled = 0;
            while filled < CHUNK_BYTES {
                let n = reader.read(&mut buffer[filled..]).map_err(|e| {
                    AppError::Internal(anyhow::anyhow!("reading staged evidence: {e}"))
                })?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            diesel::insert_into(evidence_blob_chunks::table)
                .values((
                    evidence_blob_chunks::digest.eq(&file.digest),
                    evidence_blob_chunks::seq.eq(seq),
                    evidence_blob_chunks::bytes.eq(&buffer[..filled]),
                ))
                .execute(conn)?;
            seq += 1;
            if filled < CHUNK_BYTES {
                break;
            }
        }
        Ok(())
    }

    fn info(&self, conn: &mut DbConnection, digest: &str) -> Result<Option<BlobInfo>, AppError> {
        let size: Option<i64> = evidence_blobs::table
            .find(digest)
            .select(evidence_blobs::size)
            .first(conn)
            .optional()?;
        Ok(size.map(|size| BlobInfo {
            digest: digest.to_string(),
            size,
            chunks: chunk_count(u64::try_from(size).unwrap_or(0)),
        }))
    }

    fn chunk(
        &self,
        conn: &mut DbConnection,
        digest: &str,
        seq: i32,
    ) -> Result<Option<Vec<u8>>, AppError> {
        Ok(evidence_blob_chunks::table
            .find((digest, seq))
            .select(evidence_blob_chunks::bytes)
            .first(conn)
            .optional()?)
    }

    fn release(&self, conn: &mut DbConnection, digest: &str) -> Result<bool, AppError> {
        let named: i64 = evidence::table
            .filter(evidence::digest.eq(digest))
            .count()
            .get_result(conn)?;
        if named > 0 {
            return Ok(false);
        }
        // In a savepoint: should an upload of the same bytes commit a reference meanwhile,
        // the foreign key refuses the delete and the blob simply stays.
        let removed = conn.transaction(|c| {
            diesel::delete(
                evidence_blobs::table
                    .filter(evidence_blobs::digest.eq(digest))
                    .filter(diesel::dsl::not(diesel::dsl::exists(
                        evidence::table.filter(evidence::digest.eq(digest)),
                    ))),
            )
            .execute(c)
        });
        match removed {
            Ok(n) => Ok(n > 0),
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            )) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
