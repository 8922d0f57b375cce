-- The whole product's first schema. Times are UTC `TIMESTAMP` (no zone); JSON documents are
-- TEXT so the same column types serve PostgreSQL and SQLite through one diesel schema.

CREATE TABLE organisations (
    id BIGSERIAL PRIMARY KEY,
    ods_code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    region TEXT,
    opened_on DATE,
    closed_on DATE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX organisations_kind_region ON organisations (kind, region);

-- Care settings an organisation works in (one assessment per setting per cycle).
CREATE TABLE organisation_settings (
    organisation_id BIGINT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    setting TEXT NOT NULL,
    PRIMARY KEY (organisation_id, setting)
);
CREATE INDEX organisation_settings_setting ON organisation_settings (setting);

-- Membership of a parent ICB over time: ICBs merge, and reports place an organisation in the
-- ICB it belonged to in each cycle.
CREATE TABLE organisation_parents (
    id BIGSERIAL PRIMARY KEY,
    organisation_id BIGINT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    parent_id BIGINT NOT NULL REFERENCES organisations (id),
    valid_from DATE NOT NULL,
    valid_to DATE,
    UNIQUE (organisation_id, valid_from)
);
CREATE INDEX organisation_parents_parent ON organisation_parents (parent_id);

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    organisation_id BIGINT REFERENCES organisations (id),
    group_organisation_id BIGINT REFERENCES organisations (id),
    group_region TEXT,
    password_hash TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    password_changed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX users_organisation ON users (organisation_id);

-- Server-side sessions: the cookie holds a random token, the table only its SHA-256.
CREATE TABLE sessions (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Failed and successful sign-ins, for throttling per account and per address across instances.
CREATE TABLE login_attempts (
    id BIGSERIAL PRIMARY KEY,
    subject TEXT NOT NULL,
    attempted_at TIMESTAMP NOT NULL,
    succeeded BOOLEAN NOT NULL
);
CREATE INDEX login_attempts_subject_time ON login_attempts (subject, attempted_at);

-- Invitation and password-reset links: single use, expiring, stored hashed.
CREATE TABLE one_time_tokens (
    id BIGSERIAL PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id);

CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE questionnaires (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- A version's definition is its canonical JSON; `source` keeps the uploaded document as written.
CREATE TABLE questionnaire_versions (
    id BIGSERIAL PRIMARY KEY,
    questionnaire_id BIGINT NOT NULL REFERENCES questionnaires (id),
    version TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'published')),
    definition TEXT NOT NULL,
    source TEXT NOT NULL,
    checksum TEXT NOT NULL,
    created_by BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    published_at TIMESTAMP,
    published_by BIGINT REFERENCES users (id),
    UNIQUE (questionnaire_id, version)
);

-- Published versions are immutable in the database itself, not only in the application.
CREATE FUNCTION dma_refuse_published_change() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'published' THEN
        RAISE EXCEPTION 'questionnaire version % is published and cannot be changed', OLD.id;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER questionnaire_versions_immutable
    BEFORE UPDATE OR DELETE ON questionnaire_versions
    FOR EACH ROW EXECUTE FUNCTION dma_refuse_published_change();

CREATE TABLE cycles (
    id BIGSERIAL PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    opens_on DATE NOT NULL,
    deadline DATE NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'open', 'closed')),
    created_by BIGINT REFERENCES users (id),
    created_at TIMESTAMP NOT NULL
);

-- Which published version serves each care setting in a cycle.
CREATE TABLE cycle_versions (
    cycle_id BIGINT NOT NULL REFERENCES cycles (id) ON DELETE CASCADE,
    setting TEXT NOT NULL,
    questionnaire_version_id BIGINT NOT NULL REFERENCES questionnaire_versions (id),
    PRIMARY KEY (cycle_id, setting)
);

-- One assessment per organisation, setting and cycle. The ICB and region are snapshots taken
-- when the cycle opens. `revision` increments on every change, for optimistic concurrency.
-- Sign-offs live in `submissions`, so a reopened and resubmitted assessment keeps its history.
CREATE TABLE assessments (
    id BIGSERIAL PRIMARY KEY,
    cycle_id BIGINT NOT NULL REFERENCES cycles (id),
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    setting TEXT NOT NULL,
    questionnaire_version_id BIGINT NOT NULL REFERENCES questionnaire_versions (id),
    status TEXT NOT NULL CHECK (status IN ('not_started', 'in_progress', 'submitted', 'reopened')),
    icb_id BIGINT REFERENCES organisations (id),
    region TEXT,
    deadline_override DATE,
    revision BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (cycle_id, organisation_id, setting)
);
CREATE INDEX assessments_cycle_status ON assessments (cycle_id, status);
CREATE INDEX assessments_organisation ON assessments (organisation_id);
CREATE INDEX assessments_icb ON assessments (cycle_id, icb_id);

-- Each sign-off and submission of an assessment; the latest is the one in force.
CREATE TABLE submissions (
    id BIGSERIAL PRIMARY KEY,
    assessment_id BIGINT NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    reference TEXT NOT NULL UNIQUE,
    submitted_by BIGINT NOT NULL REFERENCES users (id),
    signoff_name TEXT NOT NULL,
    signoff_job_title TEXT NOT NULL,
    late BOOLEAN NOT NULL DEFAULT FALSE,
    submitted_at TIMESTAMP NOT NULL,
    reopened_at TIMESTAMP,
    reopened_by BIGINT REFERENCES users (id),
    reopen_reason TEXT
);
CREATE INDEX submissions_assessment ON submissions (assessment_id, submitted_at);

-- The current answer per question; `value` is the answer's JSON form from the spec.
CREATE TABLE answers (
    id BIGSERIAL PRIMARY KEY,
    assessment_id BIGINT NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    question_key TEXT NOT NULL,
    value TEXT NOT NULL,
    revision BIGINT NOT NULL DEFAULT 1,
    carried_forward BOOLEAN NOT NULL DEFAULT FALSE,
    updated_by BIGINT REFERENCES users (id),
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (assessment_id, question_key)
);

CREATE TABLE answer_history (
    id BIGSERIAL PRIMARY KEY,
    assessment_id BIGINT NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    question_key TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    changed_by BIGINT REFERENCES users (id),
    changed_at TIMESTAMP NOT NULL
);
CREATE INDEX answer_history_question ON answer_history (assessment_id, question_key);

-- Every scoring of a submission, kept as history; `current` marks the one reports use.
CREATE TABLE score_sets (
    id BIGSERIAL PRIMARY KEY,
    assessment_id BIGINT NOT NULL REFERENCES assessments (id) ON DELETE CASCADE,
    submission_id BIGINT NOT NULL REFERENCES submissions (id) ON DELETE CASCADE,
    questionnaire_version_id BIGINT NOT NULL REFERENCES questionnaire_versions (id),
    overall_score DOUBLE PRECISION,
    overall_band TEXT,
    report TEXT NOT NULL,
    answers_snapshot TEXT NOT NULL,
    is_current BOOLEAN NOT NULL,
    scored_at TIMESTAMP NOT NULL
);
CREATE INDEX score_sets_assessment ON score_sets (assessment_id, is_current);

-- Flattened scores (overall, pillar and domain rows) so group statistics are plain SQL scans.
CREATE TABLE scores (
    score_set_id BIGINT NOT NULL REFERENCES score_sets (id) ON DELETE CASCADE,
    level TEXT NOT NULL CHECK (level IN ('overall', 'pillar', 'domain')),
    item_key TEXT NOT NULL,
    score DOUBLE PRECISION,
    band TEXT,
    counted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (score_set_id, level, item_key)
);
CREATE INDEX scores_item ON scores (level, item_key);

-- Append-only record of every data-changing and security-relevant action.
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMP NOT NULL,
    actor_user_id BIGINT REFERENCES users (id),
    actor_label TEXT NOT NULL,
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id TEXT,
    organisation_id BIGINT REFERENCES organisations (id),
    before_value TEXT,
    after_value TEXT,
    ip TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_id);
CREATE INDEX audit_log_actor ON audit_log (actor_user_id);

CREATE FUNCTION dma_refuse_audit_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION dma_refuse_audit_change();

-- Mail is written here in the same transaction as the change that causes it. `dedupe_key`
-- makes "at most once per organisation and cycle" a database guarantee.
CREATE TABLE email_outbox (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX email_outbox_due ON email_outbox (status, next_attempt_at);
