//! Agents over HTTP: their lifecycle, what their settings accept, and the
//! plan's `max_agents`, held under concurrent creates.

use serde_json::{json, Value};
use tenantry_tests::{code, TestApp};

async fn tenant_with_owner(app: &TestApp, admin: &str, name: &str) -> (String, String) {
    let tenant = app.create_tenant(admin, name).await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let email = format!("owner@{}.test", name.to_lowercase());
    let (_, owner) = app.member(admin, &tid, &email, "owner").await;
    (tid, owner)
}

/// Put the tenant on a plan allowing `max_agents`.
async fn limit_agents(app: &TestApp, admin: &str, tid: &str, max_agents: u32) {
    let key = format!("agents-{max_agents}");
    let (s, body) = app
        .post(
            "/v1/admin/plans",
            admin,
            json!({"key": key, "name": "Limited", "price_minor": 0, "currency": "eur",
                   "interval": "month", "entitlements": {"max_agents": max_agents}}),
        )
        .await;
    assert!(s == 201 || code(&body) == "plan_key_taken", "{body}");
    let (s, body) = app
        .put(
            &format!("/v1/tenants/{tid}/billing/plan"),
            admin,
            json!({ "plan": key }),
        )
        .await;
    assert_eq!(s, 200, "{body}");
}

fn agent(name: &str) -> Value {
    json!({
        "name": name,
        "description": "answers WhatsApp messages",
        "monthly_budget_minor": 25_00,
        "allow": ["openai/gpt-4o-mini", "anthropic"]
    })
}

#[tokio::test]
async fn an_agent_is_created_changed_paused_resumed_and_archived_for_good() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, owner) = tenant_with_owner(&app, &admin, "Acme").await;
    let agents = format!("/v1/tenants/{tid}/agents");

    let (s, created) = app.post(&agents, &owner, agent("Receptionist")).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["status"], "active");
    assert_eq!(created["allow"], json!(["openai/gpt-4o-mini", "anthropic"]));
    let id = created["id"].as_str().unwrap();
    let one = format!("{agents}/{id}");

    let (s, got) = app.get(&one, &owner).await;
    assert_eq!((s, &got["name"]), (200, &json!("Receptionist")));
    let (s, changed) = app
        .put(
            &one,
            &owner,
            json!({"name": "Front desk", "monthly_budget_minor": null}),
        )
        .await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!(changed["name"], "Front desk");
    assert_eq!(changed["monthly_budget_minor"], Value::Null);
    assert_eq!(changed["allow"], json!([]));

    let (s, paused) = app.post(&format!("{one}/pause"), &owner, json!({})).await;
    assert_eq!((s, &paused["status"]), (200, &json!("paused")));
    let (s, resumed) = app.post(&format!("{one}/resume"), &owner, json!({})).await;
    assert_eq!((s, &resumed["status"]), (200, &json!("active")));
    let (s, archived) = app.post(&format!("{one}/archive"), &owner, json!({})).await;
    assert_eq!((s, &archived["status"]), (200, &json!("archived")));
    // Archived is final.
    for path in [format!("{one}/pause"), format!("{one}/resume")] {
        let (s, body) = app.post(&path, &owner, json!({})).await;
        assert_eq!((s, code(&body)), (409, "agent_archived"));
    }
    let (s, body) = app.put(&one, &owner, agent("Again")).await;
    assert_eq!((s, code(&body)), (409, "agent_archived"));
    // Lists leave archived agents out unless asked.
    let (_, list) = app.get(&agents, &owner).await;
    assert_eq!(list["data"], json!([]));
    let (_, list) = app
        .get(&format!("{agents}?include_archived=true"), &owner)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // Every change is an event of the agent, in the tenant's stream.
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'agent' AND tenant_id = $1::uuid \
          ORDER BY tenant_sequence",
    )
    .bind(&tid)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        types,
        [
            "AgentCreated",
            "AgentUpdated",
            "AgentPaused",
            "AgentResumed",
            "AgentArchived"
        ]
    );

    // Another tenant's owner does not find it, even on their own path.
    let (other, other_owner) = tenant_with_owner(&app, &admin, "Globex").await;
    let (s, body) = app
        .get(&format!("/v1/tenants/{other}/agents/{id}"), &other_owner)
        .await;
    assert_eq!((s, code(&body)), (404, "agent_not_found"));
    let (s, body) = app
        .post(
            &format!("/v1/tenants/{other}/agents/{id}/pause"),
            &other_owner,
            json!({}),
        )
        .await;
    assert_eq!((s, code(&body)), (404, "agent_not_found"));
}

#[tokio::test]
async fn bad_settings_are_named_field_by_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, owner) = tenant_with_owner(&app, &admin, "Acme").await;
    let (s, body) = app
        .post(
            &format!("/v1/tenants/{tid}/agents"),
            &owner,
            json!({
                "name": "",
                "monthly_budget_minor": -1,
                "allow": ["openai", "nobody", "openai/gpt 4", "anthropic/claude-3-5-sonnet"]
            }),
        )
        .await;
    assert_eq!((s, code(&body)), (422, "validation_failed"), "{body}");
    let fields: Vec<(String, String)> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = |field: &str, code: &str| (field.to_string(), code.to_string());
    assert!(
        fields.contains(&expect("name", "invalid_length")),
        "{fields:?}"
    );
    assert!(fields.contains(&expect("monthly_budget_minor", "invalid_budget")));
    assert!(fields.contains(&expect("allow[1]", "unknown_provider")));
    assert!(fields.contains(&expect("allow[2]", "invalid_model")));
    assert_eq!(fields.len(), 4, "{fields:?}");
    let (_, list) = app.get(&format!("/v1/tenants/{tid}/agents"), &owner).await;
    assert_eq!(list["data"], json!([]), "nothing half-written");
}

#[tokio::test]
async fn the_plan_limits_agents_that_are_not_archived() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, owner) = tenant_with_owner(&app, &admin, "Acme").await;
    limit_agents(&app, &admin, &tid, 2).await;
    let agents = format!("/v1/tenants/{tid}/agents");
    let mut ids = Vec::new();
    for name in ["One", "Two"] {
        let (s, body) = app.post(&agents, &owner, agent(name)).await;
        assert_eq!(s, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let (s, body) = app.post(&agents, &owner, agent("Three")).await;
    assert_eq!((s, code(&body)), (409, "agent_quota_reached"));
    assert_eq!(body["error"]["details"]["max_agents"], 2);
    // A paused agent still counts; an archived one does not.
    let (s, _) = app
        .post(&format!("{agents}/{}/pause", ids[0]), &owner, json!({}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = app.post(&agents, &owner, agent("Three")).await;
    assert_eq!(s, 409);
    let (s, _) = app
        .post(&format!("{agents}/{}/archive", ids[0]), &owner, json!({}))
        .await;
    assert_eq!(s, 200);
    let (s, body) = app.post(&agents, &owner, agent("Three")).await;
    assert_eq!(s, 201, "{body}");
}

#[tokio::test]
async fn concurrent_creates_never_pass_the_plans_limit() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, owner) = tenant_with_owner(&app, &admin, "Acme").await;
    limit_agents(&app, &admin, &tid, 3).await;
    let agents = format!("/v1/tenants/{tid}/agents");
    let tries = (0..12).map(|i| {
        let (app, agents, owner) = (&app, &agents, &owner);
        async move { app.post(agents, owner, agent(&format!("Agent {i}"))).await }
    });
    let answers = futures_util::future::join_all(tries).await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let refused = answers
        .iter()
        .filter(|(s, b)| *s == 409 && code(b) == "agent_quota_reached")
        .count();
    assert_eq!((created, refused), (3, 9), "{answers:?}");
    let (_, list) = app.get(&agents, &owner).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
    let slots: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unique_claims WHERE scope = 'agent_slot' AND starts_with(value, $1)",
    )
    .bind(format!("{tid}:"))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(slots, 3);
}
