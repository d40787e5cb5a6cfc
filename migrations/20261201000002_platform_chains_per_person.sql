-- Platform-scope events (users, sessions) were all chained in one chain,
-- the platform pseudo-tenant's: every sign-in, refresh and profile change
-- in the installation queued on one head row, about one commit per fsync.
-- They now join one chain per person (`chain_id`: the user; for a failed
-- sign-in on an address nobody has, the attempt). A tenant's events keep
-- `chain_id` NULL and their tenant's chain, hashed exactly as before.

ALTER TABLE events ADD COLUMN chain_id UUID;

-- The chain an event is linked into: its own chain id, else its tenant.
-- `tenant_sequence` is the event's place in that chain.
ALTER TABLE events DROP CONSTRAINT events_tenant_id_tenant_sequence_key;
CREATE UNIQUE INDEX events_chain_sequence ON events ((COALESCE(chain_id, tenant_id)), tenant_sequence);
CREATE INDEX events_tenant_sequence ON events (tenant_id, tenant_sequence);

ALTER TABLE tenant_heads RENAME TO chain_heads;
ALTER TABLE chain_heads RENAME COLUMN tenant_id TO chain_id;

-- The canonical text an event's hash covers: as before, with the chain id
-- first when the event is not in its tenant's chain.
CREATE OR REPLACE FUNCTION tenantry_event_hash(prev BYTEA, e events) RETURNS BYTEA
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(prev || convert_to(concat_ws('|',
        CASE WHEN e.chain_id IS NULL THEN NULL ELSE e.chain_id::text END,
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

CREATE OR REPLACE FUNCTION tenantry_events_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    chain UUID := COALESCE(NEW.chain_id, NEW.tenant_id);
    head chain_heads%ROWTYPE;
BEGIN
    INSERT INTO chain_heads (chain_id, last_sequence, last_hash)
    VALUES (chain, 0, '\x'::bytea)
    ON CONFLICT (chain_id) DO NOTHING;

    -- This lock is held until commit: appends to one chain are serialized, which
    -- makes the chain's sequence gapless and commit-ordered and the chain linear.
    SELECT * INTO head FROM chain_heads WHERE chain_id = chain FOR UPDATE;

    NEW.tenant_sequence := head.last_sequence + 1;
    NEW.recorded_at := clock_timestamp();
    NEW.prev_hash := head.last_hash;
    NEW.hash := tenantry_event_hash(head.last_hash, NEW);

    UPDATE chain_heads
       SET last_sequence = NEW.tenant_sequence, last_hash = NEW.hash
     WHERE chain_id = chain;
    RETURN NEW;
END
$$;

-- Recompute a chain (a tenant's, or a person's). Returns the first sequence
-- whose link or hash does not match, or NULL when the whole chain verifies.
DROP FUNCTION tenantry_verify_chain(UUID);
CREATE FUNCTION tenantry_verify_chain(chain UUID) RETURNS BIGINT
LANGUAGE plpgsql STABLE AS $$
DECLARE
    e events;
    prev BYTEA := '\x';
    expected BIGINT := 1;
BEGIN
    FOR e IN SELECT * FROM events WHERE COALESCE(chain_id, tenant_id) = chain
              ORDER BY tenant_sequence LOOP
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
