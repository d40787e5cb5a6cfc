-- Billing, first part: the plan catalogue and each tenant's plan and
-- status (manual mode). Read models of the `billing` projection.

CREATE TABLE plans_view (
    id         UUID PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    -- The current version's terms: price, currency, interval, trial days,
    -- entitlements (as the Plan events carry them).
    terms      JSONB NOT NULL,
    retired    BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE billing_view (
    tenant_id     UUID PRIMARY KEY,
    plan_id       UUID NOT NULL,
    plan_key      TEXT NOT NULL,
    version       INTEGER NOT NULL,
    -- The terms of the version the tenant holds.
    terms         JSONB NOT NULL,
    status        TEXT NOT NULL,
    trial_ends_at TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ NOT NULL
);
