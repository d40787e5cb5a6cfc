-- Billing with Stripe: each tenant's Stripe customer (read model of the
-- `billing` projection; a tenant may have a customer before it has a plan),
-- and the reconciliation runs' reports (a side table: the last one is what
-- platform admins read).
CREATE TABLE billing_customers (
    tenant_id   UUID PRIMARY KEY,
    customer_id TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX billing_customers_customer ON billing_customers (customer_id);

CREATE TABLE billing_reconciliations (
    id          BIGSERIAL PRIMARY KEY,
    finished_at TIMESTAMPTZ NOT NULL,
    -- Differences found, and corrective commands that changed something.
    drift       INTEGER NOT NULL,
    fixed       INTEGER NOT NULL,
    report      JSONB NOT NULL
);
