-- 0007: API keys with roles.
--
-- Only a SHA-256 of each key is stored: keys are 256-bit random tokens, so a fast hash is not
-- brute-forceable and keeps authentication to one indexed lookup. `prefix` (the first characters
-- of the key) is what listings show and what `jobline keys revoke` accepts.

CREATE TABLE api_keys (
    id           uuid        NOT NULL,
    name         text        NOT NULL,
    role         text        NOT NULL,
    prefix       text        NOT NULL,
    key_hash     text        NOT NULL,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    CONSTRAINT api_keys_pkey PRIMARY KEY (id),
    CONSTRAINT api_keys_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_prefix_key UNIQUE (prefix),
    CONSTRAINT api_keys_role_check CHECK (role IN ('developer', 'admin'))
);
