DROP INDEX email_outbox_open;
