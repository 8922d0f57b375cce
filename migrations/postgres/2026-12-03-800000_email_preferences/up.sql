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
-- only `queued` rows) and `digested` (sent as a line of a digest).
ALTER TABLE email_outbox DROP CONSTRAINT email_outbox_status_check;
ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_status_check
    CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'held', 'digested'));
