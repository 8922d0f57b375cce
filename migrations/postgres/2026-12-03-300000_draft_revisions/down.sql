ALTER TABLE questionnaire_versions DROP COLUMN based_on;
ALTER TABLE questionnaire_versions DROP COLUMN revision;
