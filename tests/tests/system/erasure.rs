//! Erasure (`docs/AUDIT.md`, "Erasure"): a person's email and name are in
//! the log only sealed under their data key; erasing them destroys the key.
//! Afterwards no table holds their email or name in plaintext, the chains
//! still verify, the account is closed, and the email registers again.

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::{PgPool, Row};
use tenantry_projections::runtime;
use tenantry_store::chain::Verdict;
use tenantry_tests::smtp::SmtpSink;
use tenantry_tests::{code, TestApp};

const EMAIL: &str = "Zelda.Quux@Erase.test";
const NAME: &str = "Zelda Quuxworth";
const RENAMED: &str = "Zelda Q. Xanthippe";
const PASSWORD: &str = "zelda-password-1";

/// Every row of every table of the database, as text, lowercased.
async fn dump(pool: &PgPool) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(table_name) FROM information_schema.tables \
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.len() > 20, "every table: {tables:?}");
    let mut all = String::new();
    for table in tables {
        let rows = sqlx::query(&format!("SELECT t::text AS row FROM {table} t"))
            .fetch_all(pool)
            .await
            .unwrap();
        for row in rows {
            all.push_str(&row.get::<String, _>("row"));
            all.push('\n');
        }
    }
    all.to_lowercase()
}

fn holds_person(text: &str) -> Vec<&'static str> {
    ["zelda.quux", "erase.test", "quuxworth", "xanthippe"]
        .into_iter()
        .filter(|needle| text.contains(needle))
        .collect()
}

#[tokio::test]
async fn an_erased_person_is_in_no_table_the_chains_verify_and_the_email_registers_again() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(&[("TENANTRY_SMTP_URL", &sink.url())]).await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Erasure Co").await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let other = app.create_tenant(&admin, "Elsewhere").await;
    let other_tid = other["id"].as_str().unwrap().to_string();

    // The person: an account, a member, renamed, invited to another tenant.
    let (s, user) = app
        .post(
            "/v1/admin/users",
            &admin,
            json!({ "email": EMAIL, "name": NAME, "password": PASSWORD }),
        )
        .await;
    assert_eq!(s, 201, "{user}");
    let id = user["id"].as_str().unwrap().to_string();
    assert_eq!(user["email"], EMAIL, "shown while they are here");
    app.add_member(&admin, &tid, &id, "operator").await;
    let token = app.token_for(EMAIL, PASSWORD).await;
    let (s, me) = app
        .patch("/v1/me", &token, json!({ "name": RENAMED }))
        .await;
    assert_eq!((s, me["name"].as_str()), (200, Some(RENAMED)), "{me}");
    let (s, invited) = app
        .post(
            &format!("/v1/tenants/{other_tid}/invitations"),
            &admin,
            json!({ "email": "zelda.quux@erase.test", "role": "viewer" }),
        )
        .await;
    assert_eq!(s, 201, "{invited}");
    sink.wait_for(1, Duration::from_secs(20)).await;

    // The log holds them only sealed; the read models show them.
    let events = sqlx::query_scalar::<_, String>("SELECT payload::text FROM events")
        .fetch_all(&app.pool)
        .await
        .unwrap()
        .join("\n")
        .to_lowercase();
    assert_eq!(
        holds_person(&events),
        Vec::<&str>::new(),
        "events hold ciphertext only"
    );
    assert!(events.contains("pd1:"), "sealed values are there");
    assert!(
        !holds_person(&dump(&app.pool).await).is_empty(),
        "the read models show them"
    );

    let (s, erased) = app
        .post(
            &format!("/v1/admin/users/{id}/erase"),
            &admin,
            json!({ "reason": "erasure request #7" }),
        )
        .await;
    assert_eq!(s, 200, "{erased}");
    assert_eq!(erased["status"], "erased");
    assert_eq!(
        (&erased["email"], &erased["name"]),
        (&Value::Null, &Value::Null)
    );

    // Closed: no session survives, no sign-in, no second erasure.
    let (s, body) = app.get("/v1/me", &token).await;
    assert_eq!((s, code(&body)), (401, "invalid_token"));
    let r = app.login(EMAIL, PASSWORD).await;
    assert_eq!(r.status().as_u16(), 401);
    let (s, body) = app
        .post(
            &format!("/v1/admin/users/{id}/erase"),
            &admin,
            json!({ "reason": "again" }),
        )
        .await;
    assert_eq!((s, code(&body)), (409, "user_erased"));

    // Shown as erased wherever they were shown.
    let (_, members) = app.get(&format!("/v1/tenants/{tid}/members"), &admin).await;
    let member = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == id.as_str())
        .expect("still a member")
        .clone();
    assert_eq!(
        (&member["email"], &member["name"]),
        (&Value::Null, &Value::Null)
    );
    let (_, invitations) = app
        .get(&format!("/v1/tenants/{other_tid}/invitations"), &admin)
        .await;
    assert_eq!(
        invitations["data"][0]["email"],
        Value::Null,
        "{invitations}"
    );

    // No table holds them, now or after every read model is rebuilt.
    assert_eq!(holds_person(&dump(&app.pool).await), Vec::<&str>::new());
    for projection in app.projections() {
        runtime::rebuild(&app.pool, projection.as_ref(), 100)
            .await
            .unwrap();
    }
    assert_eq!(holds_person(&dump(&app.pool).await), Vec::<&str>::new());
    let (_, after) = app.get(&format!("/v1/admin/users/{id}"), &admin).await;
    assert_eq!(after["status"], "erased", "{after}");

    // What the log holds of them opens nowhere: every sealed value in
    // their chain and in the invitation names a destroyed data key.
    let sealed_keys: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT (regexp_matches(payload::text, 'pd1:([0-9a-f-]{36}):', 'g'))[1] \
           FROM events WHERE chain_id = $1::uuid OR event_type = 'InvitationCreated'",
    )
    .bind(&id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(
        sealed_keys.len() >= 2,
        "their key and their address's: {sealed_keys:?}"
    );
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM data_keys WHERE id::text = ANY($1) AND wrapped IS NOT NULL",
    )
    .bind(&sealed_keys)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(live, 0, "destroyed: {sealed_keys:?}");

    // Every event stayed, and every chain still verifies.
    let store = tenantry_store::Store::new(app.pool.clone());
    let user_id: uuid::Uuid = id.parse().unwrap();
    for chain in [user_id, tid.parse().unwrap(), other_tid.parse().unwrap()] {
        let verdict = store.audit().verify_chain(chain, Vec::new()).await.unwrap();
        assert!(
            matches!(verdict, Verdict::Verified { .. }),
            "{chain}: {verdict:?}"
        );
    }
    let (s, verified) = app
        .get(&format!("/v1/tenants/{other_tid}/audit/verify"), &admin)
        .await;
    assert_eq!((s, verified["result"].as_str()), (200, Some("verified")));

    // The address is free: the same email registers again, and signs in.
    let (s, again) = app
        .post(
            "/v1/admin/users",
            &admin,
            json!({ "email": EMAIL, "name": "Someone New", "password": "another-password-2" }),
        )
        .await;
    assert_eq!(s, 201, "{again}");
    assert_ne!(again["id"], user["id"]);
    assert_eq!(again["email"], EMAIL);
    let r = app.login(EMAIL, "another-password-2").await;
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn erasure_is_refused_for_oneself_the_last_owner_and_nobody() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, me) = app.get("/v1/me", &admin).await;
    let admin_id = me["user"]["id"].as_str().unwrap().to_string();
    let reason = json!({ "reason": "because" });
    let (s, body) = app
        .post(
            &format!("/v1/admin/users/{admin_id}/erase"),
            &admin,
            reason.clone(),
        )
        .await;
    assert_eq!((s, code(&body)), (409, "cannot_erase_self"));

    let tenant = app.create_tenant(&admin, "Owned").await;
    let tid = tenant["id"].as_str().unwrap();
    let (owner, _) = app.member(&admin, tid, "owner@owned.test", "owner").await;
    let (s, body) = app
        .post(
            &format!("/v1/admin/users/{owner}/erase"),
            &admin,
            reason.clone(),
        )
        .await;
    assert_eq!((s, code(&body)), (409, "last_owner"));

    let nobody = uuid::Uuid::now_v7();
    let (s, body) = app
        .post(&format!("/v1/admin/users/{nobody}/erase"), &admin, reason)
        .await;
    assert_eq!((s, code(&body)), (404, "user_not_found"));
    let (s, body) = app
        .post(
            &format!("/v1/admin/users/{owner}/erase"),
            &admin,
            json!({ "reason": "   " }),
        )
        .await;
    assert_eq!((s, code(&body)), (422, "validation_failed"));
}
