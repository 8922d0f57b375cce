-- A second factor (TOTP, RFC 6238): at most one per account (the primary key), its secret
-- sealed with a key derived from DMA_SECRET_KEY (never stored readable), and the last time
-- step accepted, so a code cannot be used twice.
CREATE TABLE second_factors (
    user_id BIGINT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed TEXT NOT NULL,
    enabled_at TIMESTAMP NOT NULL,
    last_step BIGINT NOT NULL
);

-- One-use recovery codes, shown once and stored as digests.
CREATE TABLE recovery_codes (
    id INTEGER PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE UNIQUE INDEX recovery_codes_user_code ON recovery_codes (user_id, code_hash);

-- A session is 'full' (signed in), 'second_factor' (password accepted, code still to come)
-- or 'enrol' (password accepted; the role requires a second factor the account has not set
-- up). authenticated_at is when the person last proved who they are (sign-in or
-- re-authentication), for the actions that ask again after a few minutes; NULL means at
-- created_at.
ALTER TABLE sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'full';
ALTER TABLE sessions ADD COLUMN authenticated_at TIMESTAMP;
