//! What the logs hold, captured at TRACE: no plaintext provider key and no
//! bearer secret from a path at any level, and one line per database outage
//! rather than one per request. This file is its own test binary because it
//! installs the process-wide subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tenantry_tests::smtp::SmtpSink;
use tenantry_tests::{code, DbProxy, TestApp, TestDb};

const SECRET: &str = "sk-proj-LOGCAPTUREPLAINTEXTabcdef9876";
const REPLACEMENT: &str = "sk-proj-LOGCAPTUREREPLACEDghijkl5432";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

/// Every log line of this process, from the first test that asks.
fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let writer = capture.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        capture
    })
}

#[tokio::test]
async fn the_invitation_flow_logs_no_token_at_trace() {
    let logs = capture();
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(&[("TENANTRY_SMTP_URL", &sink.url())]).await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Acme").await;
    let tid = tenant["id"].as_str().unwrap();
    let invitations = format!("/v1/tenants/{tid}/invitations");

    let mut tokens = Vec::new();
    for email in ["ada@x.io", "bob@x.io"] {
        let (s, created) = app
            .post(
                &invitations,
                &admin,
                json!({ "email": email, "role": "operator" }),
            )
            .await;
        assert_eq!(s, 201, "{created}");
        tokens.push(created["token"].as_str().unwrap().to_string());
    }
    sink.wait_for(2, Duration::from_secs(20)).await;
    // View, accept as a new user, accept again (used), and a wrong token.
    let (s, _) = app
        .send(
            Method::GET,
            &format!("/v1/invitations/{}", tokens[0]),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let accept = |t: &str| format!("/v1/invitations/{t}/accept");
    let body = json!({ "name": "Ada", "password": "ada-password-1" });
    let (s, accepted) = app
        .send(Method::POST, &accept(&tokens[0]), None, Some(body.clone()))
        .await;
    assert_eq!(s, 200, "{accepted}");
    let (s, _) = app
        .send(Method::POST, &accept(&tokens[0]), None, Some(body.clone()))
        .await;
    assert!(s >= 400);
    let (s, _) = app
        .send(
            Method::GET,
            &format!("/v1/invitations/{}x", tokens[1]),
            None,
            None,
        )
        .await;
    assert_eq!(s, 404);
    // A resend gives a new token for the second invitation.
    let id: String =
        sqlx::query_scalar("SELECT id::text FROM invitations_view WHERE email = 'bob@x.io'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let (s, resent) = app
        .post(&format!("{invitations}/{id}/resend"), &admin, json!({}))
        .await;
    assert_eq!(s, 200, "{resent}");
    tokens.push(resent["token"].as_str().unwrap().to_string());
    sink.wait_for(3, Duration::from_secs(20)).await;

    let text = logs.text();
    assert!(
        text.contains("/v1/invitations/{token}"),
        "the request spans name the route template"
    );
    for token in &tokens {
        assert!(
            !text.contains(token.as_str()),
            "an invitation token reached the log"
        );
    }
}

#[tokio::test]
async fn a_database_outage_is_503_with_retry_after_and_one_log_line_each_way() {
    let logs = capture();
    let proxy = DbProxy::start().await;
    let db = TestDb::create().await;
    let url = proxy.url(&db.name);
    let app = TestApp::spawn_on(
        db,
        &[
            ("DATABASE_URL", url.as_str()),
            ("TENANTRY_DATABASE_ACQUIRE_TIMEOUT", "300ms"),
        ],
    )
    .await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Acme").await;
    let members = format!("/v1/tenants/{}/members", tenant["id"].as_str().unwrap());
    assert_eq!(app.get(&members, &admin).await.0, 200);

    proxy.cut().await;
    for _ in 0..12 {
        let r = app
            .client
            .get(app.url(&members))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "5");
        assert!(r.headers().contains_key("x-request-id"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(code(&body), "service_unavailable");
        assert!(body["error"]["details"]["request_id"].is_string());
    }
    let (s, body) = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!((s, code(&body)), (503, "not_ready"));

    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if app.get(&members, &admin).await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The watcher logs the end of the outage once it sees the database.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !logs.text().contains("the database is reachable again") {
        assert!(Instant::now() < deadline, "no recovery line");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = logs.text();
    let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("the database cannot be reached"), 1, "{text}");
    assert_eq!(count("the database is reachable again"), 1);
    let recovered = text
        .lines()
        .find(|l| l.contains("the database is reachable again"))
        .unwrap();
    assert!(recovered.contains("requests_refused=12"), "{recovered}");
    // (Other tests of this binary log at the same time: the members route
    // is this one's.)
    let per_request = text
        .lines()
        .filter(|l| l.contains("request failed") && l.contains("/members"))
        .count();
    assert_eq!(per_request, 0, "no per-request error lines");
}

#[tokio::test]
async fn trace_level_logs_of_create_resolve_replace_and_delete_hold_no_plaintext() {
    let capture = capture();
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Acme").await;
    let tid = tenant["id"].as_str().unwrap();
    let (_, runtime) = app.api_key(&admin, tid, &["llm_keys.use"]).await;
    let keys = format!("/v1/tenants/{tid}/llm-keys");

    let (status, created) = app
        .post(
            &keys,
            &admin,
            json!({ "provider": "openai", "api_key": SECRET }),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap();
    let (status, resolved) = app
        .post(&format!("{keys}/openai/resolve"), &runtime, json!({}))
        .await;
    assert_eq!((status, resolved["api_key"].as_str()), (200, Some(SECRET)));
    // A refused input is logged too; it must not echo the key.
    let (status, _) = app
        .post(
            &keys,
            &admin,
            json!({ "provider": "openai", "api_key": SECRET }),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .put(
            &format!("{keys}/{id}"),
            &admin,
            json!({ "api_key": REPLACEMENT }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.delete(&format!("{keys}/{id}"), &admin).await;
    assert_eq!(status, 204);
    drop(app);

    let logs = capture.text();
    assert!(
        logs.contains("request finished") && logs.contains("TRACE"),
        "the capture sees trace-level output"
    );
    for secret in [SECRET, REPLACEMENT] {
        assert!(!logs.contains(secret), "a log line holds a plaintext key");
        assert!(
            !logs.contains(&secret[8..]),
            "a log line holds part of a key"
        );
    }
}

#[tokio::test]
async fn trace_level_logs_of_stripe_webhooks_hold_no_signing_secret() {
    const WEBHOOK_SECRET: &str = "whsec_never_in_a_log_0123456789";
    let capture = capture();
    let app = TestApp::spawn_with(&[("TENANTRY_STRIPE_WEBHOOK_SECRETS", WEBHOOK_SECRET)]).await;
    let now = chrono::Utc::now().timestamp();
    let body = serde_json::to_vec(&json!({
        "id": "evt_log", "type": "customer.subscription.updated", "created": now,
        "data": { "object": { "id": "sub_log", "status": "active", "metadata": {} } }
    }))
    .unwrap();
    for header in [
        tenantry_api::stripe_signature::sign(&body, WEBHOOK_SECRET, now),
        tenantry_api::stripe_signature::sign(&body, "whsec_forged", now),
    ] {
        let r = app
            .client
            .post(app.url("/v1/webhooks/stripe"))
            .header("stripe-signature", header)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert!(r.status() == 200 || r.status() == 400);
    }
    drop(app);
    let logs = capture.text();
    assert!(
        logs.contains("/v1/webhooks/stripe"),
        "the capture saw the deliveries"
    );
    assert!(
        !logs.contains(WEBHOOK_SECRET),
        "a log line holds the signing secret"
    );
    assert!(
        !logs.contains(&WEBHOOK_SECRET[6..]),
        "a log line holds part of the secret"
    );
}

#[tokio::test]
async fn trace_level_logs_of_checkout_portal_and_webhooks_hold_no_stripe_secret_key() {
    use tenantry_tests::localstripe::{LocalStripe, StripeFront, SECRET_KEY};
    const WEBHOOK_SECRET: &str = "whsec_localstripe_logs_0123456789";
    let capture = capture();
    let local = LocalStripe::start().await;
    let front = StripeFront::start(&local).await;
    let front_url = front.url();
    let app = TestApp::spawn_with(&[
        ("TENANTRY_STRIPE_SECRET_KEY", SECRET_KEY),
        ("TENANTRY_STRIPE_API_BASE", &front_url),
        ("TENANTRY_STRIPE_WEBHOOK_SECRETS", WEBHOOK_SECRET),
    ])
    .await;
    local
        .register_webhook(&app.url("/v1/webhooks/stripe"), WEBHOOK_SECRET)
        .await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Acme").await;
    let tid = tenant["id"].as_str().unwrap();
    // A price Stripe lacks (refused: its error passes through the log),
    // then checkout and the portal for the customer it created.
    let (s, _) = app
        .post(
            "/v1/admin/plans",
            &admin,
            json!({"key": "team", "name": "Team", "price_minor": 4900, "currency": "eur",
                   "interval": "month", "entitlements": {}}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, body) = app
        .post(
            &format!("/v1/tenants/{tid}/billing/checkout"),
            &admin,
            json!({"plan": "team"}),
        )
        .await;
    assert_eq!((s, code(&body)), (409, "plan_not_for_sale"));
    local
        .call(
            Method::POST,
            "/v1/plans",
            &[
                ("id", "tenantry_team_v1"),
                ("amount", "4900"),
                ("currency", "eur"),
                ("interval", "month"),
                ("product[name]", "Team"),
            ],
        )
        .await;
    let (s, _) = app
        .post(
            &format!("/v1/tenants/{tid}/billing/checkout"),
            &admin,
            json!({"plan": "team"}),
        )
        .await;
    assert_eq!(s, 200);
    let customer = front.sessions()[1].field("customer").unwrap().to_string();
    local.give_card(&customer).await;
    local
        .call(
            Method::POST,
            "/v1/subscriptions",
            &[
                ("customer", customer.as_str()),
                ("items[0][plan]", "tenantry_team_v1"),
                ("metadata[tenant_id]", tid),
            ],
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, billing) = app.get(&format!("/v1/tenants/{tid}/billing"), &admin).await;
        if billing["status"] == "active" {
            break;
        }
        assert!(Instant::now() < deadline, "never active: {billing}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, _) = app
        .post(
            &format!("/v1/tenants/{tid}/billing/portal"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    drop(app);
    let logs = capture.text();
    assert!(
        logs.contains("/billing/checkout") && logs.contains("/v1/webhooks/stripe"),
        "the capture saw checkout and the deliveries"
    );
    assert!(
        !logs.contains(SECRET_KEY),
        "a log line holds the Stripe key"
    );
    assert!(
        !logs.contains(&SECRET_KEY[8..]),
        "a log line holds part of the Stripe key"
    );
}

/// After a person is erased, nothing the server does with what is left of
/// them (lists, a rebuild of every read model, a sign-in with their
/// address, the outbox) puts their email or name in the log; and their
/// name, sealed everywhere, never reached it at all.
#[tokio::test]
async fn an_erased_person_reaches_no_log_line_afterwards() {
    const EMAIL: &str = "wilhelmina.erasable@logs.test";
    const NAME: &str = "Wilhelmina Erasable";
    let logs = capture();
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(&[("TENANTRY_SMTP_URL", &sink.url())]).await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Logged").await;
    let tid = tenant["id"].as_str().unwrap();
    let (s, user) = app
        .post(
            "/v1/admin/users",
            &admin,
            json!({ "email": EMAIL, "name": NAME, "password": "wilhelmina-pass-1" }),
        )
        .await;
    assert_eq!(s, 201, "{user}");
    let id = user["id"].as_str().unwrap().to_string();
    app.add_member(&admin, tid, &id, "viewer").await;
    let other = app.create_tenant(&admin, "Logged Elsewhere").await;
    let (s, _) = app
        .post(
            &format!("/v1/tenants/{}/invitations", other["id"].as_str().unwrap()),
            &admin,
            json!({ "email": EMAIL, "role": "viewer" }),
        )
        .await;
    assert_eq!(s, 201);
    sink.wait_for(1, Duration::from_secs(20)).await;

    let (s, _) = app
        .post(
            &format!("/v1/admin/users/{id}/erase"),
            &admin,
            json!({ "reason": "request 12" }),
        )
        .await;
    assert_eq!(s, 200);
    let from = logs.text().len();
    assert_eq!(
        app.get(&format!("/v1/tenants/{tid}/members"), &admin)
            .await
            .0,
        200
    );
    assert_eq!(app.get("/v1/admin/users", &admin).await.0, 200);
    for projection in app.projections() {
        tenantry_projections::runtime::rebuild(&app.pool, projection.as_ref(), 50)
            .await
            .unwrap();
    }
    let r = app.login(EMAIL, "wilhelmina-pass-1").await;
    assert_eq!(r.status().as_u16(), 401);

    let text = logs.text().to_lowercase();
    let after = &text[from..];
    for needle in ["wilhelmina", "erasable", "logs.test"] {
        assert!(!after.contains(needle), "{needle} logged after the erasure");
    }
    assert!(!text.contains("wilhelmina erasable"), "the name was logged");
}
