-- Chain format 2 (docs/AUDIT.md): an outside verifier can recompute every
-- hash from an export. The application computes each event's
-- `content_hash` (SHA-256 of the RFC 8785 canonical JSON of its content)
-- before the append; this trigger links it under the chain's head lock:
--   hash = sha256(prev_hash || content_hash || '<tenant_sequence>|<recorded_at>')
-- An append without a content hash (rows from before this migration, or
-- written straight in SQL) keeps format 1, hashed over PostgreSQL's text
-- of the JSONB values, which only the database can recompute.
ALTER TABLE events ADD COLUMN content_hash BYTEA;

-- An event's link in format 2.
CREATE FUNCTION tenantry_event_link(prev BYTEA, e events) RETURNS BYTEA
LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(prev || e.content_hash || convert_to(
        e.tenant_sequence::text || '|' ||
        to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'UTF8'))
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
    IF NEW.content_hash IS NULL THEN
        NEW.hash := tenantry_event_hash(head.last_hash, NEW);
    ELSE
        IF length(NEW.content_hash) <> 32 THEN
            RAISE EXCEPTION 'content_hash must be a SHA-256 digest (32 bytes)';
        END IF;
        NEW.hash := tenantry_event_link(head.last_hash, NEW);
    END IF;

    UPDATE chain_heads
       SET last_sequence = NEW.tenant_sequence, last_hash = NEW.hash
     WHERE chain_id = chain;
    RETURN NEW;
END
$$;

-- The links of a chain, in the database: the first sequence whose link
-- does not hold, or NULL. For format-2 events this checks the links over
-- the stored content hashes, not the content itself: the content is
-- checked by recomputing its canonical form (`tenantry audit verify`).
CREATE OR REPLACE FUNCTION tenantry_verify_chain(chain UUID) RETURNS BIGINT
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
           OR e.hash <> (CASE WHEN e.content_hash IS NULL THEN tenantry_event_hash(prev, e)
                              ELSE tenantry_event_link(prev, e) END) THEN
            RETURN expected;
        END IF;
        prev := e.hash;
        expected := expected + 1;
    END LOOP;
    RETURN NULL;
END
$$;
