//! System tests through HTTP: every endpoint of the core and its errors.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tenantry_tests::{code, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};

#[tokio::test]
async fn health_and_readiness_answer_without_credentials() {
    let app = TestApp::spawn().await;
    let (s, b) = app.send(Method::GET, "/healthz", None, None).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("ok")));
    let (s, b) = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("ready")));
}

#[tokio::test]
async fn the_api_describes_itself_and_serves_its_docs_page_from_the_binary() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let served = r.text().await.unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .unwrap();
    assert_eq!(
        served, committed,
        "the server serves the committed document"
    );
    let doc: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/tenants/{tid}/members"]["get"].is_object());

    let r = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(page.contains("/openapi.json"));
    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("//cdn"),
        "the page loads nothing from another host"
    );
    assert!(
        page.contains(r#""validatorUrl": "none""#),
        "Swagger UI's online validator is off"
    );
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-ui-standalone-preset.js",
    ] {
        let path = format!("/docs/{asset}");
        assert!(page.contains(&path), "the page refers to {path}");
        let r = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.bytes().await.unwrap().len() > 1000, "{path} has content");
    }
    let (s, b) = app.send(Method::GET, "/docs/missing.js", None, None).await;
    assert_eq!((s, code(&b)), (404, "not_found"));
}

#[tokio::test]
async fn sign_in_answers_a_token_pair_and_me_describes_the_caller() {
    let app = TestApp::spawn().await;
    let r = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 200);
    let pair: Value = r.json().await.unwrap();
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert!(pair["refresh_token"].as_str().unwrap().len() >= 43);
    let token = pair["access_token"].as_str().unwrap();
    let (s, me) = app.get("/v1/me", token).await;
    assert_eq!(s, 200);
    assert_eq!(me["user"]["email"], ADMIN_EMAIL);
    assert_eq!(me["is_platform_admin"], true);
    assert!(me["tenants"].is_array());
}

#[tokio::test]
async fn unknown_email_wrong_password_and_deactivated_user_get_the_same_401() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let user = app.create_user(&admin, "gone@x.io", "password-123").await;
    let id = user["id"].as_str().unwrap();
    let (s, _) = app
        .post(
            &format!("/v1/admin/users/{id}/deactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    for (email, password) in [
        ("nobody@x.io", "password-123"),
        (ADMIN_EMAIL, "wrong-password"),
        ("gone@x.io", "password-123"),
    ] {
        let r = app.login(email, password).await;
        assert_eq!(r.status(), 401, "{email}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(code(&body), "invalid_credentials");
    }
    // Every attempt is in the audit trail, and no password is.
    let failed: Vec<Value> = sqlx::query_scalar(
        "SELECT payload FROM events WHERE event_type = 'SignInFailed' ORDER BY position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let reasons: Vec<&str> = failed
        .iter()
        .map(|p| p["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["unknown_email", "wrong_password", "user_deactivated"]
    );
    let all: String =
        sqlx::query_scalar("SELECT string_agg(payload::text || metadata::text, ' ') FROM events")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    for secret in ["password-123", "wrong-password", ADMIN_PASSWORD] {
        assert!(!all.contains(secret), "a password reached the event log");
    }
    let ok: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'SignInSucceeded'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(ok, 1, "the one successful sign-in of the setup");
}

async fn refresh(app: &TestApp, token: &str) -> (u16, Value) {
    app.send(
        Method::POST,
        "/v1/auth/refresh",
        None,
        Some(json!({ "refresh_token": token })),
    )
    .await
}

#[tokio::test]
async fn refresh_rotates_and_reusing_a_rotated_token_revokes_the_session() {
    let app = TestApp::spawn().await;
    let pair: Value = app
        .login(ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let first = pair["refresh_token"].as_str().unwrap();
    let (s, second) = refresh(&app, first).await;
    assert_eq!(s, 200);
    let second_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(second_refresh, first);
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(app.get("/v1/me", access).await.0, 200);

    let (s, body) = refresh(&app, first).await;
    assert_eq!((s, code(&body)), (401, "refresh_token_reused"));
    // The whole session is gone: the newest refresh token and access token too.
    assert_eq!(refresh(&app, second_refresh).await.0, 401);
    assert_eq!(app.get("/v1/me", access).await.0, 401);
    let (s, body) = refresh(&app, "not-a-token").await;
    assert_eq!((s, code(&body)), (401, "invalid_refresh_token"));
}

#[tokio::test]
async fn logout_revokes_the_session_at_once() {
    let app = TestApp::spawn().await;
    let pair: Value = app
        .login(ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let access = pair["access_token"].as_str().unwrap();
    let (s, _) = app
        .send(Method::POST, "/v1/auth/logout", Some(access), None)
        .await;
    assert_eq!(s, 204);
    let (s, body) = app.get("/v1/me", access).await;
    assert_eq!((s, code(&body)), (401, "invalid_token"));
    assert_eq!(
        refresh(&app, pair["refresh_token"].as_str().unwrap())
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn missing_bad_and_non_admin_credentials_are_401_401_403() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (s, b) = app.send(Method::GET, "/v1/tenants", None, None).await;
    assert_eq!((s, code(&b)), (401, "missing_token"));
    let (s, b) = app.get("/v1/tenants", "eyJhbGciOiJIUzI1NiJ9.e30.bad").await;
    assert_eq!((s, code(&b)), (401, "invalid_token"));
    app.create_user(&admin, "plain@x.io", "password-123").await;
    let plain = app.token_for("plain@x.io", "password-123").await;
    let (s, b) = app.get("/v1/tenants", &plain).await;
    assert_eq!((s, code(&b)), (403, "platform_admin_required"));
    assert_eq!(b["error"]["details"]["permission"], "platform.admin");
    let (s, _) = app.get("/v1/me", &plain).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_tenant_is_created_read_listed_and_its_slug_is_unique() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let t = app.create_tenant(&token, "Acme Corp").await;
    assert_eq!(t["slug"], "acme-corp");
    assert_eq!(t["status"], "active");
    assert_eq!(t["settings"], json!({}));
    for field in ["id", "name", "created_at", "updated_at"] {
        assert!(!t[field].is_null(), "{field}");
    }
    let id = t["id"].as_str().unwrap();
    let (s, got) = app.get(&format!("/v1/tenants/{id}"), &token).await;
    assert_eq!((s, &got), (200, &t));

    let (s, b) = app
        .post(
            "/v1/tenants",
            &token,
            json!({"name": "Other", "slug": "acme-corp"}),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "slug_taken"));
    let (s, b) = app
        .post(
            "/v1/tenants",
            &token,
            json!({"name": "", "slug": "Bad_Slug"}),
        )
        .await;
    assert_eq!((s, code(&b)), (422, "validation_failed"));
    let fields: Vec<&str> = b["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "slug"]);
    let (s, b) = app
        .post("/v1/tenants", &token, json!({"name": "x".repeat(101)}))
        .await;
    assert_eq!((s, code(&b)), (422, "validation_failed"));

    let (s, b) = app
        .get("/v1/tenants/00000000-0000-0000-0000-000000000001", &token)
        .await;
    assert_eq!((s, code(&b)), (404, "tenant_not_found"));
    let (s, _) = app.get("/v1/tenants/not-a-uuid", &token).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn tenant_lists_page_with_a_cursor_and_filter_by_q_and_status() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    for name in ["Alpha Labs", "Beta Works", "Gamma Labs"] {
        app.create_tenant(&token, name).await;
    }
    let (_, page1) = app.get("/v1/tenants?limit=2", &token).await;
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("{page1}"));
    let (_, page2) = app
        .get(&format!("/v1/tenants?limit=2&cursor={cursor}"), &token)
        .await;
    assert_eq!(page2["data"][0]["name"], "Gamma Labs");
    assert!(page2["next_cursor"].is_null());

    let (_, labs) = app.get("/v1/tenants?q=LABS", &token).await;
    let names: Vec<&str> = labs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Alpha Labs", "Gamma Labs"]);
    let (s, b) = app.get("/v1/tenants?limit=500", &token).await;
    assert_eq!((s, code(&b)), (422, "invalid_limit"));
    let (s, b) = app.get("/v1/tenants?cursor=zzz", &token).await;
    assert_eq!((s, code(&b)), (422, "invalid_cursor"));
    let (s, b) = app.get("/v1/tenants?status=gone", &token).await;
    assert_eq!((s, code(&b)), (422, "invalid_status"));
}

#[tokio::test]
async fn a_tenant_is_renamed_suspended_reactivated_and_archived() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let id = app.create_tenant(&token, "Lifecycle").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = |s: &str| format!("/v1/tenants/{id}{s}");

    let (s, t) = app
        .send(
            Method::PATCH,
            &path(""),
            Some(&token),
            Some(json!({"name": "Renamed", "settings": {"max_seats": 5}})),
        )
        .await;
    assert_eq!(
        (s, t["name"].as_str(), &t["settings"]),
        (200, Some("Renamed"), &json!({"max_seats": 5}))
    );
    let (s, b) = app
        .send(
            Method::PATCH,
            &path(""),
            Some(&token),
            Some(json!({"settings": {"max_seats": 0}})),
        )
        .await;
    assert_eq!((s, code(&b)), (422, "validation_failed"));

    let (s, b) = app
        .post(&path("/suspend"), &token, json!({"reason": ""}))
        .await;
    assert_eq!((s, code(&b)), (422, "invalid_reason"));
    let (s, t) = app
        .post(&path("/suspend"), &token, json!({"reason": "unpaid"}))
        .await;
    assert_eq!(
        (s, t["status"].as_str(), t["suspended_reason"].as_str()),
        (200, Some("suspended"), Some("unpaid"))
    );
    let (s, b) = app
        .post(&path("/suspend"), &token, json!({"reason": "again"}))
        .await;
    assert_eq!((s, code(&b)), (409, "tenant_already_suspended"));
    let (_, listed) = app.get("/v1/tenants?status=suspended", &token).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let (s, t) = app.post(&path("/reactivate"), &token, json!({})).await;
    assert_eq!((s, t["status"].as_str()), (200, Some("active")));
    let (s, b) = app.post(&path("/reactivate"), &token, json!({})).await;
    assert_eq!((s, code(&b)), (409, "tenant_not_suspended"));

    let (s, _) = app
        .send(Method::DELETE, &path(""), Some(&token), None)
        .await;
    assert_eq!(s, 204);
    let (_, listed) = app.get("/v1/tenants", &token).await;
    assert!(
        listed["data"].as_array().unwrap().is_empty(),
        "archived tenants leave default lists"
    );
    let (_, listed) = app.get("/v1/tenants?status=archived", &token).await;
    assert_eq!(listed["data"][0]["id"].as_str(), Some(id.as_str()));
    let (s, b) = app
        .send(Method::DELETE, &path(""), Some(&token), None)
        .await;
    assert_eq!((s, code(&b)), (409, "tenant_archived"));
    let (s, b) = app
        .post(
            "/v1/tenants/00000000-0000-0000-0000-000000000009/suspend",
            &token,
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!((s, code(&b)), (404, "tenant_not_found"));
}

#[tokio::test]
async fn a_tenants_events_carry_sequence_position_and_who_did_what() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let (_, me) = app.get("/v1/me", &token).await;
    let id = app.create_tenant(&token, "Audited").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.post(
        &format!("/v1/tenants/{id}/suspend"),
        &token,
        json!({"reason": "audit"}),
    )
    .await;
    app.post(&format!("/v1/tenants/{id}/reactivate"), &token, json!({}))
        .await;

    let (s, page) = app.get(&format!("/v1/tenants/{id}/events"), &token).await;
    assert_eq!(s, 200);
    let events = page["data"].as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["TenantCreated", "TenantSuspended", "TenantReactivated"]
    );
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    let e = &events[1];
    assert_eq!(e["event_version"], 1);
    assert_eq!(e["aggregate_type"], "tenant");
    assert_eq!(e["data"]["reason"], "audit");
    assert_eq!(e["metadata"]["tenant_id"].as_str(), Some(id.as_str()));
    assert_eq!(
        e["metadata"]["actor"],
        json!({"type": "user", "id": me["user"]["id"]})
    );
    assert!(e["metadata"]["request_id"].is_string());
    assert!(e["metadata"]["occurred_at"].is_string() && e["recorded_at"].is_string());
    assert!(e["position"].as_i64().unwrap() > events[0]["position"].as_i64().unwrap());

    let (_, after) = app
        .get(&format!("/v1/tenants/{id}/events?after=1&limit=1"), &token)
        .await;
    assert_eq!(after["data"][0]["sequence"], 2);
    assert_eq!(after["next_cursor"], "2");
    let (s, b) = app
        .get(&format!("/v1/tenants/{id}/events?after=-1"), &token)
        .await;
    assert_eq!((s, code(&b)), (422, "invalid_after"));
}

#[tokio::test]
async fn admins_create_list_and_deactivate_users_whose_sessions_end_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let u = app
        .create_user(&admin, "Ada@Example.com", "password-123")
        .await;
    assert_eq!(
        (
            u["email"].as_str(),
            u["status"].as_str(),
            u["is_platform_admin"].as_bool()
        ),
        (Some("Ada@Example.com"), Some("active"), Some(false))
    );
    assert!(u.get("password").is_none() && u.get("password_hash").is_none());
    let id = u["id"].as_str().unwrap();

    let (s, b) = app
        .post(
            "/v1/admin/users",
            &admin,
            json!({"email": "ADA@example.COM", "name": "Twin", "password": "password-123"}),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "email_taken"));
    let (s, b) = app
        .post(
            "/v1/admin/users",
            &admin,
            json!({"email": "nope", "name": "", "password": "short"}),
        )
        .await;
    assert_eq!((s, code(&b)), (422, "validation_failed"));
    assert_eq!(b["error"]["details"]["fields"].as_array().unwrap().len(), 3);

    let (_, list) = app.get("/v1/admin/users?q=ada", &admin).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (s, got) = app.get(&format!("/v1/admin/users/{id}"), &admin).await;
    assert_eq!((s, got["email"].as_str()), (200, Some("Ada@Example.com")));

    let ada = app.token_for("ada@example.com", "password-123").await;
    let (s, d) = app
        .post(
            &format!("/v1/admin/users/{id}/deactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!((s, d["status"].as_str()), (200, Some("deactivated")));
    assert_eq!(
        app.get("/v1/me", &ada).await.0,
        401,
        "deactivation revokes sessions"
    );
    let (s, b) = app
        .post(
            &format!("/v1/admin/users/{id}/deactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "user_already_deactivated"));
    let (_, list) = app.get("/v1/admin/users?status=deactivated", &admin).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (s, r) = app
        .post(
            &format!("/v1/admin/users/{id}/reactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("active")));
    assert_eq!(
        app.login("ada@example.com", "password-123").await.status(),
        200
    );
    let (s, b) = app
        .get(
            "/v1/admin/users/00000000-0000-0000-0000-000000000001",
            &admin,
        )
        .await;
    assert_eq!((s, code(&b)), (404, "user_not_found"));
}

#[tokio::test]
async fn simultaneous_claims_of_one_email_or_one_slug_have_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    for round in 0..4 {
        let email = format!("race{round}@x.io");
        let body = json!({"email": email, "name": "Racer", "password": "password-123"});
        let (a, b) = tokio::join!(
            app.post("/v1/admin/users", &token, body.clone()),
            app.post("/v1/admin/users", &token, body.clone())
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}");
        let loser = if a.0 == 409 { a.1 } else { b.1 };
        assert_eq!(code(&loser), "email_taken");

        let body = json!({"name": "Race", "slug": format!("race-{round}")});
        let (a, b) = tokio::join!(
            app.post("/v1/tenants", &token, body.clone()),
            app.post("/v1/tenants", &token, body.clone())
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [201, 409], "round {round}");
        let loser = if a.0 == 409 { a.1 } else { b.1 };
        assert_eq!(code(&loser), "slug_taken");
    }
}

#[tokio::test]
async fn concurrent_commands_on_one_tenant_are_retried_not_lost() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let id = app.create_tenant(&token, "Busy").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/tenants/{id}");
    let mut futures = Vec::new();
    for i in 0..6 {
        let body = json!({"settings": {format!("k{i}"): i}});
        futures.push(app.send(Method::PATCH, &path, Some(&token), Some(body)));
    }
    let results = futures_util::future::join_all(futures).await;
    for (s, b) in &results {
        assert!(
            *s == 200 || (*s == 409 && code(b) == "concurrent_update"),
            "{s} {b}"
        );
    }
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let (_, t) = app.get(&path, &token).await;
    assert_eq!(
        t["settings"].as_object().unwrap().len(),
        ok,
        "every acknowledged update is kept"
    );
}

#[tokio::test]
async fn framework_errors_use_the_json_error_body() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let (s, b) = app.send(Method::GET, "/v1/nowhere", None, None).await;
    assert_eq!((s, code(&b)), (404, "not_found"));
    let (s, b) = app
        .send(Method::PUT, "/v1/tenants", Some(&token), None)
        .await;
    assert_eq!((s, code(&b)), (405, "method_not_allowed"));

    let r = app
        .client
        .post(app.url("/v1/tenants"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(code(&b), "malformed_json");

    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let r = app
        .client
        .post(app.url("/v1/tenants"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let b: Value = r.json().await.unwrap();
    assert_eq!(code(&b), "payload_too_large");

    let (s, b) = app
        .post("/v1/tenants", &token, json!({"title": "no name"}))
        .await;
    assert_eq!((s, code(&b)), (422, "validation_failed"));
    let text = b.to_string();
    for leak in ["sqlx", "tenantry_", "panicked", "SELECT"] {
        assert!(!text.contains(leak));
    }
}

#[tokio::test]
async fn a_sane_request_id_is_echoed_and_an_insane_one_replaced() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-abc.123");
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response_and_refuses_another_body() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let send = |body: Value| {
        app.client
            .post(app.url("/v1/tenants"))
            .bearer_auth(&token)
            .header("idempotency-key", "key-1")
            .json(&body)
            .send()
    };
    let first = send(json!({"name": "Once"})).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = send(json!({"name": "Once"})).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    let other = send(json!({"name": "Twice"})).await.unwrap();
    assert_eq!(other.status(), 422);
    let other: Value = other.json().await.unwrap();
    assert_eq!(code(&other), "idempotency_key_reused");
    let (_, list) = app.get("/v1/tenants", &token).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "the command ran once"
    );
}

#[tokio::test]
async fn a_restart_does_not_duplicate_the_bootstrap_admin() {
    let app = TestApp::spawn().await;
    let db = app.stop().await;
    let app = TestApp::spawn_on(db, &[]).await;
    let token = app.admin_token().await;
    let (_, list) = app
        .get(&format!("/v1/admin/users?q={ADMIN_EMAIL}"), &token)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_user_changes_their_own_name_and_password() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.create_user(&admin, "self@x.io", "password-123").await;
    let token = app.token_for("self@x.io", "password-123").await;
    let (s, u) = app
        .send(
            Method::PATCH,
            "/v1/me",
            Some(&token),
            Some(json!({"name": "Self Made"})),
        )
        .await;
    assert_eq!((s, u["name"].as_str()), (200, Some("Self Made")));
    let (s, b) = app
        .post(
            "/v1/me/password",
            &token,
            json!({"current_password": "nope-nope", "new_password": "password-456"}),
        )
        .await;
    assert_eq!((s, code(&b)), (422, "wrong_password"));
    let (s, _) = app
        .post(
            "/v1/me/password",
            &token,
            json!({"current_password": "password-123", "new_password": "password-456"}),
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(app.login("self@x.io", "password-123").await.status(), 401);
    assert_eq!(app.login("self@x.io", "password-456").await.status(), 200);
}

#[tokio::test]
async fn granting_and_revoking_platform_admin_takes_effect_on_the_next_request() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app.create_user(&admin, "ops@x.io", "password-123").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ops = app.token_for("ops@x.io", "password-123").await;
    assert_eq!(app.get("/v1/tenants", &ops).await.0, 403);

    let (s, u) = app
        .post(
            &format!("/v1/admin/users/{id}/grant-platform-admin"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!((s, u["is_platform_admin"].as_bool()), (200, Some(true)));
    assert_eq!(
        app.get("/v1/tenants", &ops).await.0,
        200,
        "the same token now carries admin rights"
    );
    let (s, b) = app
        .post(
            &format!("/v1/admin/users/{id}/grant-platform-admin"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "already_platform_admin"));

    let (_, me) = app.get("/v1/me", &ops).await;
    let own = me["user"]["id"].as_str().unwrap();
    let (s, b) = app
        .post(
            &format!("/v1/admin/users/{own}/revoke-platform-admin"),
            &ops,
            json!({}),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "cannot_revoke_own_admin"));
    // Nor deactivate their own account (it would lock them out).
    let (s, b) = app
        .post(
            &format!("/v1/admin/users/{own}/deactivate"),
            &ops,
            json!({}),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "cannot_deactivate_self"));
    let (s, _) = app.get("/v1/me", &ops).await;
    assert_eq!(s, 200, "the session lives on");

    let (s, u) = app
        .post(
            &format!("/v1/admin/users/{id}/revoke-platform-admin"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!((s, u["is_platform_admin"].as_bool()), (200, Some(false)));
    assert_eq!(app.get("/v1/tenants", &ops).await.0, 403);
    let grants: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        grants,
        [
            "UserRegistered",
            "PlatformAdminGranted",
            "PlatformAdminRevoked"
        ]
    );
}

#[tokio::test]
async fn metrics_answer_only_to_their_token_and_describe_a_workload() {
    use tenantry_tests::METRICS_TOKEN;
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    // A short workload: a tenant, a failed and a good sign-in, a read.
    let (s, tenant) = app
        .send(
            Method::POST,
            "/v1/tenants",
            Some(&admin),
            Some(json!({ "name": "Metered" })),
        )
        .await;
    assert_eq!(s, 201);
    let tid = tenant["id"].as_str().unwrap();
    let r = app.login(ADMIN_EMAIL, "not the password").await;
    assert_eq!(r.status(), 401);
    let (s, _) = app.get(&format!("/v1/tenants/{tid}/members"), &admin).await;
    assert_eq!(s, 200);

    let (s, b) = app.send(Method::GET, "/metrics", None, None).await;
    assert_eq!((s, code(&b)), (401, "missing_token"));
    let (s, b) = app.get("/metrics", &admin).await;
    assert_eq!(
        (s, code(&b)),
        (401, "invalid_token"),
        "a session is not the metrics token"
    );
    let (s, b) = app
        .get("/metrics", "metrics-token-but-not-the-right-one-0000")
        .await;
    assert_eq!((s, code(&b)), (401, "invalid_token"));

    let r = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for expected in [
        r#"http_requests_total{route="/v1/tenants",method="POST",status="2xx"}"#,
        r#"http_requests_total{route="/v1/auth/login",method="POST",status="4xx"}"#,
        r#"http_request_duration_seconds_bucket{route="/v1/tenants/{tid}/members",method="GET",status="2xx",le="0.1"}"#,
        r#"tenantry_commands_total{aggregate="tenant",outcome="applied"}"#,
        r#"tenantry_command_conflicts_total{aggregate="tenant"}"#,
        r#"tenantry_sign_ins_total{outcome="wrong_password"}"#,
        r#"tenantry_projection_lag_events{projection="tenants"}"#,
        r#"tenantry_projection_lag_seconds{projection="access"}"#,
        r#"tenantry_projection_leader{projection="tenants"}"#,
        "tenantry_email_outbox_pending",
        "tenantry_email_outbox_failed",
        r#"tenantry_emails_total{outcome="failed"}"#,
        "tenantry_db_pool_connections",
        "tenantry_db_pool_idle",
    ] {
        assert!(
            text.contains(expected),
            "/metrics lacks {expected}:\n{text}"
        );
    }
    // This server leads its projections (it is alone on its database) and
    // has applied everything the workload wrote.
    let line = text
        .lines()
        .find(|l| l.starts_with(r#"tenantry_projection_lag_events{projection="tenants"}"#))
        .unwrap();
    assert!(line.ends_with(" 0"), "{line}");
    let leader = text
        .lines()
        .find(|l| l.starts_with(r#"tenantry_projection_leader{projection="tenants"}"#))
        .unwrap();
    assert!(leader.ends_with(" 1"), "{leader}");
}

#[tokio::test]
async fn readiness_fails_while_a_projection_falls_behind_and_recovers() {
    use sqlx::Connection;
    let app = TestApp::spawn_with(&[("TENANTRY_READY_MAX_PROJECTION_LAG", "1s")]).await;
    let admin = app.admin_token().await;
    let (s, _) = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(s, 200);
    // Block writes to the tenants read model (reads go on): its projection
    // cannot apply a batch. A table lock takes no transaction id, so the
    // log's read horizon does not hide the new event from the lag measure.
    let mut blocker = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    let mut tx = blocker.begin().await.unwrap();
    sqlx::query("LOCK TABLE tenants_view IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    // A tenant the projection now cannot show.
    let create = {
        let app_url = app.url("/v1/tenants");
        let client = app.client.clone();
        let admin = admin.clone();
        tokio::spawn(async move {
            client
                .post(app_url)
                .bearer_auth(admin)
                .json(&json!({ "name": "Behind" }))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    let not_ready = wait_for_readiness(&app, 503, Duration::from_secs(15)).await;
    assert_eq!(code(&not_ready), "not_ready");
    assert_eq!(not_ready["error"]["details"]["projection"], "tenants");
    assert!(
        not_ready["error"]["details"]["lag_events"]
            .as_u64()
            .unwrap()
            >= 1
    );
    tx.rollback().await.unwrap();
    wait_for_readiness(&app, 200, Duration::from_secs(15)).await;
    create.await.unwrap().unwrap();
    let (s, list) = app.get("/v1/tenants?q=Behind", &admin).await;
    assert_eq!((s, list["data"].as_array().map(Vec::len)), (200, Some(1)));
}

/// Poll `/readyz` until it answers `status` (or fail after `within`).
async fn wait_for_readiness(app: &TestApp, status: u16, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (s, body) = app.send(Method::GET, "/readyz", None, None).await;
        if s == status {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz still answers {s}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
