-- Event payloads past about 2 kB (a usage batch of 1,000 records is some
-- 250 kB) are compressed when stored. Postgres's own pglz cost a usage
-- batch's append more CPU than hashing it; lz4 compresses several times
-- faster. A server built without lz4 keeps pglz: nothing else changes,
-- and rows already stored keep the method they were written with.
DO $$
BEGIN
    ALTER TABLE events ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available on this server; event payloads stay pglz-compressed';
END $$;
