-- Drafts are edited in the browser and through the API by several administrators: each
-- change is made against the revision it read, so a stale edit is refused instead of
-- silently overwriting another's. `based_on` is the version a draft was started from, so
-- the editor can say which domains stay comparable with it.
ALTER TABLE questionnaire_versions ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
ALTER TABLE questionnaire_versions ADD COLUMN based_on BIGINT REFERENCES questionnaire_versions (id);
