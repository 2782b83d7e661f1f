-- The gateway's tenants and their API keys. A key is shown once when made;
-- only its SHA-256 is stored (the secret is 256 random bits, so a fast hash
-- is enough), found by its short public prefix.
CREATE TABLE tenants (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The public part of the key ("hf_<prefix>_<secret>"), for lookup and
    -- for operators to tell keys apart.
    prefix        text NOT NULL UNIQUE,
    secret_hash   bytea NOT NULL,
    tenant_id     text NOT NULL REFERENCES tenants (id),
    name          text NOT NULL DEFAULT '',
    scopes        text[] NOT NULL,
    -- Requests per second this key may make (a second's worth at once); NULL
    -- means the gateway's default.
    rate_per_second  integer CHECK (rate_per_second > 0),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at DESC);
