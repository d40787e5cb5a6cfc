-- Agents: each tenant's AI agents (read model of the `agents` projection).
CREATE TABLE agents_view (
    id                   UUID PRIMARY KEY,
    tenant_id            UUID NOT NULL,
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL,
    monthly_budget_minor BIGINT,
    -- Providers or provider/model the agent may use; empty: any.
    allow                JSONB NOT NULL,
    status               TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX agents_view_tenant ON agents_view (tenant_id, created_at, id);
