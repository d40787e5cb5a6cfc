//! What an attacker found from outside, one class a test: what a public
//! endpoint may record, sign-in throttling, text that spoofs a display or
//! reaches Postgres, and connections dropped after an early answer.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tenantry_tests::{code, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

/// A client whose connections come from `ip` (any 127.x address is this
/// machine): a second "client address" for the throttling tests.
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(ip))
        .build()
        .expect("client")
}

async fn login_from(
    client: &reqwest::Client,
    app: &TestApp,
    email: &str,
    password: &str,
) -> (u16, Value, Option<String>) {
    let r = client
        .post(app.url("/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, r.json().await.unwrap_or(Value::Null), retry)
}

async fn event_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_failed_sign_in_records_no_free_text_from_the_caller() {
    let app = TestApp::spawn().await;
    let before = event_count(&app).await;
    // A huge "email", a password typed into the email field, a NUL: refused
    // before anything is recorded.
    let huge = format!("{}@x.io", "a".repeat(700_000));
    for (email, field_code) in [
        (huge.as_str(), "too_long"),
        ("correct horse battery staple", "invalid_email"),
        ("eve\u{0}@x.io", "invalid_characters"),
        (&format!("{}@x.io", "a".repeat(300)), "invalid_email"),
    ] {
        let r = app.login(email, "whatever-password").await;
        assert_eq!(r.status(), 422);
        let body: Value = r.json().await.unwrap();
        assert_eq!(code(&body), "validation_failed");
        assert_eq!(body["error"]["details"]["fields"][0]["field"], "email");
        assert_eq!(body["error"]["details"]["fields"][0]["code"], field_code);
    }
    let r = app.login("eve@x.io", &"p".repeat(257)).await;
    assert_eq!(r.status(), 422, "a password longer than any allowed");
    assert_eq!(event_count(&app).await, before, "nothing was recorded");

    // A well-formed unknown address: one event, with a keyed hash of the
    // address, the same for the same address, and the address nowhere.
    for email in ["Nobody@Example.io", "nobody@example.io", "other@example.io"] {
        assert_eq!(app.login(email, "whatever-password").await.status(), 401);
    }
    let failed: Vec<(Value, i32)> = sqlx::query_as(
        "SELECT payload, event_version FROM events WHERE event_type = 'SignInFailed' ORDER BY position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(failed.len(), 3);
    let hashes: Vec<&str> = failed
        .iter()
        .map(|(p, v)| {
            assert_eq!(*v, 2);
            assert_eq!(p["reason"], "unknown_email");
            assert!(p.get("email").is_none(), "{p}");
            p["email_hash"].as_str().expect("a hash")
        })
        .collect();
    assert_eq!(hashes[0].len(), 64);
    assert_eq!(
        hashes[0], hashes[1],
        "one address, one hash, whatever its case"
    );
    assert_ne!(hashes[0], hashes[2]);
    let all: String =
        sqlx::query_scalar("SELECT string_agg(payload::text || metadata::text, ' ') FROM events")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!all.to_lowercase().contains("nobody@example.io"));

    // A known user's failure names the user (the actor), not the address.
    assert_eq!(app.login(ADMIN_EMAIL, "wrong-password").await.status(), 401);
    let (payload, actor): (Value, Value) = sqlx::query_as(
        "SELECT payload, metadata->'actor' FROM events WHERE event_type = 'SignInFailed' ORDER BY position DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        payload,
        json!({ "reason": "wrong_password", "email_hash": null })
    );
    assert!(actor.to_string().contains("user"), "{actor}");
}

#[tokio::test]
async fn sign_in_and_refresh_are_throttled_per_address_and_other_addresses_still_sign_in() {
    let app = TestApp::spawn_with(&[("TENANTRY_SIGN_IN_RATE_LIMIT", "4")]).await;
    let attacker = client_from([127, 0, 0, 1]);
    for _ in 0..4 {
        let (s, _, _) = login_from(&attacker, &app, ADMIN_EMAIL, "guess-guess").await;
        assert_eq!(s, 401);
    }
    let (s, body, retry) = login_from(&attacker, &app, ADMIN_EMAIL, "guess-guess").await;
    assert_eq!((s, code(&body)), (429, "rate_limited"));
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(body["error"]["details"]["retry_after_seconds"], retry);
    // The right password from the throttled address is refused too...
    let (s, _, _) = login_from(&attacker, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(s, 429);
    // ...and so is a refresh from it.
    let r = attacker
        .post(app.url("/v1/auth/refresh"))
        .json(&json!({ "refresh_token": "whatever" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // The same person from another address signs in and refreshes.
    let other = client_from([127, 0, 0, 2]);
    let (s, pair, _) = login_from(&other, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(s, 200, "{pair}");
    let r = other
        .post(app.url("/v1/auth/refresh"))
        .json(&json!({ "refresh_token": pair["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn failed_sign_ins_throttle_the_account_from_every_address_until_the_window_ends() {
    let app = TestApp::spawn_with(&[
        ("TENANTRY_SIGN_IN_MAX_FAILURES", "3"),
        ("TENANTRY_SIGN_IN_FAILURE_WINDOW", "2s"),
    ])
    .await;
    let admin = app.admin_token().await;
    app.create_user(&admin, "ada@x.io", "ada-password-1").await;
    // Three failures from three addresses.
    for last in 2..5 {
        let client = client_from([127, 0, 0, last]);
        let (s, _, _) = login_from(&client, &app, "ada@x.io", "wrong-guess").await;
        assert_eq!(s, 401);
    }
    // Now the account answers 429 from anywhere, even to the right password.
    let fresh = client_from([127, 0, 0, 9]);
    let (s, body, retry) = login_from(&fresh, &app, "ada@x.io", "ada-password-1").await;
    assert_eq!((s, code(&body)), (429, "rate_limited"));
    assert!(retry.is_some());
    // Other accounts are untouched.
    let (s, _, _) = login_from(&fresh, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(s, 200);
    // An unknown address is throttled alike, so a 429 says nothing about
    // whether an account exists.
    for _ in 0..3 {
        let (s, _, _) = login_from(&fresh, &app, "ghost@x.io", "wrong-guess").await;
        assert_eq!(s, 401);
    }
    let (s, _, _) = login_from(&fresh, &app, "ghost@x.io", "wrong-guess").await;
    assert_eq!(s, 429);
    // When the window has passed, the right password works again.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s, _, _) = login_from(&fresh, &app, "ada@x.io", "ada-password-1").await;
        if s == 200 {
            break;
        }
        assert_eq!(s, 429);
        assert!(Instant::now() < deadline, "the window never ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_stolen_access_token_cannot_guess_the_current_password_without_limit() {
    let app = TestApp::spawn_with(&[("TENANTRY_SIGN_IN_MAX_FAILURES", "2")]).await;
    let admin = app.admin_token().await;
    app.create_user(&admin, "ada@x.io", "ada-password-1").await;
    let ada = app.token_for("ada@x.io", "ada-password-1").await;
    let change =
        |current: &str| json!({ "current_password": current, "new_password": "ada-password-2" });
    for _ in 0..2 {
        let (s, body) = app
            .post("/v1/me/password", &ada, change("guess-guess"))
            .await;
        assert_eq!((s, code(&body)), (422, "wrong_password"));
    }
    let (s, body) = app
        .post("/v1/me/password", &ada, change("ada-password-1"))
        .await;
    assert_eq!((s, code(&body)), (429, "rate_limited"));
    // The admin's own allowance is separate.
    let (s, body) = app
        .post("/v1/me/password", &admin, change(ADMIN_PASSWORD))
        .await;
    assert_eq!(s, 204, "{body}");
}

#[tokio::test]
async fn names_refuse_display_spoofing_and_reasons_keep_only_newline_and_tab() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Acme").await;
    let tid = tenant["id"].as_str().unwrap();
    let field_code = |body: &Value| body["error"]["details"]["fields"][0]["code"].clone();
    for spoof in [
        "Acme\u{202E}gpj.exe",
        "Ac\u{200B}me",
        "\u{FEFF}Acme",
        "Ac\u{2067}me",
    ] {
        let (s, body) = app
            .post("/v1/tenants", &admin, json!({ "name": spoof }))
            .await;
        assert_eq!(
            (s, field_code(&body)),
            (422, json!("invalid_characters")),
            "{spoof:?}"
        );
        let (s, body) = app
            .post(
                "/v1/admin/users",
                &admin,
                json!({ "email": "s@x.io", "name": spoof, "password": "password-123" }),
            )
            .await;
        assert_eq!(
            (s, field_code(&body)),
            (422, json!("invalid_characters")),
            "{spoof:?}"
        );
        let (s, _) = app
            .post(
                &format!("/v1/tenants/{tid}/api-keys"),
                &admin,
                json!({ "name": spoof, "permissions": ["tenant.read"] }),
            )
            .await;
        assert_eq!(s, 422, "{spoof:?}");
        let (s, _) = app
            .patch(
                &format!("/v1/tenants/{tid}"),
                &admin,
                json!({ "name": spoof }),
            )
            .await;
        assert_eq!(s, 422, "{spoof:?}");
    }
    // A reason: newline and tab are kept; a bell or a text-direction
    // override is refused.
    let suspend = format!("/v1/tenants/{tid}/suspend");
    let (s, body) = app
        .post(&suspend, &admin, json!({ "reason": "overdue\u{7}" }))
        .await;
    assert_eq!((s, code(&body)), (422, "validation_failed"));
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "reason");
    let (s, body) = app
        .post(
            &suspend,
            &admin,
            json!({ "reason": "overdue \u{202E}eudrevo" }),
        )
        .await;
    assert_eq!((s, code(&body)), (422, "invalid_reason"));
    let (s, body) = app
        .post(
            &format!("/v1/tenants/{tid}/suspend"),
            &admin,
            json!({ "reason": "invoice overdue\n\tsee ticket 42" }),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let reason: String = sqlx::query_scalar(
        "SELECT payload->>'reason' FROM events WHERE event_type = 'TenantSuspended'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(reason, "invoice overdue\n\tsee ticket 42");
}

#[tokio::test]
async fn control_characters_are_refused_with_the_field_named_before_postgres_sees_them() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Acme").await;
    let tid = tenant["id"].as_str().unwrap();
    let fields = |body: &Value| body["error"]["details"]["fields"].clone();

    let (s, body) = app
        .patch(
            &format!("/v1/tenants/{tid}"),
            &admin,
            json!({ "settings": { "plan": "a\u{0}b", "ok": "fine\nline" } }),
        )
        .await;
    assert_eq!((s, code(&body)), (422, "validation_failed"));
    assert_eq!(fields(&body)[0]["field"], "settings.plan");
    assert_eq!(fields(&body)[0]["code"], "invalid_characters");
    assert_eq!(
        fields(&body).as_array().unwrap().len(),
        1,
        "newline is fine"
    );

    let (s, body) = app
        .get(&format!("/v1/tenants/{tid}/members?role=%00"), &admin)
        .await;
    assert_eq!((s, fields(&body)[0]["field"].clone()), (422, json!("role")));
    let (s, body) = app.get("/v1/admin/users?q=a%1Bb", &admin).await;
    assert_eq!((s, fields(&body)[0]["field"].clone()), (422, json!("q")));
    // An oversized string anywhere is refused by name, and not echoed.
    let big = "x".repeat(17 * 1024);
    let (s, body) = app
        .post(
            "/v1/tenants",
            &admin,
            json!({ "name": "Acme 2", "slug": big }),
        )
        .await;
    assert_eq!(
        (s, fields(&body)[0]["code"].clone()),
        (422, json!("too_long"))
    );
    assert!(body.to_string().len() < 1000);

    // The invitation accept route reads its (optional) body itself, under
    // the same rule.
    let (s, invitation) = app
        .post(
            &format!("/v1/tenants/{tid}/invitations"),
            &admin,
            json!({ "email": "new@x.io", "role": "viewer" }),
        )
        .await;
    assert_eq!(s, 201, "{invitation}");
    let accept = format!(
        "/v1/invitations/{}/accept",
        invitation["token"].as_str().unwrap()
    );
    let (s, body) = app
        .send(
            Method::POST,
            &accept,
            None,
            Some(json!({ "name": "New\u{0}Person", "password": "a-long-password" })),
        )
        .await;
    assert_eq!((s, fields(&body)[0]["field"].clone()), (422, json!("name")));

    // An Authorization header with no readable bearer token is an invalid
    // credential, answered in the error format.
    let r = app
        .client
        .get(app.url("/v1/me"))
        .header("authorization", "Basic YWRhOnNlY3JldA==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(code(&body), "invalid_token");

    // Path ids that do not decode are 404, before and after authentication.
    for (method, path) in [
        (Method::GET, "/v1/tenants/%FF%FE".to_string()),
        (Method::DELETE, format!("/v1/tenants/{tid}/members/%C0%AF")),
        (Method::DELETE, format!("/v1/tenants/{tid}/roles/%00")),
        (Method::DELETE, format!("/v1/tenants/{tid}/api-keys/%FF")),
    ] {
        let (s, body) = app.send(method.clone(), &path, Some(&admin), None).await;
        assert_eq!(s, 404, "{path}: {body}");
        let (s, body) = app.send(method, &path, None, None).await;
        assert_eq!(s, 401, "{path}: {body}");
    }
}

/// Send on `client` and read the status and the `Connection` header.
async fn status_and_connection(
    client: &reqwest::Client,
    method: Method,
    url: String,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Option<String>) {
    let mut req = client.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req
        .send()
        .await
        .expect("a fresh connection for each request after a close");
    let connection = r
        .headers()
        .get("connection")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (r.status().as_u16(), connection)
}

#[tokio::test]
async fn an_answer_before_the_body_was_read_closes_the_connection_and_says_so() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    // One connection, reused whenever the server allows it.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let big = json!({ "name": "x".repeat(100 * 1024) });
    let huge = json!({ "name": "x".repeat(2 * 1024 * 1024) });
    let empty_name = json!({ "name": "" });
    let close = Some("close".to_string());
    let tenants = app.url("/v1/tenants");
    for _ in 0..3 {
        let call =
            |method, url, token, body| status_and_connection(&client, method, url, token, body);
        // 401 without reading a 100 KB body.
        let answer = call(Method::POST, tenants.clone(), None, Some(&big)).await;
        assert_eq!(answer, (401, close.clone()));
        // 413 for a body over the limit.
        let answer = call(Method::POST, tenants.clone(), Some(&admin), Some(&huge)).await;
        assert_eq!(answer, (413, close.clone()));
        // 404 on an unknown route with a body.
        let answer = call(Method::POST, app.url("/v1/nowhere"), None, Some(&big)).await;
        assert_eq!(answer, (404, close.clone()));
        // Requests whose body was read (or that had none) keep the connection.
        let answer = call(
            Method::POST,
            tenants.clone(),
            Some(&admin),
            Some(&empty_name),
        )
        .await;
        assert_eq!(answer, (422, None));
        let answer = call(Method::GET, app.url("/v1/me"), Some(&admin), None).await;
        assert_eq!(answer, (200, None));
    }
}
