-- The secret each service signs its page tokens with (HMAC-SHA256), one row
-- per service, made by the first replica that starts (see
-- holdfast.platform.pagination.page_token_secret): every replica signs and
-- checks alike without a setting to distribute. Deleting a row rotates that
-- service's secret at its next start.
CREATE TABLE page_token_secrets (
    service    text PRIMARY KEY,
    secret     bytea NOT NULL CHECK (length(secret) >= 16),
    created_at timestamptz NOT NULL DEFAULT now()
);
