ALTER TABLE sessions DROP COLUMN membership_id;
DROP TABLE memberships;
