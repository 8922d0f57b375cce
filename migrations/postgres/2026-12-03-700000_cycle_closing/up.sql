-- Closing a cycle. `cycles.closed_at` is when an administrator closed it (the status says
-- 'closed'); `assessments.closed_at` is copied onto every assessment of the cycle by the same
-- transaction, so the guarded writes on an assessment (save, submit, reopen, extend the
-- deadline: `... WHERE closed_at IS NULL`) conflict with the close on the row itself, and an
-- assessment that was not submitted reads as "not submitted" from then on. Cycles that were
-- already closed (demo data) are given their closing time now.
ALTER TABLE cycles ADD COLUMN closed_at TIMESTAMP;
ALTER TABLE assessments ADD COLUMN closed_at TIMESTAMP;
UPDATE cycles SET closed_at = CURRENT_TIMESTAMP WHERE status = 'closed';
UPDATE assessments SET closed_at = (SELECT cycles.closed_at FROM cycles WHERE cycles.id = assessments.cycle_id)
    WHERE cycle_id IN (SELECT id FROM cycles WHERE status = 'closed');
