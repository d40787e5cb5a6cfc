//! Properties of the event store and the projector runtime, against a real
//! Postgres: append-only, late commits, crash safety, leadership, rebuilds.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use tenantry_projections::runtime::{self, run_batch, ProjectorRuntime};
use tenantry_projections::{Checkpoint, Projection, ProjectionError, ProjectorConfig, StoredEvent};
use tenantry_tests::TestDb;
use tokio::sync::watch;
use uuid::Uuid;

/// Append one TenantCreated event with raw SQL on the given connection.
async fn append_tenant_created(conn: &mut PgConnection, slug: &str) -> Checkpoint {
    let id = Uuid::now_v7();
    let row: (String, i64) = sqlx::query_as(
        "INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ($1, 'tenant', $2, 1, 'TenantCreated', 1, $3, $4) RETURNING tx_id::text, position",
    )
    .bind(id)
    .bind(id.to_string())
    .bind(json!({ "tenant_id": id, "name": slug, "slug": slug, "settings": {} }))
    .bind(json!({ "tenant_id": id, "actor": { "type": "system", "name": "test" }, "impersonator": null, "request_id": null, "occurred_at": "2026-11-22T00:00:00Z" }))
    .fetch_one(conn)
    .await
    .expect("append");
    Checkpoint::from_parts(&row.0, row.1).unwrap()
}

/// Append an event no built-in projection reads, in the given transaction
/// id when one is named (as a late or out-of-order writer would leave it).
async fn append_noted(pool: &PgPool, tx_id: Option<&str>) -> Checkpoint {
    let id = Uuid::now_v7();
    let (tx_id, position): (String, i64) = sqlx::query_as(
        "INSERT INTO events (tx_id, tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES (COALESCE($1::text::xid8, pg_current_xact_id()), $2, 'test', $3, 1, 'Noted', 1, '{}', $4) \
         RETURNING tx_id::text, position",
    )
    .bind(tx_id)
    .bind(id)
    .bind(id.to_string())
    .bind(json!({ "tenant_id": id }))
    .fetch_one(pool)
    .await
    .unwrap();
    Checkpoint::from_parts(&tx_id, position).unwrap()
}

async fn append_committed(pool: &PgPool, slug: &str) -> Checkpoint {
    let mut conn = pool.acquire().await.unwrap();
    append_tenant_created(&mut conn, slug).await
}

/// Wait until no transaction older than `cp` runs anywhere in the cluster
/// (xmin is cluster-wide: other tests' transactions hold it back too).
async fn wait_visible(pool: &PgPool, cp: Checkpoint) {
    wait_until("events to become readable", || async {
        let xmin: String =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                .fetch_one(pool)
                .await
                .unwrap();
        xmin.parse::<u64>().unwrap() > cp.tx_id
    })
    .await;
}

async fn tenant_slugs(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT slug FROM tenants_view ORDER BY slug")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Records every position it sees in a table whose primary key refuses a
/// repeat, and can be told to fail at one position (a crash mid-batch).
struct Ledger {
    fail_at: std::sync::Mutex<Option<i64>>,
}

impl Ledger {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            fail_at: std::sync::Mutex::new(None),
        })
    }
}

impl Projection for Ledger {
    fn name(&self) -> &'static str {
        "test_ledger"
    }
    fn apply_batch<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [StoredEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        async move {
            for e in events {
                if *self.fail_at.lock().unwrap() == Some(e.position) {
                    return Err(ProjectionError::decode(e, "simulated crash"));
                }
                sqlx::query("INSERT INTO test_ledger (position) VALUES ($1)")
                    .bind(e.position)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        }
        .boxed()
    }
    fn reset<'a>(&'a self, tx: &'a mut PgConnection) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        async move {
            sqlx::query("DELETE FROM test_ledger").execute(tx).await?;
            Ok(())
        }
        .boxed()
    }
}

async fn ledger_db() -> (TestDb, PgPool) {
    let db = TestDb::create().await;
    let pool = db.migrated_pool().await;
    sqlx::query(
        "CREATE TABLE test_ledger (position BIGINT PRIMARY KEY, \
                                   applied BIGINT GENERATED ALWAYS AS IDENTITY)",
    )
    .execute(&pool)
    .await
    .unwrap();
    (db, pool)
}

async fn ledger_in_applied_order(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT position FROM test_ledger ORDER BY applied")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn ledger(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT position FROM test_ledger ORDER BY position")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn update_delete_and_truncate_on_events_fail() {
    let db = TestDb::create().await;
    let pool = db.migrated_pool().await;
    append_committed(&pool, "immutable").await;
    for sql in [
        "UPDATE events SET payload = '{}'",
        "DELETE FROM events",
        "TRUNCATE events",
        "UPDATE events SET tenant_sequence = 99",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn a_late_committing_transaction_is_never_skipped() {
    let db = TestDb::create().await;
    let pool = db.migrated_pool().await;
    let projection = tenantry_projections::tenants::PROJECTION;

    // X appends and stays open.
    let mut x_conn = PgConnection::connect(&db.url).await.unwrap();
    let mut x_tx = x_conn.begin().await.unwrap();
    let x = append_tenant_created(&mut x_tx, "event-x").await;
    // Y appends and commits after X started, so it is numbered after X.
    let y = append_committed(&pool, "event-y").await;
    assert!(y > x);

    let (applied, checkpoint) = run_batch(&pool, &projection, 100, Checkpoint::ZERO)
        .await
        .unwrap();
    assert_eq!(
        applied, 0,
        "nothing after a running transaction is handed out"
    );
    assert!(
        checkpoint < x,
        "the checkpoint never moves past X before X is visible"
    );
    assert!(tenant_slugs(&pool).await.is_empty());

    x_tx.commit().await.unwrap();
    wait_visible(&pool, y).await;
    let checkpoint = runtime::catch_up(&pool, &projection, 100).await.unwrap();
    assert_eq!(checkpoint, y);
    assert_eq!(tenant_slugs(&pool).await, vec!["event-x", "event-y"]);
}

/// A rebuild (catch-up) reads everything committed before it started, even
/// while an older transaction still holds the read horizon back: it waits
/// instead of reporting a read model done that misses the newest events.
#[tokio::test]
async fn catching_up_waits_for_what_was_committed_before_it_started() {
    let db = TestDb::create().await;
    let pool = db.migrated_pool().await;
    let projection = tenantry_projections::tenants::PROJECTION;
    // An older transaction holds the horizon (it need not write anything).
    let mut old_conn = PgConnection::connect(&db.url).await.unwrap();
    let mut old_tx = old_conn.begin().await.unwrap();
    let _: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut *old_tx)
        .await
        .unwrap();
    let y = append_committed(&pool, "event-y").await;

    let rebuild = {
        let pool = pool.clone();
        tokio::spawn(async move { runtime::rebuild(&pool, &projection, 100).await })
    };
    let mut rebuild = std::pin::pin!(rebuild);
    // While the older transaction runs, the rebuild must not declare itself done.
    let early = tokio::time::timeout(Duration::from_millis(300), &mut rebuild).await;
    assert!(
        early.is_err(),
        "the rebuild finished before it could read the committed event: {early:?}"
    );
    old_tx.commit().await.unwrap();
    let checkpoint = rebuild.await.unwrap().unwrap();
    assert!(checkpoint >= y);
    assert_eq!(tenant_slugs(&pool).await, vec!["event-y"]);
}

/// Transaction ids are ordered as numbers, not as text: a batch that ends
/// in transaction 10 must not skip one still waiting in transaction 9
/// (as text, "10" sorts before "9").
#[tokio::test]
async fn the_log_is_read_in_numeric_transaction_order() {
    let (_db, pool) = ledger_db().await;
    let mut positions = Vec::new();
    // Written out of order on purpose: transaction 10 gets the lower position.
    for tx_id in ["10", "9", "100"] {
        positions.push(append_noted(&pool, Some(tx_id)).await.position);
    }
    let projection = Ledger::new();
    runtime::catch_up(&pool, projection.as_ref(), 1)
        .await
        .unwrap();
    // Applied in the order 9, 10, 100.
    assert_eq!(
        ledger_in_applied_order(&pool).await,
        [positions[1], positions[0], positions[2]]
    );
}

/// A stretch of the log a projection does not read costs it no write: it
/// only moves how far this process has read. The next event it does read
/// is applied, and its checkpoint then moves past both.
#[tokio::test]
async fn a_projection_skips_what_it_does_not_read_without_writing() {
    let (_db, pool) = ledger_db().await;
    let projection = tenantry_projections::tenants::PROJECTION;
    let mut last = Checkpoint::ZERO;
    for _ in 0..3 {
        last = append_noted(&pool, None).await;
    }
    wait_visible(&pool, last).await;
    let (read, seen) = run_batch(&pool, &projection, 100, Checkpoint::ZERO)
        .await
        .unwrap();
    assert_eq!((read, seen), (3, last));
    let stored = runtime::stored_checkpoint(&pool, "tenants").await.unwrap();
    assert_eq!(stored, Checkpoint::ZERO, "nothing was written");

    let created = append_committed(&pool, "read-this").await;
    wait_visible(&pool, created).await;
    let (read, reached) = run_batch(&pool, &projection, 100, seen).await.unwrap();
    assert_eq!((read, reached), (1, created));
    assert_eq!(tenant_slugs(&pool).await, vec!["read-this"]);
    let stored = runtime::stored_checkpoint(&pool, "tenants").await.unwrap();
    assert_eq!(stored, created);
}

#[tokio::test]
async fn a_projector_stopped_between_batches_resumes_without_loss_or_repeat() {
    let (_db, pool) = ledger_db().await;
    let projection = Ledger::new();
    let mut positions = Vec::new();
    let mut last = Checkpoint::ZERO;
    for i in 0..7 {
        last = append_committed(&pool, &format!("crash-{i}")).await;
        positions.push(last.position);
    }
    wait_visible(&pool, last).await;
    let (applied, first) = run_batch(&pool, projection.as_ref(), 3, Checkpoint::ZERO)
        .await
        .unwrap();
    assert_eq!((applied, first.position), (3, positions[2]));

    // A crash inside the next batch: nothing of it is kept.
    *projection.fail_at.lock().unwrap() = Some(positions[4]);
    assert!(run_batch(&pool, projection.as_ref(), 3, first)
        .await
        .is_err());
    assert_eq!(ledger(&pool).await, positions[..3].to_vec());
    assert_eq!(
        runtime::stored_checkpoint(&pool, "test_ledger")
            .await
            .unwrap(),
        first
    );

    // A fresh projector resumes from the checkpoint; the ledger's primary key
    // would refuse any repeated event.
    *projection.fail_at.lock().unwrap() = None;
    let resumed = Ledger::new();
    runtime::catch_up(&pool, resumed.as_ref(), 3).await.unwrap();
    assert_eq!(ledger(&pool).await, positions);
}

#[tokio::test]
async fn rebuilding_gives_the_same_rows_as_the_live_projection() {
    let app = tenantry_tests::TestApp::spawn().await;
    let token = app.admin_token().await;
    // Every event the tenants view shows, several per tenant, so a batch
    // folds creations, renames, settings, suspensions and archival together.
    let mut ids = Vec::new();
    for name in ["Alpha", "Beta", "Gamma", "Delta"] {
        let t = app.create_tenant(&token, name).await;
        let id = t["id"].as_str().unwrap().to_string();
        let path = format!("/v1/tenants/{id}");
        for (i, body) in [
            json!({"name": format!("{name} renamed")}),
            json!({"settings": {"max_seats": 7}}),
            json!({"name": format!("{name} final"), "settings": {"locale": "fr"}}),
        ]
        .into_iter()
        .enumerate()
        {
            let (status, _) = app.patch(&path, &token, body).await;
            assert_eq!(status, 200, "patch {i} of {name}");
        }
        ids.push(id);
    }
    let suspend = |id: &str| format!("/v1/tenants/{id}/suspend");
    for id in &ids[..3] {
        app.post(&suspend(id), &token, json!({"reason": "unpaid"}))
            .await;
    }
    app.post(
        &format!("/v1/tenants/{}/reactivate", ids[1]),
        &token,
        json!({}),
    )
    .await;
    app.delete(&format!("/v1/tenants/{}", ids[2]), &token).await;
    app.create_user(&token, "rebuild@x.io", "password-123")
        .await;
    let snapshot = |pool: PgPool| async move {
        let mut views = Vec::new();
        for view in ["tenants_view", "users_view", "members_view", "roles_view"] {
            let rows: Vec<(String,)> = sqlx::query_as(&format!(
                "SELECT row_to_json(v)::text FROM {view} v ORDER BY row_to_json(v)::text"
            ))
            .fetch_all(&pool)
            .await
            .unwrap();
            views.push(rows);
        }
        views
    };
    let live = snapshot(app.pool.clone()).await;
    assert_eq!(live[0].len(), 4);
    let rows: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT name, status, suspended_reason, settings::text FROM tenants_view ORDER BY name",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let settings = r#"{"locale": "fr", "max_seats": 7}"#.to_string();
    let row = |name: &str, status: &str, reason: Option<&str>| {
        (
            name.to_string(),
            status.to_string(),
            reason.map(str::to_string),
            settings.clone(),
        )
    };
    assert_eq!(
        rows,
        [
            row("Alpha final", "suspended", Some("unpaid")),
            row("Beta final", "active", None),
            row("Delta final", "active", None),
            row("Gamma final", "archived", Some("unpaid")),
        ]
    );
    // Batches of 2 split each tenant's events; batches of 1000 fold them all at once.
    for batch_size in [2, 1000] {
        for projection in app.projections() {
            runtime::rebuild(&app.pool, projection.as_ref(), batch_size)
                .await
                .unwrap();
        }
        assert_eq!(
            snapshot(app.pool.clone()).await,
            live,
            "rebuilt in batches of {batch_size}"
        );
    }
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn of_two_projector_instances_one_leads_and_the_other_takes_over() {
    let (_db, pool) = ledger_db().await;
    let config = ProjectorConfig {
        batch_size: 50,
        poll_interval: Duration::from_millis(50),
        ..ProjectorConfig::default()
    };
    let (stop_a, rx_a) = watch::channel(false);
    let (a, tasks_a) =
        ProjectorRuntime::start(pool.clone(), vec![Ledger::new()], config.clone(), rx_a);
    wait_until("instance A to lead", || async {
        a.is_leader("test_ledger")
    })
    .await;
    let (stop_b, rx_b) = watch::channel(false);
    let (b, tasks_b) = ProjectorRuntime::start(pool.clone(), vec![Ledger::new()], config, rx_b);

    let mut expected = Vec::new();
    for i in 0..20 {
        expected.push(append_committed(&pool, &format!("lead-{i}")).await.position);
    }
    wait_until("A to apply everything", || async {
        ledger(&pool).await.len() == 20
    })
    .await;
    assert!(a.is_leader("test_ledger"));
    assert!(!b.is_leader("test_ledger"), "only one instance leads");

    stop_a.send(true).unwrap();
    tasks_a.join().await;
    for i in 0..5 {
        expected.push(
            append_committed(&pool, &format!("after-{i}"))
                .await
                .position,
        );
    }
    wait_until("B to take over", || async { b.is_leader("test_ledger") }).await;
    wait_until("B to apply the rest", || async {
        ledger(&pool).await.len() == 25
    })
    .await;
    // The ledger's primary key proves no event was applied twice.
    assert_eq!(ledger(&pool).await, expected);
    stop_b.send(true).unwrap();
    tasks_b.join().await;
}

#[tokio::test]
async fn the_per_tenant_sequence_is_gapless_and_the_hash_chain_verifies() {
    let db = TestDb::create().await;
    let pool = db.migrated_pool().await;
    let tenant = Uuid::now_v7();
    // Ten concurrent appends to one tenant's stream, one aggregate each.
    let mut handles = Vec::new();
    for _ in 0..10 {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            let agg = Uuid::now_v7().to_string();
            sqlx::query(
                "INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                 VALUES ($1, 'probe', $2, 1, 'Probed', 1, '{}', jsonb_build_object('tenant_id', $1::text))",
            )
            .bind(tenant)
            .bind(agg)
            .execute(&pool)
            .await
            .unwrap();
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    // Positions come from a default evaluated before the head-row lock, so
    // they need not follow the lock order; the tenant sequence does.
    let seqs: Vec<i64> = sqlx::query_scalar(
        "SELECT tenant_sequence FROM events WHERE tenant_id = $1 ORDER BY tenant_sequence",
    )
    .bind(tenant)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>(), "gapless");
    // Each event links to the one before it in tenant order: the chain is linear.
    let links: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events e JOIN events p ON p.tenant_id = e.tenant_id            AND p.tenant_sequence = e.tenant_sequence - 1 AND e.prev_hash = p.hash WHERE e.tenant_id = $1",
    )
    .bind(tenant).fetch_one(&pool).await.unwrap();
    assert_eq!(links, 9);
    let broken = first_broken_link(&pool, tenant).await;
    assert_eq!(broken, None);
    // A metadata tenant that disagrees with the column is refused.
    let err = sqlx::query(
        "INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ($1, 'probe', 'x', 1, 'Probed', 1, '{}', '{\"tenant_id\": \"00000000-0000-0000-0000-000000000000\"}')",
    )
    .bind(tenant)
    .execute(&pool)
    .await;
    assert!(err.is_err());
}

/// Each process's executor keeps aggregate state between commands; a
/// command must still see what another process appended meanwhile.
#[tokio::test]
async fn cached_aggregate_state_catches_up_with_another_process() {
    use tenantry_api::store::Store;
    use tenantry_domain::tenant::{Tenant, TenantCommand, TenantEvent};
    use tenantry_domain::values::{Slug, TenantName, TenantSettings};
    use tenantry_domain::{Actor, EventMetadata};

    let db = TestDb::create().await;
    let pool = db.migrated_pool().await;
    let (here, there) = (Store::new(pool.clone()), Store::new(pool.clone()));
    let id = Uuid::now_v7();
    let meta = EventMetadata::new(id, Actor::system("test"), None, chrono::Utc::now());
    let rename = |name: &str| TenantCommand::UpdateTenant {
        name: Some(TenantName::parse(name).unwrap()),
        settings_patch: None,
    };
    let run = |store: &Store, command: TenantCommand| {
        let (store, meta) = (store.clone(), meta.clone());
        async move {
            store
                .execute::<Tenant>(id.into(), command, &meta)
                .await
                .map_err(|e| format!("{e:?}"))
                .unwrap()
                .events
                .len()
        }
    };
    let create = TenantCommand::CreateTenant {
        tenant_id: id.into(),
        name: TenantName::parse("One").unwrap(),
        slug: Slug::parse("one").unwrap(),
        settings: TenantSettings::parse(json!({})).unwrap(),
        owner: None,
    };
    let name_seen_by = |store: &Store| {
        let store = store.clone();
        async move {
            let (tenant, version) = store.load::<Tenant>(id.into()).await.unwrap();
            (tenant.name.unwrap().as_str().to_string(), version)
        }
    };
    assert_eq!(run(&here, create).await, 1);
    assert_eq!(name_seen_by(&here).await, ("One".to_string(), 1));
    // `here` now holds the tenant named One; `there` renames it.
    assert_eq!(run(&there, rename("Two")).await, 1);
    assert_eq!(name_seen_by(&here).await, ("Two".to_string(), 2));
    assert_eq!(run(&here, rename("Two")).await, 0);
    assert_eq!(run(&here, rename("Three")).await, 1);
    assert_eq!(name_seen_by(&there).await, ("Three".to_string(), 3));
    // A refused command leaves the cached state usable.
    assert!(here
        .execute::<Tenant>(id.into(), TenantCommand::ReactivateTenant, &meta)
        .await
        .is_err());
    assert_eq!(run(&here, rename("Four")).await, 1);
    assert_eq!(name_seen_by(&here).await, ("Four".to_string(), 4));
    assert_eq!(name_seen_by(&there).await, ("Four".to_string(), 4));

    // Commands on a stale cache, with no read in between. A refusal is
    // confirmed against the log: `here` still thinks the tenant is active.
    assert_eq!(
        run(&there, TenantCommand::SuspendTenant { reason: "r".into() }).await,
        1
    );
    assert_eq!(run(&here, TenantCommand::ReactivateTenant).await, 1);
    // So is a no-op: `here` thinks the name is Four.
    assert_eq!(run(&there, rename("Five")).await, 1);
    assert_eq!(run(&here, rename("Five")).await, 0);
    // An append on a stale state loses the race and is decided again.
    assert_eq!(run(&there, rename("Six")).await, 1);
    let committed = here
        .execute::<Tenant>(id.into(), rename("Seven"), &meta)
        .await
        .map_err(|e| format!("{e:?}"))
        .unwrap();
    match committed.events.as_slice() {
        [TenantEvent::TenantRenamed {
            name,
            previous_name,
        }] => assert_eq!((name.as_str(), previous_name.as_str()), ("Seven", "Six")),
        other => panic!("expected one rename, got {other:?}"),
    }
    assert_eq!(name_seen_by(&there).await, ("Seven".to_string(), 9));
}

/// Two servers on one database, neither polling in time: the one that did
/// not write learns of the write from the writer's notification, sent after
/// its commit (the append itself notifies nobody).
#[tokio::test]
async fn another_process_learns_of_appends_from_the_notification_after_commit() {
    use tenantry_tests::TestApp;
    let slow = [("TENANTRY_PROJECTOR_POLL_MS", "600000")];
    let a = TestApp::spawn_with(&slow).await;
    let admin = a.admin_token().await;
    let (s, tenant) = a
        .post("/v1/tenants", &admin, json!({ "name": "Before" }))
        .await;
    assert_eq!(s, 201);
    let tid = tenant["id"].as_str().unwrap().to_string();
    // The second server shares the database (and does not drop it).
    let shared = TestDb {
        name: String::new(),
        url: a.db.url.clone(),
    };
    let b = TestApp::spawn_on(shared, &slow).await;
    // A leads every projection (it started first); B writes.
    let (s, _) = b
        .patch(
            &format!("/v1/tenants/{tid}"),
            &admin,
            json!({ "name": "After" }),
        )
        .await;
    assert_eq!(s, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, t) = a.get(&format!("/v1/tenants/{tid}"), &admin).await;
        if t["name"] == "After" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "A never applied B's event: {t}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.stop().await;
}

/// No append transaction notifies: the wake-up is sent after commit, in a
/// statement of its own (the old trigger held the cluster's notify lock
/// through every append's commit).
#[tokio::test]
async fn no_trigger_notifies_inside_an_append() {
    let db = TestDb::create().await;
    let pool = db.migrated_pool().await;
    let triggers: Vec<String> = sqlx::query_scalar(
        "SELECT tgname::text FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        !triggers.iter().any(|t| t.contains("notify")),
        "{triggers:?}"
    );
    let functions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_proc WHERE prosrc ILIKE '%pg_notify%' AND proname LIKE 'tenantry%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(functions, 0);
}

/// An append whose wake-up came while an older transaction held the read
/// horizon is still applied once that transaction ends, though nothing
/// wakes the projector again and it polls only every ten minutes.
#[tokio::test]
async fn an_event_held_behind_the_horizon_is_applied_when_the_horizon_moves() {
    use tenantry_tests::TestApp;
    let app = TestApp::spawn_with(&[("TENANTRY_PROJECTOR_POLL_MS", "600000")]).await;
    let admin = app.admin_token().await;
    let (s, tenant) = app
        .post("/v1/tenants", &admin, json!({ "name": "Before" }))
        .await;
    assert_eq!(s, 201);
    let tid = tenant["id"].as_str().unwrap().to_string();
    // An older transaction with a transaction id: the horizon stays below it.
    let mut blocker = PgConnection::connect(&app.db.url).await.unwrap();
    let mut tx = blocker.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *tx)
        .await
        .unwrap();
    // The rename commits and wakes the projector, which cannot read it yet
    // (the answer waits for read-your-writes, then gives up).
    let rename = {
        let (client, url, admin) = (
            app.client.clone(),
            app.url(&format!("/v1/tenants/{tid}")),
            admin.clone(),
        );
        tokio::spawn(async move {
            client
                .patch(url)
                .bearer_auth(admin)
                .json(&json!({ "name": "After" }))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    let head_after = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE event_type = 'TenantRenamed'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    wait_until("the rename to commit", || {
        let pool = app.pool.clone();
        async move { head_after(pool).await == 1 }
    })
    .await;
    tx.commit().await.unwrap();
    wait_until("the projection to apply the rename", || async {
        let (_, t) = app.get(&format!("/v1/tenants/{tid}"), &admin).await;
        t["name"] == "After"
    })
    .await;
    assert_eq!(rename.await.unwrap().unwrap(), 200);
}

/// Append one event of tenant `tenant` on `conn` (inside whatever
/// transaction it is in); returns the tenant sequence the log assigned.
async fn append_to_tenant(conn: &mut PgConnection, tenant: uuid::Uuid) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, \
                             event_version, payload, metadata) \
         VALUES ($1, 'ledger', gen_random_uuid()::text, 1, 'Entry', 1, '{}', \
                 jsonb_build_object('tenant_id', $1)) \
         RETURNING tenant_sequence",
    )
    .bind(tenant)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// Where a chain (a tenant's or a person's) first fails to verify, if it does.
async fn first_broken_link(pool: &PgPool, chain: uuid::Uuid) -> Option<i64> {
    sqlx::query_scalar("SELECT tenantry_verify_chain($1)")
        .bind(chain)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn tenant_sequences(pool: &PgPool, tenant: uuid::Uuid) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT tenant_sequence FROM events WHERE tenant_id = $1 ORDER BY tenant_sequence",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A per-tenant consumer reading by `tenant_sequence` never sees a gap: a
/// late commit holds the tenant's head, so the next append of that tenant
/// waits for it, and a reader sees n+1 only after n.
#[tokio::test]
async fn per_tenant_readers_see_the_tenant_sequence_without_gaps_under_late_commits() {
    let db = TestDb::create().await;
    let pool = db.migrated_pool().await;
    let tenant = uuid::Uuid::now_v7();
    let mut early = PgConnection::connect(&db.url).await.unwrap();
    append_to_tenant(&mut early, tenant).await; // sequence 1, committed
                                                // A transaction takes sequence 2 and commits late.
    let mut late_conn = PgConnection::connect(&db.url).await.unwrap();
    let mut late = late_conn.begin().await.unwrap();
    assert_eq!(append_to_tenant(&mut late, tenant).await, 2);
    // Another append of the tenant waits for it instead of taking 3 first.
    let next = {
        let url = db.url.clone();
        tokio::spawn(async move {
            let mut conn = PgConnection::connect(&url).await.unwrap();
            append_to_tenant(&mut conn, tenant).await
        })
    };
    wait_until("the next append to wait on the tenant's head", || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
              WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        waiting > 0
    })
    .await;
    // Meanwhile another tenant's appends go on.
    let other = uuid::Uuid::now_v7();
    append_to_tenant(&mut early, other).await;
    assert_eq!(tenant_sequences(&pool, tenant).await, vec![1]);
    assert!(
        !next.is_finished(),
        "the next append waits for the late one"
    );
    late.commit().await.unwrap();
    assert_eq!(next.await.unwrap(), 3);
    assert_eq!(tenant_sequences(&pool, tenant).await, vec![1, 2, 3]);
}

/// Under concurrent commands on one tenant, a consumer paging the tenant's
/// events by sequence (`GET /v1/tenants/{tid}/events?after=`) sees every
/// event once, in order, with no gap at any moment.
#[tokio::test]
async fn the_events_endpoint_pages_a_busy_tenant_in_order_without_gaps() {
    use tenantry_tests::TestApp;
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (s, tenant) = app
        .post("/v1/tenants", &admin, json!({ "name": "Busy" }))
        .await;
    assert_eq!(s, 201, "{tenant}");
    let tid = tenant["id"].as_str().unwrap().to_string();
    let writers: Vec<_> = (0..24)
        .map(|i| {
            let (client, url, admin) = (
                app.client.clone(),
                app.url(&format!("/v1/tenants/{tid}")),
                admin.clone(),
            );
            tokio::spawn(async move {
                client
                    .patch(url)
                    .bearer_auth(admin)
                    .json(&json!({ "name": format!("Busy {i}") }))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut seen: Vec<i64> = Vec::new();
    let mut done = false;
    while !done {
        done = writers.iter().all(|w| w.is_finished());
        let after = seen.last().copied().unwrap_or(0);
        let (s, page) = app
            .get(
                &format!("/v1/tenants/{tid}/events?after={after}&limit=200"),
                &admin,
            )
            .await;
        assert_eq!(s, 200);
        for event in page["data"].as_array().unwrap() {
            let sequence = event["sequence"].as_i64().unwrap();
            assert_eq!(sequence, seen.len() as i64 + 1, "a gap or a repeat");
            seen.push(sequence);
        }
    }
    for w in writers {
        assert_eq!(w.await.unwrap(), 200);
    }
    // TenantCreated, then one rename per writer (names all differ).
    assert_eq!(seen, (1..=25).collect::<Vec<i64>>());
}

/// Platform-scope events join one chain per person: a user's registration,
/// sign-ins and profile changes are one gapless, verifiable chain, and a
/// failed sign-in on an address nobody has is a chain of its own.
#[tokio::test]
async fn each_person_has_a_verifiable_chain_of_their_own() {
    use tenantry_tests::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let alice = app
        .create_user(&admin, "alice@chains.test", "alice-password-1")
        .await;
    let alice_id: uuid::Uuid = alice["id"].as_str().unwrap().parse().unwrap();
    for _ in 0..2 {
        assert_eq!(
            app.login("alice@chains.test", "alice-password-1")
                .await
                .status(),
            200
        );
    }
    assert_eq!(app.login("alice@chains.test", "wrong").await.status(), 401);
    assert_eq!(app.login("nobody@chains.test", "wrong").await.status(), 401);
    assert_eq!(app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(), 200);

    let chain = |id: uuid::Uuid| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_as::<_, (i64, String)>(
                "SELECT tenant_sequence, event_type FROM events WHERE chain_id = $1 ORDER BY tenant_sequence",
            )
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let alices = chain(alice_id).await;
    assert_eq!(
        alices,
        vec![
            (1, "UserRegistered".to_string()),
            (2, "SignInSucceeded".to_string()),
            (3, "SignInSucceeded".to_string()),
            (4, "SignInFailed".to_string()),
        ]
    );
    let verified = first_broken_link(&app.pool, alice_id).await;
    assert_eq!(verified, None, "Alice's chain verifies");
    // The unknown address's attempt: a chain of one, under its session id.
    let lone: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT chain_id, tenant_sequence FROM events \
          WHERE event_type = 'SignInFailed' AND metadata->'actor'->>'type' = 'anonymous'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(lone.len(), 1);
    assert_eq!(lone[0].1, 1);
    assert_eq!(chain(lone[0].0).await.len(), 1);
    // Nothing new lands in the one platform chain of old.
    let platform: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE tenant_id = '00000000-0000-0000-0000-000000000000' AND chain_id IS NULL",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(platform, 0);
}

/// Sign-ins of different people never wait on each other's commit: with
/// one person's chain held by an open transaction, another person signs in.
#[tokio::test]
async fn a_held_chain_does_not_hold_up_another_persons_sign_in() {
    use tenantry_tests::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let alice = app
        .create_user(&admin, "alice@held.test", "alice-password-1")
        .await;
    let alice_id: uuid::Uuid = alice["id"].as_str().unwrap().parse().unwrap();
    // Lock Alice's chain head as an append in flight would.
    let mut holder = PgConnection::connect(&app.db.url).await.unwrap();
    let mut tx = holder.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM chain_heads WHERE chain_id = $1 FOR UPDATE")
        .bind(alice_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let signed_in = tokio::time::timeout(
        Duration::from_secs(5),
        app.login(ADMIN_EMAIL, ADMIN_PASSWORD),
    )
    .await
    .expect("the admin's sign-in does not wait for Alice's chain");
    assert_eq!(signed_in.status(), 200);
    tx.rollback().await.unwrap();
}

mod group_commit {
    use super::*;
    use tenantry_api::store::{CommandError, Store};
    use tenantry_domain::access::{PermissionSet, RoleName};
    use tenantry_domain::tenant::{Authority, Tenant, TenantCommand, TenantError};
    use tenantry_domain::values::{Slug, TenantName, TenantSettings};
    use tenantry_domain::{Actor, EventMetadata, TenantId};

    fn role(name: &str) -> TenantCommand {
        TenantCommand::DefineRole {
            name: RoleName::parse(name).unwrap(),
            permissions: PermissionSet::parse(&["members.read".to_string()]).unwrap(),
            by: Authority::Platform,
        }
    }

    /// A tenant, and a transaction that holds its chain's head (as an
    /// append in flight does), so the commands sent next queue up.
    async fn held_tenant(db: &TestDb, store: &Store) -> (Uuid, EventMetadata, PgConnection) {
        let id = Uuid::now_v7();
        let meta = EventMetadata::new(id, Actor::system("test"), None, chrono::Utc::now());
        store
            .execute::<Tenant>(
                id.into(),
                TenantCommand::CreateTenant {
                    tenant_id: id.into(),
                    name: TenantName::parse("Grouped").unwrap(),
                    slug: Slug::parse(&format!("g-{}", id.simple())).unwrap(),
                    settings: TenantSettings::parse(json!({})).unwrap(),
                    owner: None,
                },
                &meta,
            )
            .await
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        let mut holder = PgConnection::connect(&db.url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
        sqlx::query("SELECT 1 FROM chain_heads WHERE chain_id = $1 FOR UPDATE")
            .bind(id)
            .execute(&mut holder)
            .await
            .unwrap();
        (id, meta, holder)
    }

    async fn waiting_on_locks(pool: &PgPool) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
              WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    }

    type Answer = Result<usize, String>;

    fn send(
        store: &Store,
        id: Uuid,
        meta: &EventMetadata,
        command: TenantCommand,
    ) -> tokio::task::JoinHandle<Answer> {
        let (store, meta) = (store.clone(), meta.clone());
        tokio::spawn(async move {
            store
                .execute::<Tenant>(TenantId::from(id), command, &meta)
                .await
                .map(|c| c.events.len())
                .map_err(|e| match e {
                    CommandError::Domain(TenantError::RoleExists) => "role_exists".to_string(),
                    other => format!("{other:?}"),
                })
        })
    }

    /// Commands queued together are decided one after another and appended
    /// in one transaction; a refusal among them fails nobody else.
    #[tokio::test]
    async fn a_group_appends_together_and_answers_each_its_own() {
        let db = TestDb::create().await;
        let pool = db.migrated_pool().await;
        let store = Store::new(pool.clone());
        let (id, meta, mut holder) = held_tenant(&db, &store).await;
        // The first command's append waits on the held head.
        let first = send(&store, id, &meta, role("first"));
        wait_until("the first append to wait", || async {
            waiting_on_locks(&pool).await > 0
        })
        .await;
        // These queue behind it: eight new roles, and one name twice.
        let mut group: Vec<_> = (0..8)
            .map(|i| send(&store, id, &meta, role(&format!("role-{i}"))))
            .collect();
        group.push(send(&store, id, &meta, role("role-3")));
        wait_until("the group to queue", || async {
            store.queued_commands::<Tenant>(id.into()) == 9
        })
        .await;
        sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        let mut answers = Vec::new();
        for g in group {
            answers.push(g.await.unwrap());
        }
        assert_eq!(
            answers.iter().filter(|a| **a == Ok(1)).count(),
            8,
            "{answers:?}"
        );
        assert_eq!(
            answers
                .iter()
                .filter(|a| matches!(a, Err(e) if e == "role_exists"))
                .count(),
            1,
            "{answers:?}"
        );
        // The eight roles of the group went in with one transaction.
        let txs: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT tx_id) FROM events \
              WHERE tenant_id = $1 AND event_type = 'RoleDefined' AND payload->>'name' LIKE 'role-%'",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(txs, 1);
        let (tenant, version) = store.load::<Tenant>(id.into()).await.unwrap();
        assert_eq!(version, 10);
        assert_eq!(tenant.roles.len(), 9);
        let broken = first_broken_link(&pool, id).await;
        assert_eq!(broken, None);
    }

    /// A load while a command holds the aggregate (its append waits) starts
    /// from the state this process published and catches up with the log:
    /// it answers the committed state, never the command's undecided one.
    #[tokio::test]
    async fn a_load_while_a_command_holds_the_aggregate_answers_the_committed_state() {
        let db = TestDb::create().await;
        let pool = db.migrated_pool().await;
        let store = Store::new(pool.clone());
        let (id, meta, mut holder) = held_tenant(&db, &store).await;
        let (created, version) = store.load::<Tenant>(id.into()).await.unwrap();
        assert_eq!(version, 1);
        let pending = send(&store, id, &meta, role("pending"));
        wait_until("the append to wait", || async {
            waiting_on_locks(&pool).await > 0
        })
        .await;
        let (during, version) = store.load::<Tenant>(id.into()).await.unwrap();
        assert_eq!(version, 1);
        assert_eq!(during.roles.len(), created.roles.len());
        sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
        assert_eq!(pending.await.unwrap(), Ok(1));
        let (after, version) = store.load::<Tenant>(id.into()).await.unwrap();
        assert_eq!(version, 2);
        assert_eq!(after.roles.len(), created.roles.len() + 1);
    }

    /// A group whose append fails while in flight (its connection dies, as
    /// in a crash) leaves none of its events and tells none of its callers
    /// it succeeded; what was acknowledged before is all there.
    #[tokio::test]
    async fn a_group_lost_mid_append_leaves_nothing_and_acknowledges_nothing() {
        let db = TestDb::create().await;
        let pool = db.migrated_pool().await;
        let store = Store::new(pool.clone());
        let (id, meta, mut holder) = held_tenant(&db, &store).await;
        let kill_the_waiting_append = || async {
            wait_until("an append to wait on the head", || async {
                waiting_on_locks(&pool).await > 0
            })
            .await;
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                  WHERE wait_event_type = 'Lock' AND datname = current_database()",
            )
            .execute(&pool)
            .await
            .unwrap();
        };
        let first = send(&store, id, &meta, role("first"));
        wait_until("the first append to wait", || async {
            waiting_on_locks(&pool).await > 0
        })
        .await;
        let group: Vec<_> = (0..5)
            .map(|i| send(&store, id, &meta, role(&format!("lost-{i}"))))
            .collect();
        wait_until("the group to queue", || async {
            store.queued_commands::<Tenant>(id.into()) == 5
        })
        .await;
        // The first append's connection dies, then the group's, each while
        // its append waits on the chain's head: as a crash would.
        kill_the_waiting_append().await;
        assert!(first.await.unwrap().is_err());
        kill_the_waiting_append().await;
        for g in group {
            let answer = g.await.unwrap();
            assert!(
                answer.is_err(),
                "a lost group acknowledged a command: {answer:?}"
            );
        }
        sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
        let roles: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE tenant_id = $1 AND event_type = 'RoleDefined'",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(roles, 0, "an unacknowledged command was written");
        // What was acknowledged (the tenant) is there, the chain whole, and
        // the aggregate takes commands again.
        let (_, version) = store.load::<Tenant>(id.into()).await.unwrap();
        assert_eq!(version, 1);
        assert_eq!(send(&store, id, &meta, role("after")).await.unwrap(), Ok(1));
        let broken = first_broken_link(&pool, id).await;
        assert_eq!(broken, None);
    }
}
