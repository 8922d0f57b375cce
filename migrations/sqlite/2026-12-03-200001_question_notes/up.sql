-- Notes on questions (issue 22): a thread per question between the organisation's people,
-- kept apart from answers (never scored, never in exports). `shared` is the organisation's
-- choice to show a note to auditors with its submission; `revision` goes up with each change
-- of that choice, so two people changing it at once cannot silently overwrite each other.
CREATE TABLE question_notes (
    id INTEGER PRIMARY KEY NOT NULL,
    assessment_id BIGINT NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    question_key TEXT NOT NULL,
    author_id BIGINT REFERENCES users (id),
    body TEXT NOT NULL,
    shared BOOLEAN NOT NULL DEFAULT FALSE,
    revision BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX question_notes_question ON question_notes (assessment_id, question_key, created_at);
