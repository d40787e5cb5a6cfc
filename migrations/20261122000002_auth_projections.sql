-- Authentication state. Secrets live here, never in the event log: password
-- hashes (argon2id) and SHA-256 hashes of refresh tokens. Written in the same
-- transaction as the events that change them.

CREATE TABLE credentials (
    user_id       UUID PRIMARY KEY,
    password_hash TEXT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    id             UUID PRIMARY KEY,
    user_id        UUID NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ,
    revoked_reason TEXT
);

CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    session_id UUID NOT NULL REFERENCES sessions (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    rotated_at TIMESTAMPTZ
);

CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Idempotency-Key records: the first response to a (caller, key) is replayed.
CREATE TABLE idempotency_keys (
    caller        TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  BYTEA NOT NULL,
    status        SMALLINT,
    response_body BYTEA,
    content_type  TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, key)
);

-- Projector checkpoints: written in the same transaction as the read-model rows.
CREATE TABLE projection_checkpoints (
    name       TEXT PRIMARY KEY,
    tx_id      XID8 NOT NULL DEFAULT '0',
    position   BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Read models. Every column is derived from events only, so a rebuild from
-- zero gives identical rows.
CREATE TABLE tenants_view (
    id               UUID PRIMARY KEY,
    name             TEXT NOT NULL,
    slug             TEXT NOT NULL,
    status           TEXT NOT NULL,
    settings         JSONB NOT NULL,
    suspended_reason TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE INDEX tenants_view_status ON tenants_view (status, id);

CREATE TABLE users_view (
    id                UUID PRIMARY KEY,
    email             TEXT NOT NULL,
    name              TEXT NOT NULL,
    status            TEXT NOT NULL,
    is_platform_admin BOOLEAN NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);

CREATE INDEX users_view_email ON users_view (lower(email));
