ALTER TABLE question_notes DROP COLUMN edited_at;
