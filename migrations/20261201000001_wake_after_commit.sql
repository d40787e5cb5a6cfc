-- Projectors are no longer woken by a NOTIFY inside the append
-- transaction: a transaction that has issued NOTIFY holds Postgres's notify
-- lock through its commit's WAL flush, which serialized every append commit
-- in the cluster and defeated group commit. The store now wakes this
-- process's projectors after commit, and one notifier task per process
-- sends `pg_notify('tenantry_events', '')` outside any append, coalescing
-- bursts (see docs/ARCHITECTURE.md, "Waking the projectors").
DROP TRIGGER events_notify ON events;
DROP FUNCTION tenantry_events_notify();
