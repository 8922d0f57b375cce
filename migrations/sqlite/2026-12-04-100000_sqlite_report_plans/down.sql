DROP INDEX assessments_region_icb;
DROP INDEX assessments_status_groups;
CREATE INDEX assessments_cycle_status ON assessments (cycle_id, status);

CREATE TABLE score_counts_with_rowid (
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
);
INSERT INTO score_counts_with_rowid SELECT * FROM score_counts;
DROP TABLE score_counts;
ALTER TABLE score_counts_with_rowid RENAME TO score_counts;
