-- Reports read only the current score set of each assessment, and only its small columns; the
-- table's rows carry the full report and answers as JSON. A partial index holding those
-- columns lets such reads skip the table (SQLite has no INCLUDE: they are key columns here).
CREATE INDEX score_sets_current ON score_sets
    (assessment_id, id, submission_id, questionnaire_version_id, overall_score, overall_band)
    WHERE is_current;
