-- Dunning: when a tenant's subscription last became past_due, for the
-- grace period after which its changes are refused (402).
ALTER TABLE billing_view ADD COLUMN past_due_since TIMESTAMPTZ;
