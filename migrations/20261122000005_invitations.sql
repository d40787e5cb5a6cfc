-- Invitations: token hashes beside the log, the read model, and the email
-- outbox fed from the log.

-- SHA-256 of each live invitation token (the token itself is derived by the
-- server and never stored). A resend replaces the row: the old token dies.
CREATE TABLE invitation_tokens (
    token_hash    BYTEA PRIMARY KEY,
    invitation_id UUID NOT NULL UNIQUE,
    tenant_id     UUID NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE invitations_view (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    status      TEXT NOT NULL,
    invited_by  UUID,
    accepted_by UUID,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX invitations_view_tenant ON invitations_view (tenant_id, id);
CREATE INDEX invitations_view_due ON invitations_view (expires_at) WHERE status = 'pending';

-- One row per email to send, inserted by the `outbox` projection in the same
-- transaction as its checkpoint (so each InvitationCreated / InvitationResent
-- event yields exactly one row), and worked off by the mailer.
CREATE TABLE email_outbox (
    id              UUID PRIMARY KEY,
    event_position  BIGINT NOT NULL UNIQUE,
    tenant_id       UUID NOT NULL,
    invitation_id   UUID NOT NULL,
    token_version   INT NOT NULL,
    recipient       TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ,
    CHECK (status IN ('pending', 'sent', 'failed', 'superseded'))
);

CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX email_outbox_invitation ON email_outbox (invitation_id, created_at);
