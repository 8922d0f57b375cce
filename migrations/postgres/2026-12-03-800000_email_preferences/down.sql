UPDATE email_outbox SET status = 'queued' WHERE status = 'held';
UPDATE email_outbox SET status = 'sent' WHERE status = 'digested';
ALTER TABLE email_outbox DROP CONSTRAINT email_outbox_status_check;
ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_status_check
    CHECK (status IN ('queued', 'sending', 'sent', 'failed'));
DROP TABLE email_preferences;
