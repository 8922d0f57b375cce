-- Reports read only the current score set of each assessment, and only its small columns; the
-- table's rows carry the full report and answers as JSON. This partial, covering index lets
-- those reads skip the table (measured: the national view's two queries over 30,000
-- organisations went from 274 and 234 ms to 133 and 101 ms; BENCHMARKS.md).
CREATE INDEX score_sets_current ON score_sets (assessment_id)
    INCLUDE (id, submission_id, questionnaire_version_id, overall_score, overall_band)
    WHERE is_current;
