-- Billing: each tenant's invoices, as Stripe's invoice events describe
-- them (amounts in minor units). Read model of the `billing` projection.
CREATE TABLE invoices_view (
    tenant_id          UUID NOT NULL,
    id                 TEXT PRIMARY KEY,
    number             TEXT,
    status             TEXT NOT NULL,
    currency           TEXT NOT NULL,
    amount_due         BIGINT NOT NULL,
    amount_paid        BIGINT NOT NULL,
    hosted_invoice_url TEXT,
    invoice_pdf        TEXT,
    period_start       TIMESTAMPTZ,
    period_end         TIMESTAMPTZ,
    updated_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX invoices_view_tenant ON invoices_view (tenant_id, period_start DESC);
