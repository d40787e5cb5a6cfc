-- People's data in events is sealed under their own data key (docs/AUDIT.md,
-- "Erasure"; ADR 0008). The keys are the vault's: `data_keys` rows that
-- name a `subject` (a person) instead of a tenant, one live key per subject,
-- rewrapped by `tenantry keys rotate` with the provider keys' and destroyed
-- (a tombstone kept) when the person is erased.
ALTER TABLE data_keys ALTER COLUMN tenant_id DROP NOT NULL;
ALTER TABLE data_keys ADD COLUMN subject UUID;
ALTER TABLE data_keys ADD CONSTRAINT data_keys_owner
    CHECK ((tenant_id IS NULL) <> (subject IS NULL));
CREATE UNIQUE INDEX data_keys_live_subject ON data_keys (subject)
    WHERE subject IS NOT NULL AND wrapped IS NOT NULL;
CREATE INDEX data_keys_subject ON data_keys (subject) WHERE subject IS NOT NULL;

-- Emails are found by their keyed hash; the read models hold the opened
-- email and name until the person is erased, then nothing.
DROP INDEX users_view_email;
ALTER TABLE users_view ALTER COLUMN email DROP NOT NULL;
ALTER TABLE users_view ALTER COLUMN name DROP NOT NULL;
ALTER TABLE users_view ADD COLUMN email_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE users_view ALTER COLUMN email_hash DROP DEFAULT;
CREATE INDEX users_view_email_hash ON users_view (email_hash);

ALTER TABLE invitations_view ALTER COLUMN email DROP NOT NULL;
ALTER TABLE invitations_view ADD COLUMN email_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE invitations_view ALTER COLUMN email_hash DROP DEFAULT;
CREATE INDEX invitations_view_email_hash ON invitations_view (email_hash);

-- An erased person's emails are not sent (`erased`), and the rows of what
-- was sent forget the address (recipient and last error emptied).
ALTER TABLE email_outbox ALTER COLUMN recipient DROP NOT NULL;
ALTER TABLE email_outbox ADD COLUMN recipient_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE email_outbox ALTER COLUMN recipient_hash DROP DEFAULT;
CREATE INDEX email_outbox_recipient_hash ON email_outbox (recipient_hash);
ALTER TABLE email_outbox DROP CONSTRAINT email_outbox_status_check;
ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_status_check
    CHECK (status IN ('pending', 'sent', 'failed', 'superseded', 'erased'));

-- What an installation must keep the same for its lifetime, by name: the
-- lookup key's fingerprint (a server or tool started with another key would
-- find no one by their address, and let an address register twice).
CREATE TABLE installation (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
