-- Nothing on PostgreSQL: the SQLite migration of the same name changes indexes and the score
-- counts' storage for plans PostgreSQL already makes (the two folders hold the same set of
-- migrations).
SELECT 1;
