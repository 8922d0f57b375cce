ALTER TABLE assessments DROP COLUMN closed_at;
ALTER TABLE cycles DROP COLUMN closed_at;
