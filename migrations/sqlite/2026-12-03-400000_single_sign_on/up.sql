-- Single sign-on with OpenID Connect providers (services::auth::sso, docs/security.md).

-- An account's identity at a provider: the provider's short name (DMA_OIDC_PROVIDERS) and
-- the ID token's subject. One account per (provider, subject), and one identity per
-- provider per account, held by the schema so two first sign-ins racing cannot both link.
-- `email` is the address the provider vouched for when the identity was linked.
CREATE TABLE sso_identities (
    id INTEGER PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    linked_at TIMESTAMP NOT NULL,
    last_sign_in_at TIMESTAMP
);
CREATE UNIQUE INDEX sso_identities_provider_subject ON sso_identities (provider, subject);
CREATE UNIQUE INDEX sso_identities_provider_user ON sso_identities (provider, user_id);
CREATE INDEX sso_identities_user ON sso_identities (user_id);

-- Which provider may vouch for which email domain, as an administrator allowed it.
CREATE TABLE sso_allowed_domains (
    id INTEGER PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    domain TEXT NOT NULL,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX sso_allowed_domains_provider_domain ON sso_allowed_domains (provider, domain);

-- An administrator's choices per provider: whether a first sign-in with no account creates
-- one (with the least role). No row means no.
CREATE TABLE sso_provider_settings (
    provider TEXT PRIMARY KEY NOT NULL,
    create_accounts BOOLEAN NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- A sign-in sent to a provider and not yet back: the state's digest, the browser it was
-- started in (the digest of a cookie), the nonce and PKCE verifier to check the answer
-- with, and where to go afterwards. Deleted when the answer comes (single use) or expires.
CREATE TABLE sso_logins (
    id INTEGER PRIMARY KEY NOT NULL,
    state_hash TEXT NOT NULL,
    browser_hash TEXT NOT NULL,
    provider TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next_path TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX sso_logins_state ON sso_logins (state_hash);
CREATE INDEX sso_logins_expires ON sso_logins (expires_at);

-- The provider a session was signed in with, so signing out can offer the provider's own.
ALTER TABLE sessions ADD COLUMN sso_provider TEXT;
