-- API tokens expire: the owner chooses how long when making one (at most 90 days). Tokens
-- made before this have no stated end; they are given the longest a new one could have.
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMP;
UPDATE api_tokens SET expires_at = strftime('%Y-%m-%d %H:%M:%f', created_at, '+90 days');
