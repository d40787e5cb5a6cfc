-- Signed checkpoints (docs/AUDIT.md): the head of a tenant's chain
-- (sequence and hash) at a time, signed with the server's Ed25519 key
-- `key_id`. Kept append-only: an auditor who saved one proves the history
-- up to it unchanged, even against someone who recomputed every hash.
CREATE TABLE audit_checkpoints (
    chain_id  UUID NOT NULL,
    sequence  BIGINT NOT NULL,
    hash      BYTEA NOT NULL,
    signed_at TIMESTAMPTZ NOT NULL,
    key_id    TEXT NOT NULL,
    signature BYTEA NOT NULL,
    PRIMARY KEY (chain_id, sequence)
);

CREATE TRIGGER audit_checkpoints_append_only
    BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION tenantry_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate
    BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION tenantry_append_only();
