-- Score counts (issue 21, BENCHMARKS.md "Group figures from score counts"): how many current
-- domain and overall scores of submitted assessments have each value, per cycle, question
-- set version, setting, region, ICB (the assessment's snapshot), lateness, level and item.
-- The group figures (mean, median, quartiles) of the national and group view, of an
-- organisation's peers and of year on year read these counts instead of every score, so
-- their cost grows with the number of distinct scores, not with the number of
-- organisations. Submitting adds an assessment's scores and reopening takes them away, in
-- the same transaction (services::reports::counts), so the counts are exact; rows that fall
-- to zero stay, and are skipped. No region is '' and no ICB is 0 (a key cannot hold NULLs
-- and still be unique on both backends).
CREATE TABLE score_counts (
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

-- One row per submitted assessment at level 'assessment' (item '', score 0) counts the
-- submitted assessments of each group, late or not, whatever their scores.
INSERT INTO score_counts (cycle_id, questionnaire_version_id, setting, region, icb_id, late,
                          level, item_key, score, how_many)
SELECT cycle_id, questionnaire_version_id, setting, region, icb_id, late, level, item_key, score,
       COUNT(*)
FROM (
    SELECT assessments.cycle_id AS cycle_id,
           score_sets.questionnaire_version_id AS questionnaire_version_id,
           assessments.setting AS setting, COALESCE(assessments.region, '') AS region,
           COALESCE(assessments.icb_id, 0) AS icb_id, submissions.late AS late,
           scores.level AS level, scores.item_key AS item_key, scores.score AS score
    FROM scores
    JOIN score_sets ON score_sets.id = scores.score_set_id
    JOIN assessments ON assessments.id = score_sets.assessment_id
    JOIN submissions ON submissions.id = score_sets.submission_id
    WHERE assessments.status = 'submitted' AND score_sets.is_current
      AND scores.level IN ('domain', 'overall') AND scores.score IS NOT NULL
    UNION ALL
    SELECT assessments.cycle_id, score_sets.questionnaire_version_id, assessments.setting,
           COALESCE(assessments.region, ''), COALESCE(assessments.icb_id, 0), submissions.late,
           'assessment', '', CAST(0 AS DOUBLE PRECISION)
    FROM score_sets
    JOIN assessments ON assessments.id = score_sets.assessment_id
    JOIN submissions ON submissions.id = score_sets.submission_id
    WHERE assessments.status = 'submitted' AND score_sets.is_current
) AS counted
GROUP BY cycle_id, questionnaire_version_id, setting, region, icb_id, late, level, item_key, score;

-- The national list sorted by name (its default) reads organisations in this order and
-- stops at the page's end, instead of sorting every member of the cycle (issue 21: 74 ms to
-- 5 ms for the first page at 30,000 organisations).
CREATE INDEX organisations_lower_name ON organisations (lower(name), id);
