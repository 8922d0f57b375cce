ALTER TABLE sessions DROP COLUMN sso_provider;
DROP TABLE sso_logins;
DROP TABLE sso_provider_settings;
DROP TABLE sso_allowed_domains;
DROP TABLE sso_identities;
