-- A person's choice of how collaboration emails reach them (issue 22): one message per change,
-- or a daily digest. A row only for people who chose the digest's side at least once; no row
-- means single messages. The outbox keeps a digest-bound message as `held` until the daily
-- pass sends one digest for it and its fellows and marks them `digested`.
CREATE TABLE email_preferences (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    daily_digest BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TIMESTAMP NOT NULL
);

-- Two more outbox states: `held` (waiting for its recipient's daily digest; the worker sends
-- only `queued` rows) and `digested` (sent as a line of a digest). SQLite cannot change a
-- CHECK in place, so the table is rebuilt with the same columns and index.
CREATE TABLE email_outbox_new (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'held', 'digested')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
INSERT INTO email_outbox_new SELECT id, kind, recipient, subject, body_text, body_html, dedupe_key, status, attempts, next_attempt_at, locked_until, last_error, created_at, sent_at FROM email_outbox;
DROP TABLE email_outbox;
ALTER TABLE email_outbox_new RENAME TO email_outbox;
CREATE INDEX email_outbox_due ON email_outbox (status, next_attempt_at);
