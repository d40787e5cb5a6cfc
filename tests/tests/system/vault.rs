//! The provider-key vault through HTTP: redaction, resolve and its audit,
//! duplicates under concurrency, replacement, crypto-shredding, binding,
//! rotation, and no plaintext in any table.

use base64::Engine;
use serde_json::{json, Value};
use tenantry_api::vault::{self, Binding, MasterKeys};
use tenantry_tests::{code, TestApp};
use uuid::Uuid;

const OPENAI_KEY: &str = "sk-proj-TESTPLAINTEXTabcdefghij1234wxyz";
const NEW_OPENAI_KEY: &str = "sk-proj-REPLACEDPLAINTEXTklmnop5678";
const ANTHROPIC_KEY: &str = "sk-ant-api03-ANTHROPICPLAINTEXTqrstu";

fn master(id: &str, byte: u8) -> String {
    format!(
        "{id}:{}",
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    )
}

/// A server with known master keys, a tenant with an owner, and the agent
/// runtime's API key (with `llm_keys.use`).
struct Setup {
    app: TestApp,
    tid: String,
    owner: String,
    runtime: String,
}

async fn setup(masters: &str) -> Setup {
    let app = TestApp::spawn_with(&[("TENANTRY_MASTER_KEYS", masters)]).await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Acme").await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let (_, owner) = app.member(&admin, &tid, "owner@acme.io", "owner").await;
    let (_, runtime) = app
        .api_key(&owner, &tid, &["llm_keys.use", "llm_keys.read"])
        .await;
    Setup {
        app,
        tid,
        owner,
        runtime,
    }
}

impl Setup {
    fn keys(&self) -> String {
        format!("/v1/tenants/{}/llm-keys", self.tid)
    }

    async fn add(&self, provider: &str, key: &str) -> (u16, Value) {
        self.app
            .post(
                &self.keys(),
                &self.owner,
                json!({ "provider": provider, "api_key": key, "label": "prod" }),
            )
            .await
    }

    async fn resolve(&self, provider: &str) -> (u16, Value) {
        self.app
            .post(
                &format!("{}/{provider}/resolve", self.keys()),
                &self.runtime,
                json!({}),
            )
            .await
    }
}

/// Decrypt a key the way an attacker with a database dump and every master
/// key would: the sealed secret from the log, the data key from its table.
async fn decrypt_from_log(
    app: &TestApp,
    masters: &MasterKeys,
    key_id: &str,
    tenant: Uuid,
    provider: &str,
) -> Result<String, String> {
    let payload: Value = sqlx::query_scalar(
        "SELECT payload FROM events WHERE event_type = 'LlmKeyAdded' AND aggregate_id = $1",
    )
    .bind(key_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let data_key_id = Uuid::parse_str(payload["data_key_id"].as_str().unwrap()).unwrap();
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(payload["ciphertext"].as_str().unwrap())
        .unwrap();
    let wrapped: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT wrapped FROM data_keys WHERE id = $1")
            .bind(data_key_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let wrapped = wrapped.ok_or("the data key is destroyed")?;
    let data_key = vault::unwrap(masters, data_key_id, &wrapped).map_err(|e| e.to_string())?;
    let binding = Binding {
        tenant_id: tenant,
        key_id: Uuid::parse_str(key_id).unwrap(),
        provider,
    };
    vault::open(&data_key, binding, &sealed)
        .map(|s| s.to_string())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn keys_are_stored_redacted_resolved_by_the_runtime_and_audited() {
    let s = setup(&master("k1", 1)).await;
    let (status, created) = s.add("openai", OPENAI_KEY).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["key_hint"], "…wxyz");
    assert_eq!(created["provider"], "openai");
    assert_eq!(created["label"], "prod");
    assert!(!created.to_string().contains("TESTPLAINTEXT"));
    let key_id = created["id"].as_str().unwrap().to_string();

    let (status, list) = s.app.get(&s.keys(), &s.runtime).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"][0]["id"], json!(key_id));
    assert!(list["data"][0]["last_used_at"].is_null());
    assert!(!list.to_string().contains("TESTPLAINTEXT"));

    // The runtime reads the plaintext; a person never does, whatever the role.
    let (status, resolved) = s.resolve("openai").await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["api_key"], OPENAI_KEY);
    assert_eq!(resolved["key_id"], json!(key_id));
    let (status, body) = s
        .app
        .post(&format!("{}/openai/resolve", s.keys()), &s.owner, json!({}))
        .await;
    assert_eq!((status, code(&body)), (403, "missing_permission"));
    let (status, body) = s.resolve("anthropic").await;
    assert_eq!((status, code(&body)), (404, "llm_key_not_found"));

    // Every resolve is in the access log, with who and which request.
    let (status, accesses) = s
        .app
        .get(&format!("{}/{key_id}/accesses", s.keys()), &s.owner)
        .await;
    assert_eq!(status, 200, "{accesses}");
    let rows = accesses["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["actor"]["type"], "api_key");
    assert!(rows[0]["request_id"].is_string());
    let (_, list) = s.app.get(&s.keys(), &s.owner).await;
    assert!(list["data"][0]["last_used_at"].is_string());
    let per_call_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'llm_key'")
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
    assert_eq!(per_call_events, 1, "a resolve writes no event");

    // Bad input: a clear 422 that never repeats the key.
    let (status, body) = s.add("openai", OPENAI_KEY).await;
    assert_eq!((status, code(&body)), (409, "duplicate_provider_key"));
    let (status, body) = s.add("openia", OPENAI_KEY).await;
    assert_eq!(status, 422);
    assert!(body.to_string().contains("openai, anthropic, google"));
    let (status, body) = s.add("anthropic", "sk-wrong-shape-SECRETBITS").await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"]["details"]["fields"][0]["code"],
        "malformed_api_key"
    );
    assert!(!body.to_string().contains("SECRETBITS"));
    let huge = format!("sk-{}", "a".repeat(5000));
    let (status, body) = s.add("mistral", &huge).await;
    assert_eq!(status, 422);
    assert_eq!(
        body["error"]["details"]["fields"][0]["code"],
        "api_key_too_long"
    );
}

#[tokio::test]
async fn one_key_per_provider_holds_under_concurrency() {
    let s = setup(&master("k1", 1)).await;
    let (a, b) = tokio::join!(
        s.add("anthropic", ANTHROPIC_KEY),
        s.add("anthropic", "sk-ant-api03-SECONDCONTENDERvwxyz1234")
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM data_keys WHERE wrapped IS NOT NULL AND tenant_id IS NOT NULL",
    )
    .fetch_one(&s.app.pool)
    .await
    .unwrap();
    assert_eq!(live, 1, "the loser's data key was rolled back with it");
}

#[tokio::test]
async fn replacing_and_deleting_shred_the_data_key_for_good() {
    let masters = format!("{},{}", master("k1", 1), master("k0", 9));
    let s = setup(&masters).await;
    let all_masters = MasterKeys::parse(&masters).unwrap();
    let tenant = Uuid::parse_str(&s.tid).unwrap();
    let (_, created) = s.add("openai", OPENAI_KEY).await;
    let key_id = created["id"].as_str().unwrap().to_string();

    // Before deletion, the log's ciphertext opens (so the check below can fail).
    assert_eq!(
        decrypt_from_log(&s.app, &all_masters, &key_id, tenant, "openai").await,
        Ok(OPENAI_KEY.to_string())
    );
    // Bound to tenant, key and provider: moved anywhere else, it does not open.
    let other = Uuid::now_v7();
    assert!(
        decrypt_from_log(&s.app, &all_masters, &key_id, other, "openai")
            .await
            .is_err()
    );
    assert!(
        decrypt_from_log(&s.app, &all_masters, &key_id, tenant, "anthropic")
            .await
            .is_err()
    );

    let (status, replaced) = s
        .app
        .put(
            &format!("{}/{key_id}", s.keys()),
            &s.owner,
            json!({ "api_key": NEW_OPENAI_KEY }),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["key_hint"], "…5678");
    assert!(replaced["rotated_at"].is_string());
    assert_eq!(s.resolve("openai").await.1["api_key"], NEW_OPENAI_KEY);
    assert_eq!(
        decrypt_from_log(&s.app, &all_masters, &key_id, tenant, "openai").await,
        Err("the data key is destroyed".to_string()),
        "the replaced secret's data key is gone"
    );

    let (status, _) = s
        .app
        .delete(&format!("{}/{key_id}", s.keys()), &s.owner)
        .await;
    assert_eq!(status, 204);
    let (status, body) = s.resolve("openai").await;
    assert_eq!((status, code(&body)), (404, "llm_key_not_found"));
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM data_keys WHERE wrapped IS NOT NULL AND tenant_id IS NOT NULL",
    )
    .fetch_one(&s.app.pool)
    .await
    .unwrap();
    assert_eq!(live, 0);
    // Tombstones stay and cannot be revived or removed.
    let revive = sqlx::query(
        "UPDATE data_keys SET wrapped = '\\x00', master_key_id = 'k1', destroyed_at = NULL",
    )
    .execute(&s.app.pool)
    .await;
    assert!(revive.is_err());
    let remove = sqlx::query("DELETE FROM data_keys")
        .execute(&s.app.pool)
        .await;
    assert!(remove.is_err());
    // The audit of past resolves survives the key.
    let (status, accesses) = s
        .app
        .get(&format!("{}/{key_id}/accesses", s.keys()), &s.owner)
        .await;
    assert_eq!(status, 200);
    assert_eq!(accesses["data"].as_array().unwrap().len(), 1);
    // The provider is free again.
    let (status, _) = s.add("openai", OPENAI_KEY).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn another_tenants_key_cannot_be_deleted_and_survives() {
    let s = setup(&master("k1", 1)).await;
    let (_, created) = s.add("openai", OPENAI_KEY).await;
    let key_id = created["id"].as_str().unwrap();
    let admin = s.app.admin_token().await;
    let other = s.app.create_tenant(&admin, "Other").await;
    let other_id = other["id"].as_str().unwrap();
    let (_, intruder) = s
        .app
        .member(&admin, other_id, "owner@other.io", "owner")
        .await;
    for (status, body) in [
        s.app
            .delete(
                &format!("/v1/tenants/{other_id}/llm-keys/{key_id}"),
                &intruder,
            )
            .await,
        s.app
            .put(
                &format!("/v1/tenants/{other_id}/llm-keys/{key_id}"),
                &intruder,
                json!({ "api_key": NEW_OPENAI_KEY }),
            )
            .await,
        s.app
            .get(
                &format!("/v1/tenants/{other_id}/llm-keys/{key_id}/accesses"),
                &intruder,
            )
            .await,
    ] {
        assert_eq!((status, code(&body)), (404, "llm_key_not_found"));
    }
    assert_eq!(s.resolve("openai").await.1["api_key"], OPENAI_KEY);
}

#[tokio::test]
async fn rotation_lets_the_old_master_key_go() {
    let k1 = master("k1", 1);
    let s = setup(&k1).await;
    s.add("openai", OPENAI_KEY).await;
    s.add("anthropic", ANTHROPIC_KEY).await;
    let db = s.app.stop().await;

    let both = MasterKeys::parse(&format!("{},{k1}", master("k2", 2))).unwrap();
    let pool = db.migrated_pool().await;
    // The provider keys' data keys, and the people's (their sealed emails
    // and names, `docs/AUDIT.md`): all wrapped by the master keys.
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM data_keys WHERE wrapped IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(live > 2, "{live}");
    assert_eq!(
        tenantry_api::cli::rotate(&tenantry_api::store::Store::new(pool.clone()), &both)
            .await
            .unwrap(),
        live as u64
    );
    assert_eq!(
        tenantry_api::cli::rotate(&tenantry_api::store::Store::new(pool.clone()), &both)
            .await
            .unwrap(),
        0
    );
    pool.close().await;

    // Without k1, every secret still resolves.
    let app = TestApp::spawn_on(db, &[("TENANTRY_MASTER_KEYS", &master("k2", 2))]).await;
    let admin = app.admin_token().await;
    let tid = s.tid.clone();
    let (_, runtime) = app.api_key(&admin, &tid, &["llm_keys.use"]).await;
    for (provider, plaintext) in [("openai", OPENAI_KEY), ("anthropic", ANTHROPIC_KEY)] {
        let (status, body) = app
            .post(
                &format!("/v1/tenants/{tid}/llm-keys/{provider}/resolve"),
                &runtime,
                json!({}),
            )
            .await;
        assert_eq!((status, body["api_key"].as_str()), (200, Some(plaintext)));
    }
    let db = app.stop().await;

    // A server without k2 refuses to start, naming it.
    let config =
        tenantry_tests::test_config(&db.url, &[("TENANTRY_MASTER_KEYS", &master("k3", 3))]);
    let err = tenantry_api::app::Application::build(config)
        .await
        .err()
        .expect("start-up refused")
        .to_string();
    assert!(
        err.contains("k2") && err.contains("TENANTRY_MASTER_KEYS"),
        "{err}"
    );
}

#[tokio::test]
async fn no_table_holds_a_plaintext_key() {
    let s = setup(&master("k1", 1)).await;
    let (_, created) = s.add("openai", OPENAI_KEY).await;
    let key_id = created["id"].as_str().unwrap();
    s.add("anthropic", ANTHROPIC_KEY).await;
    s.resolve("openai").await;
    s.app
        .put(
            &format!("{}/{key_id}", s.keys()),
            &s.owner,
            json!({ "api_key": NEW_OPENAI_KEY }),
        )
        .await;
    s.resolve("openai").await;
    s.resolve("anthropic").await;

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&s.app.pool)
    .await
    .unwrap();
    assert!(tables.len() >= 15, "{tables:?}");
    let mut dump = String::new();
    for table in &tables {
        let rows: Option<String> = sqlx::query_scalar(&format!(
            "SELECT string_agg(t::text, E'\\n') FROM {table} t"
        ))
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
        dump.push_str(&rows.unwrap_or_default());
    }
    assert!(dump.contains("LlmKeyAdded"), "the dump covers the log");
    for secret in [OPENAI_KEY, NEW_OPENAI_KEY, ANTHROPIC_KEY] {
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        for form in [secret.to_string(), hex, b64] {
            assert!(!dump.contains(&form), "a table holds {secret} as {form}");
        }
    }
}

#[tokio::test]
async fn secrets_are_never_kept_for_idempotent_replay() {
    let s = setup(&master("k1", 1)).await;
    s.add("openai", OPENAI_KEY).await;
    let post = |path: String, token: String, body: Value| {
        let req = s
            .app
            .client
            .post(s.app.url(&path))
            .bearer_auth(token)
            .header("idempotency-key", "retry-me")
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let cache = r
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap().to_string());
            (status, cache, r.json::<Value>().await.unwrap())
        }
    };
    let resolve = format!("{}/openai/resolve", s.keys());
    let (status, cache, first) = post(resolve.clone(), s.runtime.clone(), json!({})).await;
    assert_eq!((status, cache.as_deref()), (200, Some("no-store")));
    assert_eq!(first["api_key"], OPENAI_KEY);
    let (status, _, replay) = post(resolve, s.runtime.clone(), json!({})).await;
    assert_eq!((status, code(&replay)), (409, "secret_not_replayable"));

    let create = format!("/v1/tenants/{}/api-keys", s.tid);
    let body = json!({ "name": "once", "permissions": ["tenant.read"] });
    let (status, _, created) = post(create.clone(), s.owner.clone(), body.clone()).await;
    assert_eq!(status, 201);
    let secret = created["key"].as_str().unwrap().to_string();
    let (status, _, replay) = post(create, s.owner.clone(), body).await;
    assert_eq!((status, code(&replay)), (409, "secret_not_replayable"));
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE name = 'once'")
        .fetch_one(&s.app.pool)
        .await
        .unwrap();
    assert_eq!(keys, 1, "the retry created no second key");

    let stored: String =
        sqlx::query_scalar("SELECT string_agg(t::text, ' ') FROM idempotency_keys t")
            .fetch_one(&s.app.pool)
            .await
            .unwrap();
    let hex = |v: &str| v.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for leaked in [OPENAI_KEY, secret.as_str()] {
        assert!(!stored.contains(leaked) && !stored.contains(&hex(leaked)));
    }
}
