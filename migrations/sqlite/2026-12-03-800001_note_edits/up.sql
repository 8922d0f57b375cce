-- Notes can be corrected by their authors (issue 22): when a note was last edited, so the
-- thread says so. A deleted note is removed; the audit log keeps that it was (not its text).
ALTER TABLE question_notes ADD COLUMN edited_at TIMESTAMP;
