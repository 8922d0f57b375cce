-- People in several organisations (issue 22, docs/collaboration.md): a CIO covering two
-- trusts, shared IT services, an ICB lead who also answers for a trust. An account keeps its
-- own place (users.role and users.organisation_id, or a group or national role: its "home");
-- each membership adds an organisation role in one more organisation. One membership per
-- account and organisation, held by the schema so two invitations racing add it once.
CREATE TABLE memberships (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    role TEXT NOT NULL CHECK (role IN ('org_approver', 'org_contributor')),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (user_id, organisation_id)
);
CREATE INDEX memberships_organisation ON memberships (organisation_id);

-- Which of its places a session works in: none means the account's home; a membership that
-- is removed drops its sessions back to the home.
ALTER TABLE sessions ADD COLUMN membership_id BIGINT REFERENCES memberships (id) ON DELETE SET NULL;
