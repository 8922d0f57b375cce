-- Auditor review and improvement plans (issue 23).
--
-- An auditor reviews a submitted assessment section by section (a section is a domain of the
-- question set, as in section_statuses): accepts it, or raises a query on one of its
-- questions. The organisation answers the query (and an approver may change the answer, which
-- resubmits and re-scores, keeping the earlier score set); the auditor closes it.
-- review_sections holds an auditor's acceptance, one row per section; its revision increments
-- on every change (acceptance, or a query raised in the section, which withdraws it), so of two
-- auditors acting on a section at once one wins and the other is refused (409).
CREATE TABLE review_sections (
    assessment_id BIGINT NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    domain_key TEXT NOT NULL,
    accepted BOOLEAN NOT NULL,
    revision BIGINT NOT NULL DEFAULT 1,
    changed_by BIGINT REFERENCES users (id),
    changed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (assessment_id, domain_key)
);

-- One query on one question: open (waiting for the organisation), answered (waiting for the
-- auditor), closed. At most one query per question that is not closed (partial unique index).
CREATE TABLE review_queries (
    id INTEGER PRIMARY KEY NOT NULL,
    assessment_id BIGINT NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    domain_key TEXT NOT NULL,
    question_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'answered', 'closed')),
    revision BIGINT NOT NULL DEFAULT 1,
    message TEXT NOT NULL,
    raised_by BIGINT NOT NULL REFERENCES users (id),
    raised_at TIMESTAMP NOT NULL,
    response TEXT,
    answer_changed BOOLEAN NOT NULL DEFAULT FALSE,
    answered_by BIGINT REFERENCES users (id),
    answered_at TIMESTAMP,
    closed_by BIGINT REFERENCES users (id),
    closed_at TIMESTAMP
);
CREATE UNIQUE INDEX review_queries_one_unclosed ON review_queries (assessment_id, question_key) WHERE status <> 'closed';
CREATE INDEX review_queries_assessment ON review_queries (assessment_id);

-- The band below which a domain needs an improvement plan, chosen per assessment by the
-- organisation (the questionnaire format has no field for it; without a row the middle band
-- of the question set is used).
CREATE TABLE improvement_thresholds (
    assessment_id BIGINT NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    band TEXT NOT NULL,
    changed_by BIGINT REFERENCES users (id),
    changed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (assessment_id)
);

-- An action of an organisation's improvement plan for one domain. Unfinished actions are
-- copied into the next cycle's assessment with carried_from naming the action they continue
-- (once: unique per assessment). A domain does not hold two actions of the same title.
CREATE TABLE improvement_actions (
    id INTEGER PRIMARY KEY NOT NULL,
    assessment_id BIGINT NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    domain_key TEXT NOT NULL,
    title TEXT NOT NULL,
    owner_user_id BIGINT REFERENCES users (id),
    owner_text TEXT,
    due_on DATE,
    status TEXT NOT NULL CHECK (status IN ('planned', 'in_progress', 'done', 'dropped')),
    revision BIGINT NOT NULL DEFAULT 1,
    carried_from BIGINT REFERENCES improvement_actions (id) ON DELETE SET NULL,
    created_by BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    updated_by BIGINT REFERENCES users (id),
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (assessment_id, domain_key, title),
    UNIQUE (assessment_id, carried_from)
);
CREATE INDEX improvement_actions_carried_from ON improvement_actions (carried_from);
