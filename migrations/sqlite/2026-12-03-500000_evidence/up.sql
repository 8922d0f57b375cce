-- Evidence per answer (issue 23): files and links attached to a question of an assessment.
-- File contents are content-addressed blobs: one `evidence_blobs` row per distinct content
-- (its SHA-256 digest, hex, is the primary key, so the same file uploaded twice, or carried
-- into next year, is stored once), its bytes in 1 MiB `evidence_blob_chunks` rows so upload
-- and download stream a chunk at a time. Each `evidence` row is one item on one answer; a
-- file item names its blob, a link item its URL, never both (the CHECK). `carried_from` is the
-- item of last year's answer this one was copied from when the respondent confirmed the
-- carried-forward answer; unique per assessment, so a confirmation copies it once.
CREATE TABLE evidence_blobs (
    digest TEXT PRIMARY KEY NOT NULL,
    size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE evidence_blob_chunks (
    digest TEXT NOT NULL REFERENCES evidence_blobs (digest) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (digest, seq)
);
CREATE TABLE evidence (
    id INTEGER PRIMARY KEY NOT NULL,
    assessment_id BIGINT NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    question_key TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('file', 'link')),
    title TEXT NOT NULL,
    digest TEXT REFERENCES evidence_blobs (digest),
    file_name TEXT,
    content_type TEXT,
    size BIGINT,
    url TEXT,
    carried_from BIGINT REFERENCES evidence (id) ON DELETE SET NULL,
    added_by BIGINT REFERENCES users (id),
    added_at TIMESTAMP NOT NULL,
    CHECK ((kind = 'file' AND digest IS NOT NULL AND file_name IS NOT NULL AND size IS NOT NULL AND url IS NULL) OR (kind = 'link' AND url IS NOT NULL AND digest IS NULL))
);
CREATE INDEX evidence_answer ON evidence (assessment_id, question_key, id);
CREATE INDEX evidence_digest ON evidence (digest);
CREATE UNIQUE INDEX evidence_carried_once ON evidence (assessment_id, carried_from);
