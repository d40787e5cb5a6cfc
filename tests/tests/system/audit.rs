//! Auditors: the chain format reproduced by an outside verifier (the
//! Python in docs/AUDIT.md, run as written), exports verified with no
//! database, tampering as the database superuser found at its sequence by
//! both verifiers, a rewritten chain found against a head saved earlier,
//! and the events filters.

use serde_json::{json, Value};
use sqlx::PgPool;
use tenantry_api::service::audit::verify_file;
use tenantry_store::chain::{link, Break, ChainEvent, Verdict};
use tenantry_tests::{code, TestApp};

/// A tenant with some history: created, renamed, members, a key.
async fn busy_tenant(app: &TestApp, admin: &str) -> String {
    busy_tenant_named(app, admin, "Acme").await
}

async fn busy_tenant_named(app: &TestApp, admin: &str, name: &str) -> String {
    let tenant = app.create_tenant(admin, name).await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    for i in 0..3 {
        let (s, _) = app
            .patch(
                &format!("/v1/tenants/{tid}"),
                admin,
                json!({"name": format!("{name} «{i}» ünïcode")}),
            )
            .await;
        assert_eq!(s, 200);
    }
    let email = format!("ops@{}.test", name.to_lowercase());
    app.member(admin, &tid, &email, "operator").await;
    app.api_key(admin, &tid, &["usage.write"]).await;
    tid
}

async fn export(app: &TestApp, admin: &str, tid: &str, query: &str) -> String {
    let (s, body) = app
        .get(&format!("/v1/tenants/{tid}/audit/export{query}"), admin)
        .await;
    assert_eq!(s, 200, "{body}");
    body.as_str().expect("NDJSON text").to_string()
}

fn lines(ndjson: &str) -> Vec<Value> {
    ndjson
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn offline(ndjson: &str) -> Verdict {
    verify_file(std::io::Cursor::new(ndjson.as_bytes()), Vec::new()).expect("readable")
}

async fn stored(app: &TestApp, admin: &str, tid: &str) -> Value {
    let (s, body) = app
        .get(&format!("/v1/tenants/{tid}/audit/verify"), admin)
        .await;
    assert_eq!(s, 200, "{body}");
    body
}

/// The Python verifier of docs/AUDIT.md, exactly as the document prints
/// it, run on `ndjson`: what it prints.
fn python_verifier(ndjson: &str) -> String {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/AUDIT.md"),
    )
    .unwrap();
    let start = doc
        .find("```python\n")
        .expect("AUDIT.md has the Python verifier")
        + 10;
    let script = &doc[start..start + doc[start..].find("```").unwrap()];
    let dir = tempfile_dir();
    let export = dir.join("export.ndjson");
    std::fs::write(&export, ndjson).unwrap();
    let program =
        format!("{script}\nimport sys\nprint(verify(open(sys.argv[1], encoding='utf-8')))\n");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(program)
        .arg(&export)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tenantry-audit-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn an_outside_verifier_gets_the_same_hashes() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tid = busy_tenant(&app, &admin).await;
    let ndjson = export(&app, &admin, &tid, "").await;
    let all = lines(&ndjson);
    let manifest = &all.last().unwrap()["manifest"];
    let events = &all[..all.len() - 1];
    assert!(events.len() >= 6, "{ndjson}");
    assert_eq!(manifest["events"], events.len());
    assert_eq!(manifest["to_sequence"], events.len());
    let head = manifest["head_hash"].as_str().unwrap();
    assert_eq!(events.last().unwrap()["hash"], head);

    assert_eq!(
        python_verifier(&ndjson),
        format!("verified 1..{}, head {head}", events.len())
    );
    assert_eq!(
        offline(&ndjson),
        Verdict::Verified {
            from: Some(1),
            to: Some(events.len() as i64),
            events: events.len() as u64,
            head: Some(head.to_string()),
        }
    );
    let body = stored(&app, &admin, &tid).await;
    assert_eq!(body["result"], "verified", "{body}");
    assert_eq!(body["head"], head);

    // The list carries the same hashes.
    let (_, page) = app
        .get(&format!("/v1/tenants/{tid}/events?limit=200"), &admin)
        .await;
    assert_eq!(page["data"][2]["hash"], events[2]["hash"]);
    assert_eq!(page["data"][2]["prev_hash"], events[1]["hash"]);
}

#[tokio::test]
async fn an_export_resumes_by_sequence_and_a_cut_export_is_missing_its_end() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tid = busy_tenant(&app, &admin).await;
    let whole = export(&app, &admin, &tid, "").await;
    let n = lines(&whole).len() - 1;
    // Two halves, the second from one past the first's last line.
    let first = export(&app, &admin, &tid, "?to_sequence=3").await;
    let second = export(&app, &admin, &tid, "?from_sequence=4").await;
    let events = |s: &str| -> Vec<Value> {
        lines(s)
            .into_iter()
            .filter(|l| l.get("manifest").is_none())
            .collect()
    };
    let mut joined = events(&first);
    joined.extend(events(&second));
    assert_eq!(joined, events(&whole));
    // The second half verifies alone from its first event on.
    assert!(
        matches!(offline(&second), Verdict::Verified { from: Some(4), .. }),
        "{:?}",
        offline(&second)
    );
    // An export whose last events were cut off (its manifest kept) is
    // missing them.
    let mut cut: Vec<&str> = whole.lines().collect();
    let manifest = cut.pop().unwrap();
    cut.truncate(n - 2);
    cut.push(manifest);
    assert_eq!(
        offline(&(cut.join("\n") + "\n")),
        Verdict::Broken {
            sequence: n as i64 - 1,
            reason: Break::EventMissing,
            verified: n as u64 - 2,
        }
    );
    // CSV for spreadsheets: a header and a row per event.
    let csv = export(&app, &admin, &tid, "?format=csv").await;
    assert!(csv.starts_with("tenant_sequence,recorded_at,"), "{csv}");
    assert_eq!(csv.lines().count(), n + 1);
    for (query, why) in [
        ("?format=xml", "invalid_format"),
        ("?from_sequence=5&to_sequence=2", "invalid_sequence_range"),
        ("?from_sequence=0", "invalid_sequence_range"),
    ] {
        let (s, body) = app
            .get(&format!("/v1/tenants/{tid}/audit/export{query}"), &admin)
            .await;
        assert_eq!((s, code(&body)), (422, why), "{query}: {body}");
    }
}

/// Run `sql` on the test's connection with the log's triggers off, as the
/// database superuser could.
async fn as_superuser(pool: &PgPool, statements: &[String]) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    for sql in statements {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn verdict_of(body: &Value) -> (i64, String) {
    (
        body["sequence"]
            .as_i64()
            .unwrap_or_else(|| panic!("broken: {body}")),
        body["reason"].as_str().unwrap().to_string(),
    )
}

fn offline_break(ndjson: &str) -> (i64, String) {
    match offline(ndjson) {
        Verdict::Broken {
            sequence, reason, ..
        } => (
            sequence,
            serde_json::to_value(reason)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string(),
        ),
        v => panic!("verified: {v:?}"),
    }
}

/// The statements that tamper with a tenant's chain.
type Tampering = Box<dyn Fn(&str) -> Vec<String>>;

#[tokio::test]
async fn tampering_as_the_superuser_is_found_at_its_sequence_by_both_verifiers() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let at = |tid: &str, seq: i64| format!("tenant_id = '{tid}' AND tenant_sequence = {seq}");
    let cases: Vec<(&str, Tampering, (i64, &str))> = vec![
        (
            "an edited payload",
            Box::new(move |tid| {
                vec![format!(
                    "UPDATE events SET payload = jsonb_set(payload, '{{name}}', '\"Evil\"') WHERE {}",
                    at(tid, 3)
                )]
            }),
            (3, "content_changed"),
        ),
        (
            "a deleted event",
            Box::new(move |tid| vec![format!("DELETE FROM events WHERE {}", at(tid, 3))]),
            (3, "event_missing"),
        ),
        (
            "two swapped events",
            Box::new(move |tid| {
                vec![
                    format!(
                        "UPDATE events SET tenant_sequence = -3 WHERE {}",
                        at(tid, 3)
                    ),
                    format!("UPDATE events SET tenant_sequence = 3 WHERE {}", at(tid, 4)),
                    format!(
                        "UPDATE events SET tenant_sequence = 4 WHERE {}",
                        at(tid, -3)
                    ),
                ]
            }),
            (3, "events_reordered"),
        ),
        (
            "an inserted event",
            Box::new(move |tid| {
                vec![
                    // Make room after 2: every later event one further on.
                    format!(
                        "UPDATE events SET tenant_sequence = -tenant_sequence - 1 \
                          WHERE tenant_id = '{tid}' AND tenant_sequence >= 3"
                    ),
                    format!(
                        "UPDATE events SET tenant_sequence = -tenant_sequence \
                          WHERE tenant_id = '{tid}' AND tenant_sequence < 0"
                    ),
                    // A copy of event 2 as event 3, linked to 2 and hashed
                    // in format 1 as the database would.
                    format!(
                        "INSERT INTO events (tenant_id, tenant_sequence, aggregate_type, aggregate_id, \
                                sequence, event_type, event_version, payload, metadata, recorded_at, \
                                prev_hash, hash) \
                         SELECT tenant_id, 3, aggregate_type, aggregate_id, 99, event_type, \
                                event_version, '{{\"name\": \"Inserted\"}}', metadata, recorded_at, \
                                hash, '\\x' FROM events WHERE {}",
                        at(tid, 2)
                    ),
                    format!(
                        "UPDATE events e SET hash = tenantry_event_hash(e.prev_hash, e) WHERE {}",
                        at(tid, 3)
                    ),
                ]
            }),
            (3, "event_inserted"),
        ),
    ];
    for (i, (what, tamper, expected)) in cases.into_iter().enumerate() {
        let tid = busy_tenant_named(&app, &admin, &format!("Tenant{i}")).await;
        let before = export(&app, &admin, &tid, "").await;
        assert!(
            matches!(offline(&before), Verdict::Verified { .. }),
            "{what}"
        );
        as_superuser(&app.pool, &tamper(&tid)).await;
        let body = stored(&app, &admin, &tid).await;
        assert_eq!(body["result"], "broken", "{what}: {body}");
        let expected = (expected.0, expected.1.to_string());
        assert_eq!(verdict_of(&body), expected, "{what}, stored: {body}");
        if what != "an inserted event" {
            // (The inserted event is format 1: an export cannot check it.)
            let after = export(&app, &admin, &tid, "").await;
            assert_eq!(offline_break(&after), expected, "{what}, offline");
        }
    }
}

#[tokio::test]
async fn a_chain_rewritten_after_an_edit_verifies_alone_but_not_against_a_signed_checkpoint() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tid = busy_tenant(&app, &admin).await;
    let checkpoints = format!("/v1/tenants/{tid}/audit/checkpoints");
    // An auditor asks for a checkpoint and keeps it, with the public key.
    let (s, saved) = app.post(&checkpoints, &admin, json!({})).await;
    assert_eq!(s, 201, "{saved}");
    let (s, keys) = app
        .send(reqwest::Method::GET, "/v1/audit/keys", None, None)
        .await;
    assert_eq!(s, 200, "{keys}");
    let key = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == saved["key_id"])
        .unwrap_or_else(|| panic!("the signing key is published: {keys}"));
    let public_key = key["public_key"].as_str().unwrap().to_string();
    let checkpoint: tenantry_store::chain::ChainCheckpoint =
        serde_json::from_value(saved.clone()).unwrap();
    assert!(checkpoint.signed_by(&hex::decode(&public_key).unwrap()));
    let (_, listed) = app.get(&checkpoints, &admin).await;
    assert_eq!(listed["data"], json!([saved]));
    // A later event, so the checkpoint is not the head.
    app.patch(
        &format!("/v1/tenants/{tid}"),
        &admin,
        json!({"name": "Acme later"}),
    )
    .await;
    let before = export(&app, &admin, &tid, "").await;
    let all = lines(&before);
    assert_eq!(
        all.last().unwrap()["manifest"]["latest_checkpoint"],
        saved,
        "the manifest names the checkpoint"
    );

    // Edit event 2 and recompute every hash from it, as someone who read
    // docs/AUDIT.md and can write to the database would.
    let mut events: Vec<ChainEvent> = all[..all.len() - 1]
        .iter()
        .map(|v| serde_json::from_value(v.clone()).unwrap())
        .collect();
    events[1].payload["name"] = json!("Rewritten");
    let mut prev = hex::decode(&events[0].hash).unwrap();
    let mut statements = Vec::new();
    for e in events.iter_mut().skip(1) {
        let content = e.content().hash();
        let hash = link(&prev, &content, e.tenant_sequence, e.recorded_at);
        statements.push(format!(
            "UPDATE events SET payload = '{}', content_hash = '\\x{}', prev_hash = '\\x{}', \
                    hash = '\\x{}' WHERE tenant_id = '{tid}' AND tenant_sequence = {}",
            e.payload.to_string().replace('\'', "''"),
            hex::encode(content),
            hex::encode(&prev),
            hex::encode(hash),
            e.tenant_sequence
        ));
        prev = hash.to_vec();
    }
    statements.push(format!(
        "UPDATE chain_heads SET last_hash = '\\x{}' WHERE chain_id = '{tid}'",
        hex::encode(&prev)
    ));
    as_superuser(&app.pool, &statements).await;

    // Alone, the rewritten chain verifies; against the checkpoint it does not.
    let after = export(&app, &admin, &tid, "").await;
    assert!(matches!(offline(&after), Verdict::Verified { .. }));
    let body = stored(&app, &admin, &tid).await;
    assert_eq!(
        verdict_of(&body),
        (
            checkpoint.sequence,
            "chain_rewritten_after_checkpoint".to_string()
        ),
        "{body}"
    );
    let against_saved = verify_file(
        std::io::Cursor::new(after.as_bytes()),
        vec![checkpoint.anchor()],
    );
    assert_eq!(
        against_saved.unwrap(),
        Verdict::Broken {
            sequence: checkpoint.sequence,
            reason: Break::ChainRewrittenAfterCheckpoint,
            verified: checkpoint.sequence as u64 - 1,
        }
    );

    // The same offline, from the command line, with the saved files.
    use tenantry_api::cli::{parse, run_without_config, Done};
    let dir = tempfile_dir();
    let (export_file, cp_file) = (dir.join("export.ndjson"), dir.join("cp.json"));
    std::fs::write(&export_file, &after).unwrap();
    std::fs::write(&cp_file, saved.to_string()).unwrap();
    let verify_with = |key: &str| {
        let cli = parse([
            "tenantry",
            "audit",
            "verify",
            "--file",
            export_file.to_str().unwrap(),
            "--checkpoint",
            cp_file.to_str().unwrap(),
            "--public-key",
            key,
        ])
        .unwrap();
        run_without_config(&cli).unwrap()
    };
    assert_eq!(verify_with(&public_key), Ok(Done::Drift));
    std::fs::write(&export_file, &before).unwrap();
    assert_eq!(verify_with(&public_key), Ok(Done::Clean));
    let other_key = "11".repeat(32);
    assert!(
        verify_with(&other_key).is_err(),
        "a signature from another key"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Kept checkpoints are append-only.
    let changed = sqlx::query("UPDATE audit_checkpoints SET sequence = sequence + 1")
        .execute(&app.pool)
        .await;
    assert!(changed.is_err());
    // A checkpoint put in without the server's key is itself the finding.
    sqlx::query(
        "INSERT INTO audit_checkpoints (chain_id, sequence, hash, signed_at, key_id, signature) \
         SELECT chain_id, 100000, hash, signed_at, key_id, '\\x00' FROM audit_checkpoints LIMIT 1",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let body = stored(&app, &admin, &tid).await;
    assert_eq!(
        verdict_of(&body),
        (100000, "checkpoint_forged".to_string()),
        "{body}"
    );
}

/// The tenant's last checkpoint's sequence, once it is at least `at_least`.
async fn signed_up_to(app: &TestApp, admin: &str, tid: &str, at_least: i64) -> Vec<Value> {
    for _ in 0..100 {
        let (_, page) = app
            .get(&format!("/v1/tenants/{tid}/audit/checkpoints"), admin)
            .await;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        if data
            .last()
            .and_then(|c| c["sequence"].as_i64())
            .is_some_and(|l| l >= at_least)
        {
            return data;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no checkpoint at {at_least} or later");
}

#[tokio::test]
async fn the_job_signs_a_new_chain_at_once_and_then_every_n_events() {
    let app = TestApp::spawn_with(&[
        ("TENANTRY_CHECKPOINT_EVERY_EVENTS", "3"),
        ("TENANTRY_INVITATION_EXPIRY_SCAN", "100ms"),
    ])
    .await;
    let admin = app.admin_token().await;
    let tid = busy_tenant(&app, &admin).await;
    let first = signed_up_to(&app, &admin, &tid, 1).await;
    let first = first.last().unwrap()["sequence"].as_i64().unwrap();
    // Three more events: the interval (10 minutes) is far off, so only the
    // count signs them.
    for i in 0..3 {
        app.patch(
            &format!("/v1/tenants/{tid}"),
            &admin,
            json!({"name": format!("Acme again {i}")}),
        )
        .await;
    }
    let data = signed_up_to(&app, &admin, &tid, first + 3).await;
    let (_, keys) = app
        .send(reqwest::Method::GET, "/v1/audit/keys", None, None)
        .await;
    let public = hex::decode(keys["keys"][0]["public_key"].as_str().unwrap()).unwrap();
    for c in &data {
        let cp: tenantry_store::chain::ChainCheckpoint = serde_json::from_value(c.clone()).unwrap();
        assert!(cp.signed_by(&public), "{c}");
    }
    assert_eq!(stored(&app, &admin, &tid).await["result"], "verified");
}

#[tokio::test]
async fn events_filter_by_actor_type_aggregate_time_and_impersonation() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tid = busy_tenant(&app, &admin).await;
    let events = format!("/v1/tenants/{tid}/events");
    let (_, all) = app.get(&format!("{events}?limit=200"), &admin).await;
    let all = all["data"].as_array().unwrap().clone();
    let count = |page: &Value| page["data"].as_array().map_or(0, Vec::len);

    let renamed = all
        .iter()
        .filter(|e| e["event_type"] == "TenantRenamed")
        .count();
    assert_eq!(renamed, 3);
    let (_, page) = app
        .get(&format!("{events}?event_type=TenantRenamed"), &admin)
        .await;
    assert_eq!(count(&page), 3);
    let (_, page) = app
        .get(&format!("{events}?aggregate_type=api_key"), &admin)
        .await;
    assert!(count(&page) >= 1, "{page}");
    assert!(page["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["aggregate_type"] == "api_key"));
    let admin_id = all[0]["metadata"]["actor"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, page) = app
        .get(&format!("{events}?actor=user:{admin_id}&limit=200"), &admin)
        .await;
    assert_eq!(count(&page), all.len(), "the admin did all of it");
    let (_, page) = app.get(&format!("{events}?actor=system"), &admin).await;
    assert_eq!(count(&page), 0);
    let (_, page) = app
        .get(&format!("{events}?impersonated=true"), &admin)
        .await;
    assert_eq!(count(&page), 0);
    let third = all[2]["recorded_at"].as_str().unwrap();
    let (_, page) = app
        .get(
            &format!("{events}?from={}&limit=200", third.replace('+', "%2B")),
            &admin,
        )
        .await;
    assert_eq!(count(&page), all.len() - 2);
    let (_, page) = app
        .get(
            &format!("{events}?to={}", third.replace('+', "%2B")),
            &admin,
        )
        .await;
    assert_eq!(count(&page), 2);
    for query in ["actor=robot", "actor=anonymous:x", "event_type="] {
        let (s, body) = app.get(&format!("{events}?{query}"), &admin).await;
        assert_eq!(
            (s, code(&body)),
            (422, "validation_failed"),
            "{query}: {body}"
        );
    }

    // The platform's own events: people's chains, for platform admins.
    let (s, page) = app
        .get(
            "/v1/admin/events?event_type=UserRegistered&limit=200",
            &admin,
        )
        .await;
    assert_eq!(s, 200, "{page}");
    assert!(count(&page) >= 2, "the admin and the operator: {page}");
    assert!(page["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["chain_id"].is_string() && e["hash"].is_string()));
    let (_, ops) = app.member(&admin, &tid, "viewer@acme.test", "viewer").await;
    let (s, body) = app.get("/v1/admin/events", &ops).await;
    assert_eq!((s, code(&body)), (403, "platform_admin_required"));
}

/// A `tenantry` command as the binary runs it, on the server's database.
async fn cli(app: &TestApp, args: &[&str]) -> Result<tenantry_api::cli::Done, String> {
    let config = tenantry_tests::test_config(&app.db.url, &[]);
    let cli = tenantry_api::cli::parse(std::iter::once("tenantry").chain(args.iter().copied()))?;
    tenantry_api::cli::run(cli, config).await
}

#[tokio::test]
async fn the_command_line_exports_and_verifies_with_and_without_the_database() {
    use tenantry_api::cli::Done;
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tid = busy_tenant(&app, &admin).await;
    let dir = tempfile_dir();
    let file = dir.join("acme.ndjson");
    let path = file.to_str().unwrap();
    assert_eq!(
        cli(
            &app,
            &["audit", "export", "--tenant", &tid, "--output", path]
        )
        .await,
        Ok(Done::Clean)
    );
    // The same lines the API gives (the manifest's export time aside).
    let written = std::fs::read_to_string(&file).unwrap();
    let served = export(&app, &admin, &tid, "").await;
    let events = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| !l.starts_with("{\"manifest\""))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(events(&written), events(&served));

    // Offline: no configuration is read for a file.
    let offline_cli =
        tenantry_api::cli::parse(["tenantry", "audit", "verify", "--file", path]).unwrap();
    assert_eq!(
        tenantry_api::cli::run_without_config(&offline_cli),
        Some(Ok(Done::Clean))
    );
    assert_eq!(
        cli(&app, &["audit", "verify", "--tenant", &tid]).await,
        Ok(Done::Clean)
    );
    // One character of one payload changed in the file: broken (exit 3).
    let tampered = written.replacen("ünïcode", "unicode", 1);
    assert_ne!(tampered, written);
    std::fs::write(&file, tampered).unwrap();
    assert_eq!(
        tenantry_api::cli::run_without_config(&offline_cli),
        Some(Ok(Done::Drift))
    );
    let _ = std::fs::remove_dir_all(&dir);
}
