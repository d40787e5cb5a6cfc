-- The event store: the append-only audit trail every aggregate writes to.
-- See docs/ARCHITECTURE.md ("Event store") and docs/adr/0001-own-event-repository.md.

CREATE TABLE events (
    -- Global order: projections and auditors read (tx_id, position) below the
    -- oldest running transaction, so a late-committing transaction is never skipped.
    position        BIGINT GENERATED ALWAYS AS IDENTITY,
    tx_id           XID8 NOT NULL DEFAULT pg_current_xact_id(),
    -- Per-tenant order: gapless and commit-ordered, assigned under the tenant's head-row lock.
    tenant_id       UUID NOT NULL,
    tenant_sequence BIGINT NOT NULL DEFAULT 0,
    aggregate_type  TEXT NOT NULL,
    aggregate_id    TEXT NOT NULL,
    sequence        BIGINT NOT NULL,
    event_type      TEXT NOT NULL,
    event_version   INTEGER NOT NULL,
    payload         JSONB NOT NULL,
    metadata        JSONB NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    prev_hash       BYTEA NOT NULL DEFAULT '\x',
    hash            BYTEA NOT NULL DEFAULT '\x',
    -- Optimistic concurrency: two writers of one aggregate version, exactly one wins.
    PRIMARY KEY (aggregate_type, aggregate_id, sequence),
    UNIQUE (position),
    UNIQUE (tenant_id, tenant_sequence),
    CHECK (sequence >= 1),
    CHECK (event_version >= 1),
    CHECK (jsonb_typeof(payload) = 'object'),
    -- The tenant column is the metadata's tenant: one source of truth.
    CHECK (metadata ->> 'tenant_id' = tenant_id::text)
);

CREATE INDEX events_global_order ON events (tx_id, position);

CREATE TABLE tenant_heads (
    tenant_id     UUID PRIMARY KEY,
    last_sequence BIGINT NOT NULL,
    last_hash     BYTEA NOT NULL
);

-- The canonical text an event's hash covers. Auditors recompute it with
-- tenantry_verify_chain(); changing it would break every existing chain.
CREATE FUNCTION tenantry_event_hash(prev BYTEA, e events) RETURNS BYTEA
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(prev || convert_to(concat_ws('|',
        e.tenant_id::text,
        e.tenant_sequence::text,
        e.aggregate_type,
        e.aggregate_id,
        e.sequence::text,
        e.event_type,
        e.event_version::text,
        e.payload::text,
        e.metadata::text,
        to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    ), 'UTF8'))
$$;

CREATE FUNCTION tenantry_events_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head tenant_heads%ROWTYPE;
BEGIN
    INSERT INTO tenant_heads (tenant_id, last_sequence, last_hash)
    VALUES (NEW.tenant_id, 0, '\x'::bytea)
    ON CONFLICT (tenant_id) DO NOTHING;

    -- This lock is held until commit: appends to one tenant are serialized, which
    -- makes the per-tenant sequence gapless and commit-ordered and the chain linear.
    SELECT * INTO head FROM tenant_heads WHERE tenant_id = NEW.tenant_id FOR UPDATE;

    NEW.tenant_sequence := head.last_sequence + 1;
    NEW.recorded_at := clock_timestamp();
    NEW.prev_hash := head.last_hash;
    NEW.hash := tenantry_event_hash(head.last_hash, NEW);

    UPDATE tenant_heads
       SET last_sequence = NEW.tenant_sequence, last_hash = NEW.hash
     WHERE tenant_id = NEW.tenant_id;
    RETURN NEW;
END
$$;

CREATE TRIGGER events_before_insert
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION tenantry_events_before_insert();

-- Append-only, enforced by the database for every role (triggers bind owners too).
CREATE FUNCTION tenantry_events_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER events_no_update_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION tenantry_events_immutable();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION tenantry_events_immutable();

-- Wake projectors: notifications are delivered on commit, one per transaction.
CREATE FUNCTION tenantry_events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenantry_events', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION tenantry_events_notify();

-- Recompute a tenant's hash chain. Returns the first tenant_sequence whose
-- link or hash does not match, or NULL when the whole chain verifies.
CREATE FUNCTION tenantry_verify_chain(tenant UUID) RETURNS BIGINT
LANGUAGE plpgsql STABLE AS $$
DECLARE
    e events;
    prev BYTEA := '\x';
    expected BIGINT := 1;
BEGIN
    FOR e IN SELECT * FROM events WHERE tenant_id = tenant ORDER BY tenant_sequence LOOP
        IF e.tenant_sequence <> expected
           OR e.prev_hash <> prev
           OR e.hash <> tenantry_event_hash(prev, e) THEN
            RETURN expected;
        END IF;
        prev := e.hash;
        expected := expected + 1;
    END LOOP;
    RETURN NULL;
END
$$;

-- Uniqueness across aggregates (user email, tenant slug): claimed in the same
-- transaction as the event that needs it, so of two racing claims exactly one commits.
CREATE TABLE unique_claims (
    scope      TEXT NOT NULL,
    value      TEXT NOT NULL,
    owner_id   TEXT NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, value)
);
