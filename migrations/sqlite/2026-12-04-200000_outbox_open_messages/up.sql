-- The mail worker's claim reads only the open messages (queued, or sending under a lease that
-- may have run out), in the order it sends them. The index on (status, next_attempt_at) could
-- serve it, but once the outbox is mostly sent the planner's statistics say a status matches
-- most rows, and SQLite read the whole outbox instead, every poll (5 s), inside the writer's
-- lock: 23 ms at 18,000 sent messages, growing with the outbox, while every save waited
-- (BENCHMARKS.md, the SQLite paced autosave). This index holds the open messages alone, so
-- the claim reads a handful of entries however many were sent. The claim names the same
-- condition with literal values (services::mail::worker), which both planners need to use a
-- partial index.
CREATE INDEX email_outbox_open ON email_outbox (next_attempt_at, id)
    WHERE status IN ('queued', 'sending');
