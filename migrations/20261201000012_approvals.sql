-- Approval requests as lists show them (read model of the `approvals`
-- projection). `seq` is the tenant sequence of the request's first event:
-- lists run newest first by it, and a rebuild gives the same numbers.
-- `requester_user` is the member who asked, or who created the API key
-- that asked (neither may decide); `stage_role` the role the current stage
-- is restricted to; `decided_by` every member who decided.
CREATE TABLE approvals_view (
    id             UUID PRIMARY KEY,
    tenant_id      UUID NOT NULL,
    seq            BIGINT NOT NULL,
    action         TEXT NOT NULL,
    summary        TEXT NOT NULL,
    agent_id       UUID,
    requester      JSONB NOT NULL,
    requester_user UUID,
    policy         TEXT NOT NULL,
    stages         INTEGER NOT NULL,
    -- Each stage's role restriction, in order (null: any decider).
    stage_roles    JSONB NOT NULL,
    stage          INTEGER NOT NULL,
    stage_role     TEXT,
    status         TEXT NOT NULL,
    expires_at     TIMESTAMPTZ,
    decided_by     UUID[] NOT NULL DEFAULT '{}',
    requested_at   TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX approvals_view_tenant ON approvals_view (tenant_id, seq DESC);
CREATE INDEX approvals_view_expiring ON approvals_view (expires_at)
    WHERE status = 'pending' AND expires_at IS NOT NULL;
