-- Billing: the Stripe subscription a tenant's status comes from.
ALTER TABLE billing_view
    ADD COLUMN subscription_id      TEXT,
    ADD COLUMN cancel_at_period_end BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN current_period_end   TIMESTAMPTZ;
