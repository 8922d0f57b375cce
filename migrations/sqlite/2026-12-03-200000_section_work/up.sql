-- Working together on an assessment (issue 22). An approver gives each section (a domain of
-- the question set) to named people of the organisation; each section has one hand-over
-- status. The unique keys are the rules: a person holds a section once, a section has one
-- status. `revision` increments on every status change so a change made against a status
-- someone else has since changed is refused (409) instead of overwriting it.
CREATE TABLE section_assignments (
    id INTEGER PRIMARY KEY NOT NULL,
    assessment_id BIGINT NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    domain_key TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    due_on DATE,
    assigned_by BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (assessment_id, domain_key, user_id)
);
CREATE INDEX section_assignments_user ON section_assignments (user_id);

CREATE TABLE section_statuses (
    assessment_id BIGINT NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    domain_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('not_started', 'in_progress', 'ready_for_review', 'returned', 'reviewed')),
    revision BIGINT NOT NULL DEFAULT 1,
    message TEXT,
    changed_by BIGINT REFERENCES users (id),
    changed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (assessment_id, domain_key)
);
