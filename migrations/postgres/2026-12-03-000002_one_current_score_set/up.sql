-- One current score set per assessment, held by the database: two submits that race can no
-- longer both leave a current set (the service also guards the status change; this is the
-- invariant itself). Databases that already hold duplicates from that race keep the newest
-- set of each assessment as current; the older ones stay, no longer current.
UPDATE score_sets SET is_current = FALSE
WHERE is_current
  AND id < (SELECT MAX(newer.id) FROM score_sets AS newer
            WHERE newer.assessment_id = score_sets.assessment_id AND newer.is_current);
CREATE UNIQUE INDEX score_sets_one_current ON score_sets (assessment_id) WHERE is_current;
