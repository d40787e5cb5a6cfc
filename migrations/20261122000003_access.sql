-- Access: rosters, custom roles, tenant API keys, impersonation sessions.

-- Read models fed by the Tenant aggregate's roster events.
CREATE TABLE members_view (
    tenant_id  UUID NOT NULL,
    user_id    UUID NOT NULL,
    role       TEXT NOT NULL,
    joined_at  TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE INDEX members_view_user ON members_view (user_id);

CREATE TABLE roles_view (
    tenant_id   UUID NOT NULL,
    name        TEXT NOT NULL,
    permissions TEXT[] NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- API-key credentials: auth state beside the log, like `sessions`. Only the
-- SHA-256 of the secret is stored. Rows are written in the same transaction
-- as the ApiKey events; `last_used_at` is refreshed at most once a minute
-- and is the one column not derived from events.
CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL,
    secret_hash  BYTEA NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    name         TEXT NOT NULL,
    permissions  TEXT[] NOT NULL,
    created_by   JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);

CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id) WHERE revoked_at IS NULL;

-- An impersonation session belongs to the impersonated user and names the
-- platform admin behind it. It has no refresh token.
ALTER TABLE sessions ADD COLUMN impersonator_id UUID;
