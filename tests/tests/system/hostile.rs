//! Hostile input over every route of the router's own table: path ids that
//! do not decode or are absurdly long, control characters and oversized
//! strings in every body field and query parameter. Whatever the caller,
//! no answer is a 5xx, and every answer is the one error body with a
//! request id. Nothing of it reaches the event log.

use reqwest::Method;
use serde_json::{json, Map, Value};
use tenantry_tests::TestApp;

/// Path parameter values that must name nothing, as sent on the wire.
fn hostile_segments() -> Vec<String> {
    vec![
        "%FF%FE".into(),    // invalid UTF-8
        "%C0%AF".into(),    // overlong UTF-8 encoding of '/'
        "%00".into(),       // NUL
        "a%01b%1B".into(),  // control characters
        "%E2%80%AE".into(), // right-to-left override
        "9".repeat(4000),   // an overlong id
        "0190d3a1-0000-7000-8000-00000000000%00".into(),
    ]
}

/// String values that must be refused (or harmlessly rejected) anywhere.
fn hostile_strings() -> Vec<String> {
    vec![
        "\u{0}".into(),
        "a\u{1}b".into(),
        "\u{1b}[31mred".into(),
        "a\rb".into(),
        "a\u{7f}b".into(),
        "a\u{85}b".into(),
        "x".repeat(20_000),
        "é".repeat(40_000), // the whole body over 1 MiB
    ]
}

/// Every field name any request body of the API reads.
const BODY_FIELDS: &[&str] = &[
    "api_key",
    "current_password",
    "email",
    "label",
    "name",
    "new_password",
    "owner_user_id",
    "password",
    "provider",
    "reason",
    "refresh_token",
    "role",
    "slug",
    "user_id",
    "expires_at",
];

/// Every query parameter any route reads.
const QUERY_PARAMS: &[&str] = &[
    "after",
    "cursor",
    "include",
    "limit",
    "q",
    "role",
    "status",
    "tenant_id",
];

fn hostile_body(value: &str) -> Value {
    let mut body = Map::new();
    for field in BODY_FIELDS {
        body.insert((*field).into(), json!(value));
    }
    body.insert("permissions".into(), json!([value, "tenant.read"]));
    body.insert("settings".into(), json!({ value: value, "ok": value }));
    Value::Object(body)
}

/// The start of `value` a little over the 16 KiB string limit (a whole
/// value would make a URL longer than HTTP libraries build).
fn just_over_the_limit(value: &str) -> &str {
    let mut end = value.len().min(17_000);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

fn percent_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The route's path with each `{param}` replaced: `{tid}` by `tid` and
/// every other parameter by `other`.
fn fill(path: &str, tid: &str, other: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        let name = &rest[start + 1..end - 1];
        out.push_str(if name == "tid" { tid } else { other });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

struct Walk<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    checked: usize,
}

impl Walk<'_> {
    async fn call(
        &mut self,
        method: &Method,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) {
        let mut req = self.client.request(method.clone(), self.app.url(url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let shown: String = url.chars().take(120).collect();
        let r = match req.send().await {
            Ok(r) => r,
            Err(e) => panic!(
                "{method} {shown}: transport error (connect {}, request {}, builder {})",
                e.is_connect(),
                e.is_request(),
                e.is_builder()
            ),
        };
        let status = r.status().as_u16();
        assert!(
            r.headers().contains_key("x-request-id"),
            "{method} {shown}: no x-request-id"
        );
        let text = r.text().await.unwrap_or_default();
        assert!(status < 500, "{method} {shown}: {status} {text}");
        if status >= 400 {
            let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
                panic!("{method} {shown}: {status} without a JSON body: {text}")
            });
            assert!(
                body["error"]["code"].is_string() && body["error"]["message"].is_string(),
                "{method} {shown}: {status} outside the error format: {text}"
            );
        }
        self.checked += 1;
    }
}

#[tokio::test]
async fn every_route_answers_hostile_input_without_a_server_error() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Acme").await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let mut routes = tenantry_api::routes::table();
    // Ending the admin's own session would hide every later route behind 401.
    routes.sort_by_key(|(_, path, _)| *path == "/v1/auth/logout");
    let mut walk = Walk {
        app: &app,
        client: reqwest::Client::new(),
        checked: 0,
    };
    let unknown_id = uuid::Uuid::now_v7().to_string();
    for (method, path, _) in &routes {
        let has_params = path.contains('{');
        for caller in [Some(admin.as_str()), None] {
            for segment in hostile_segments() {
                if !has_params {
                    break;
                }
                // The hostile value in every parameter, then only in the
                // parameters after a real tenant id.
                walk.call(method, &fill(path, &segment, &segment), caller, None)
                    .await;
                if path.matches('{').count() > 1 {
                    walk.call(method, &fill(path, &tid, &segment), caller, None)
                        .await;
                }
            }
            let target = fill(path, &tid, &unknown_id);
            for value in hostile_strings() {
                if [Method::POST, Method::PUT, Method::PATCH].contains(method) {
                    walk.call(method, &target, caller, Some(&hostile_body(&value)))
                        .await;
                }
                if *method == Method::GET {
                    // An oversized value goes into one parameter at a time
                    // (just over the limit): a URL has its own bounds.
                    let query: Vec<String> = if value.len() > 1000 {
                        vec![format!("q={}", percent_encode(just_over_the_limit(&value)))]
                    } else {
                        QUERY_PARAMS
                            .iter()
                            .map(|p| format!("{p}={}", percent_encode(&value)))
                            .collect()
                    };
                    walk.call(
                        method,
                        &format!("{target}?{}", query.join("&")),
                        caller,
                        None,
                    )
                    .await;
                    // A hostile parameter name too.
                    let name = percent_encode(just_over_the_limit(&value));
                    walk.call(method, &format!("{target}?{name}=1"), caller, None)
                        .await;
                }
            }
        }
    }
    assert!(walk.checked > 1000, "walked {} requests", walk.checked);

    // None of it was recorded: the refused input never reached an event.
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let largest: i32 =
        sqlx::query_scalar("SELECT coalesce(max(octet_length(payload::text)), 0) FROM events")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(largest < 2_000, "an event of {largest} bytes was written");
    let written: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM events ORDER BY position OFFSET $1")
            .bind(events_before)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    // The logout at the end is the one change hostile input may cause
    // (and the tenant reactivation that has nothing to reactivate refuses).
    assert!(
        written.iter().all(|t| t == "SessionRevoked"),
        "hostile input wrote events: {written:?}"
    );
    assert!(events_after - events_before <= 1);
}
