-- SQLite's plans for the national view (issue 21, BENCHMARKS.md "SQLite's national view").
--
-- The counts by status group a cycle's unsubmitted assessments by version, status, deadline
-- override and closing: with these columns in one index after the cycle and the status,
-- SQLite reads the index alone, already in group order (measured at 30,000 organisations:
-- 20 ms to 2 ms). It replaces the index on (cycle_id, status), its prefix.
--
-- The filters' options are the distinct regions and ICBs of all assessments: with an index
-- on them SQLite skips from one distinct pair to the next instead of reading every
-- assessment (11 ms to under 1 ms).
--
-- The score counts become a table clustered on their key (WITHOUT ROWID): a rowid table
-- kept the key in a second b-tree, so reading a cycle's counts in key order looked every row
-- up twice, over twice the pages (1,861 against 882 at 30,000 organisations).
--
-- PostgreSQL plans all three well as they are (its migration of the same name changes
-- nothing).
DROP INDEX assessments_cycle_status;
CREATE INDEX assessments_status_groups
    ON assessments (cycle_id, status, questionnaire_version_id, deadline_override, closed_at);
CREATE INDEX assessments_region_icb ON assessments (region, icb_id);

CREATE TABLE score_counts_by_key (
    cycle_id BIGINT NOT NULL,
    questionnaire_version_id BIGINT NOT NULL,
    setting TEXT NOT NULL,
    region TEXT NOT NULL,
    icb_id BIGINT NOT NULL,
    late BOOLEAN NOT NULL,
    level TEXT NOT NULL,
    item_key TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    how_many BIGINT NOT NULL,
    PRIMARY KEY (cycle_id, questionnaire_version_id, setting, region, icb_id, late, level, item_key, score)
) WITHOUT ROWID;
INSERT INTO score_counts_by_key (cycle_id, questionnaire_version_id, setting, region, icb_id,
                                 late, level, item_key, score, how_many)
SELECT cycle_id, questionnaire_version_id, setting, region, icb_id, late, level, item_key, score,
       how_many
FROM score_counts;
DROP TABLE score_counts;
ALTER TABLE score_counts_by_key RENAME TO score_counts;
-- The planner's statistics for the new indexes (skipping to the next distinct pair depends
-- on them); PRAGMA optimize at start-up keeps them current after.
ANALYZE assessments;
ANALYZE score_counts;
