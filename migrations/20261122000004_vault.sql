-- The provider-key vault. Sealed secrets live in the event log (LlmKeyAdded,
-- LlmKeyReplaced); the data keys that open them live here, wrapped by a
-- master key. Destroying a data key (crypto-shredding) nulls its material
-- and keeps a tombstone: the id is never reused and never gets material back.

CREATE TABLE data_keys (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL,
    master_key_id TEXT,
    wrapped       BYTEA,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    rewrapped_at  TIMESTAMPTZ,
    destroyed_at  TIMESTAMPTZ,
    CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL)),
    CHECK ((wrapped IS NULL) = (master_key_id IS NULL))
);

CREATE INDEX data_keys_live_by_master ON data_keys (master_key_id, id) WHERE wrapped IS NOT NULL;

CREATE FUNCTION tenantry_data_key_tombstone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'data key % is kept as a tombstone; it cannot be deleted', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.destroyed_at IS NOT NULL THEN
        RAISE EXCEPTION 'data key % was destroyed; it cannot change again', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER data_keys_tombstone
    BEFORE UPDATE OR DELETE ON data_keys
    FOR EACH ROW EXECUTE FUNCTION tenantry_data_key_tombstone();

-- Read model: provider keys, redacted.
CREATE TABLE llm_keys_view (
    id         UUID PRIMARY KEY,
    tenant_id  UUID NOT NULL,
    provider   TEXT NOT NULL,
    label      TEXT,
    key_hint   TEXT NOT NULL,
    created_by JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    rotated_at TIMESTAMPTZ
);

CREATE INDEX llm_keys_view_tenant ON llm_keys_view (tenant_id, provider);

-- Every resolve of a plaintext key: who, when, from which request. Append-only.
CREATE TABLE llm_key_accesses (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL,
    key_id      UUID NOT NULL,
    actor       JSONB NOT NULL,
    request_id  TEXT,
    accessed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX llm_key_accesses_key ON llm_key_accesses (key_id, id);

CREATE FUNCTION tenantry_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the % table is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER llm_key_accesses_append_only
    BEFORE UPDATE OR DELETE ON llm_key_accesses
    FOR EACH ROW EXECUTE FUNCTION tenantry_append_only();

CREATE TRIGGER llm_key_accesses_no_truncate
    BEFORE TRUNCATE ON llm_key_accesses
    FOR EACH STATEMENT EXECUTE FUNCTION tenantry_append_only();
