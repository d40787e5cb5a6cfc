//! Access through HTTP: the roster's rules, custom roles, API keys,
//! impersonation, suspended and archived tenants.

use serde_json::{json, Value};
use tenantry_tests::{code, TestApp};

/// A tenant with an owner; returns (tenant id, owner id, owner token).
async fn tenant_with_owner(app: &TestApp, admin: &str, name: &str) -> (String, String, String) {
    let tenant = app.create_tenant(admin, name).await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let email = format!("owner@{}.io", name.to_lowercase());
    let (owner, token) = app.member(admin, &tid, &email, "owner").await;
    (tid, owner, token)
}

async fn roles_of(app: &TestApp, token: &str, tid: &str) -> Vec<(String, String)> {
    let (s, list) = app.get(&format!("/v1/tenants/{tid}/members"), token).await;
    assert_eq!(s, 200, "{list}");
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn creating_a_tenant_with_an_owner_seats_them_and_me_lists_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let user = app.create_user(&admin, "ada@acme.io", "password-123").await;
    let (s, tenant) = app
        .post(
            "/v1/tenants",
            &admin,
            json!({ "name": "Acme", "owner_user_id": user["id"] }),
        )
        .await;
    assert_eq!(s, 201, "{tenant}");
    let token = app.token_for("ada@acme.io", "password-123").await;
    let (s, me) = app.get("/v1/me", &token).await;
    assert_eq!(s, 200);
    assert_eq!(me["tenants"][0]["tenant_id"], tenant["id"]);
    assert_eq!(me["tenants"][0]["role"], "owner");
    let permissions = me["tenants"][0]["permissions"].as_array().unwrap();
    assert_eq!(permissions.len(), 20, "owner: everything but llm_keys.use");
    assert!(!permissions.contains(&json!("llm_keys.use")));
    assert!(me["impersonated_by"].is_null());

    // An unknown owner is a field error, and nothing is created.
    let (s, body) = app
        .post(
            "/v1/tenants",
            &admin,
            json!({ "name": "Ghost", "owner_user_id": uuid::Uuid::now_v7() }),
        )
        .await;
    assert_eq!((s, code(&body)), (422, "validation_failed"));
    assert_eq!(
        body["error"]["details"]["fields"][0]["code"],
        "user_not_found"
    );
}

#[tokio::test]
async fn the_roster_keeps_an_owner_and_refuses_escalation() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, owner, owner_token) = tenant_with_owner(&app, &admin, "Acme").await;
    let (adm, admin_token) = app.member(&admin, &tid, "admin@acme.io", "admin").await;
    let (viewer, viewer_token) = app.member(&admin, &tid, "viewer@acme.io", "viewer").await;
    let member = |id: &str| format!("/v1/tenants/{tid}/members/{id}");

    // The last owner can be neither demoted, removed nor leave.
    let (s, b) = app
        .put(&member(&owner), &owner_token, json!({ "role": "admin" }))
        .await;
    assert_eq!((s, code(&b)), (409, "last_owner"));
    let (s, b) = app.delete(&member(&owner), &owner_token).await;
    assert_eq!((s, code(&b)), (409, "last_owner"));
    let (s, b) = app.delete(&member(&owner), &admin).await;
    assert_eq!((s, code(&b)), (409, "last_owner"));

    // Only owners grant the owner role; admins manage everyone else.
    let (s, b) = app
        .put(&member(&viewer), &admin_token, json!({ "role": "owner" }))
        .await;
    assert_eq!((s, code(&b)), (403, "owner_required"));
    let (s, b) = app
        .put(
            &member(&viewer),
            &admin_token,
            json!({ "role": "operator" }),
        )
        .await;
    assert_eq!((s, b["role"].as_str()), (200, Some("operator")));

    // A viewer cannot manage members at all: 403 naming the permission.
    let (s, b) = app
        .put(&member(&adm), &viewer_token, json!({ "role": "viewer" }))
        .await;
    assert_eq!((s, code(&b)), (403, "missing_permission"));
    assert_eq!(b["error"]["details"]["permission"], "members.manage");

    // A custom role with members.manage cannot hand out more than it holds.
    let (s, b) = app
        .post(
            &format!("/v1/tenants/{tid}/roles"),
            &owner_token,
            json!({ "name": "people-ops", "permissions": ["members.read", "members.manage"] }),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (_, ops_token) = app.member(&admin, &tid, "ops@acme.io", "people-ops").await;
    let (s, b) = app
        .put(&member(&adm), &ops_token, json!({ "role": "viewer" }))
        .await;
    assert_eq!((s, code(&b)), (403, "role_escalation"));
    assert!(b["error"]["details"]["missing_permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("tenant.read")));

    // Unknown and malformed role names are 422.
    for role in ["ghost", "Not A Role"] {
        let (s, _) = app
            .put(&member(&viewer), &owner_token, json!({ "role": role }))
            .await;
        assert_eq!(s, 422, "{role}");
    }

    // A viewer may leave; then they are gone from the list.
    let (s, _) = app.delete(&member(&viewer), &viewer_token).await;
    assert_eq!(s, 204);
    let roles = roles_of(&app, &owner_token, &tid).await;
    assert!(!roles.iter().any(|(e, _)| e == "viewer@acme.io"));
    let left: String = sqlx::query_scalar(
        "SELECT payload->>'reason' FROM events WHERE event_type = 'MemberRemoved'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(left, "left");
}

#[tokio::test]
async fn the_seat_limit_is_enforced_and_only_the_platform_sets_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, _, owner_token) = tenant_with_owner(&app, &admin, "Acme").await;
    let (s, b) = app
        .patch(
            &format!("/v1/tenants/{tid}"),
            &owner_token,
            json!({ "settings": { "max_seats": 100 } }),
        )
        .await;
    assert_eq!((s, code(&b)), (403, "platform_admin_required"));
    let (s, _) = app
        .patch(
            &format!("/v1/tenants/{tid}"),
            &admin,
            json!({ "settings": { "max_seats": 2 } }),
        )
        .await;
    assert_eq!(s, 200);
    app.member(&admin, &tid, "second@acme.io", "viewer").await;
    let third = app
        .create_user(&admin, "third@acme.io", "password-123")
        .await;
    let (s, b) = app
        .post(
            &format!("/v1/tenants/{tid}/members"),
            &admin,
            json!({ "user_id": third["id"], "role": "viewer" }),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "seat_limit_reached"));
    assert_eq!(b["error"]["details"]["max_seats"], 2);
}

#[tokio::test]
async fn concurrent_demotions_of_the_last_two_owners_leave_exactly_one() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for round in 0..3 {
        let name = format!("Race{round}");
        let (tid, first, _) = tenant_with_owner(&app, &admin, &name).await;
        let second = app
            .create_user(&admin, &format!("second@race{round}.io"), "password-123")
            .await;
        let second = second["id"].as_str().unwrap().to_string();
        app.add_member(&admin, &tid, &second, "owner").await;
        let demote = |id: String| {
            let path = format!("/v1/tenants/{tid}/members/{id}");
            let admin = admin.clone();
            let app = &app;
            async move { app.put(&path, &admin, json!({ "role": "admin" })).await }
        };
        let (a, b) = tokio::join!(demote(first), demote(second));
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
        let loser = if a.0 == 409 { &a.1 } else { &b.1 };
        assert_eq!(code(loser), "last_owner");
        let owners = roles_of(&app, &admin, &tid)
            .await
            .into_iter()
            .filter(|(_, r)| r == "owner")
            .count();
        assert_eq!(owners, 1);
    }
}

#[tokio::test]
async fn custom_roles_are_defined_granted_and_protected_while_in_use() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, _, owner) = tenant_with_owner(&app, &admin, "Acme").await;
    let roles = format!("/v1/tenants/{tid}/roles");
    let (s, b) = app
        .post(
            &roles,
            &owner,
            json!({ "name": "billing-clerk", "permissions": ["tenant.read", "billing.read", "bogus.perm"] }),
        )
        .await;
    assert_eq!((s, code(&b)), (422, "validation_failed"));
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("bogus.perm"));
    let (s, b) = app
        .post(
            &roles,
            &owner,
            json!({ "name": "runtime", "permissions": ["llm_keys.use"] }),
        )
        .await;
    assert_eq!((s, code(&b)), (422, "permission_not_assignable"));
    let (s, b) = app
        .post(
            &roles,
            &owner,
            json!({ "name": "billing-clerk", "permissions": ["tenant.read", "billing.read"] }),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .post(
            &roles,
            &owner,
            json!({ "name": "viewer", "permissions": [] }),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "role_exists"));
    let (s, b) = app
        .put(
            &format!("{roles}/admin"),
            &owner,
            json!({ "permissions": [] }),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "builtin_role_immutable"));
    let (s, b) = app.delete(&format!("{roles}/owner"), &owner).await;
    assert_eq!((s, code(&b)), (409, "builtin_role_immutable"));

    let (_, clerk) = app
        .member(&admin, &tid, "clerk@acme.io", "billing-clerk")
        .await;
    let (s, _) = app.get(&format!("/v1/tenants/{tid}"), &clerk).await;
    assert_eq!(s, 200);
    let (s, b) = app.get(&format!("/v1/tenants/{tid}/members"), &clerk).await;
    assert_eq!((s, code(&b)), (403, "missing_permission"));
    // Widening the role widens its holders at once.
    let (s, b) = app
        .put(
            &format!("{roles}/billing-clerk"),
            &owner,
            json!({ "permissions": ["tenant.read", "billing.read", "members.read"] }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = app.get(&format!("/v1/tenants/{tid}/members"), &clerk).await;
    assert_eq!(s, 200);
    let (s, me) = app.get("/v1/me", &clerk).await;
    assert_eq!(s, 200);
    assert_eq!(
        me["tenants"][0]["permissions"],
        json!(["tenant.read", "members.read", "billing.read"])
    );

    let (s, b) = app.delete(&format!("{roles}/billing-clerk"), &owner).await;
    assert_eq!((s, code(&b)), (409, "role_in_use"));
    let (s, list) = app.get(&roles, &clerk).await;
    assert_eq!(s, 200);
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "owner",
            "admin",
            "operator",
            "viewer",
            "auditor",
            "billing-clerk"
        ]
    );
    let (s, b) = app.delete(&format!("{roles}/ghost-role"), &owner).await;
    assert_eq!((s, code(&b)), (404, "role_not_found"));
}

#[tokio::test]
async fn api_keys_work_on_their_tenant_only_and_stop_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, _, owner) = tenant_with_owner(&app, &admin, "Acme").await;
    let (other, _, _) = tenant_with_owner(&app, &admin, "Other").await;
    let keys = format!("/v1/tenants/{tid}/api-keys");
    let (s, created) = app
        .post(
            &keys,
            &owner,
            json!({ "name": "agent runtime", "permissions": ["tenant.read", "tenant.manage", "llm_keys.use"] }),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("tnt_") && key.len() >= 4 + 43, "{key}");
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));
    let key_id = created["id"].as_str().unwrap().to_string();

    // The list never shows the secret; the table holds only its hash.
    let (s, list) = app.get(&keys, &owner).await;
    assert_eq!(s, 200);
    assert!(!list.to_string().contains(&key));
    assert_eq!(list["data"][0]["created_by"]["type"], "user");
    let dump: String =
        sqlx::query_scalar("SELECT string_agg(t::text, ' ') FROM (SELECT * FROM api_keys) t")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!dump.contains(&key));

    // It works on its tenant, is a stranger elsewhere, and is no person.
    let (s, _) = app.get(&format!("/v1/tenants/{tid}"), &key).await;
    assert_eq!(s, 200);
    let (s, b) = app.get(&format!("/v1/tenants/{other}"), &key).await;
    assert_eq!((s, code(&b)), (404, "tenant_not_found"));
    let (s, b) = app.get("/v1/me", &key).await;
    assert_eq!((s, code(&b)), (403, "user_token_required"));
    let (s, b) = app.get(&format!("/v1/tenants/{tid}/members"), &key).await;
    assert_eq!((s, code(&b)), (403, "missing_permission"));

    // Events it writes name it as the actor; its use is recorded.
    let (s, _) = app
        .patch(
            &format!("/v1/tenants/{tid}"),
            &key,
            json!({ "name": "Acme Renamed" }),
        )
        .await;
    assert_eq!(s, 200);
    let actor: Value = sqlx::query_scalar(
        "SELECT metadata->'actor' FROM events WHERE event_type = 'TenantRenamed'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(actor, json!({ "type": "api_key", "id": key_id }));
    let (_, list) = app.get(&keys, &owner).await;
    assert!(list["data"][0]["last_used_at"].is_string());

    // A key cannot carry what its creator lacks.
    let (_, ops) = app.member(&admin, &tid, "ops@acme.io", "operator").await;
    app.post(
        &format!("/v1/tenants/{tid}/roles"),
        &owner,
        json!({ "name": "key-admin", "permissions": ["apikeys.manage", "usage.write"] }),
    )
    .await;
    let (_, key_admin) = app.member(&admin, &tid, "keys@acme.io", "key-admin").await;
    let (s, b) = app
        .post(
            &keys,
            &key_admin,
            json!({ "name": "too much", "permissions": ["usage.write", "billing.manage"] }),
        )
        .await;
    assert_eq!((s, code(&b)), (403, "permission_escalation"));
    let (s, b) = app
        .post(
            &keys,
            &key_admin,
            json!({ "name": "no llm", "permissions": ["llm_keys.use"] }),
        )
        .await;
    assert_eq!((s, code(&b)), (403, "permission_escalation"));
    let (s, b) = app
        .post(
            &keys,
            &ops,
            json!({ "name": "x", "permissions": ["usage.write"] }),
        )
        .await;
    assert_eq!((s, code(&b)), (403, "missing_permission"));

    // Another tenant's key id under this path is not found, and survives.
    let (other_key, other_secret) = app.api_key(&admin, &other, &["tenant.read"]).await;
    let (s, b) = app.delete(&format!("{keys}/{other_key}"), &owner).await;
    assert_eq!((s, code(&b)), (404, "api_key_not_found"));
    let (s, _) = app
        .get(&format!("/v1/tenants/{other}"), &other_secret)
        .await;
    assert_eq!(s, 200);

    // Revocation and expiry take effect on the very next request.
    let (s, _) = app.delete(&format!("{keys}/{key_id}"), &owner).await;
    assert_eq!(s, 204);
    let (s, b) = app.get(&format!("/v1/tenants/{tid}"), &key).await;
    assert_eq!((s, code(&b)), (401, "invalid_token"));
    // A key that expires in a moment works until then (the guard knows it
    // from memory after its first use), and not a request after.
    let expires_at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let (s, short) = app
        .post(
            &format!("/v1/tenants/{other}/api-keys"),
            &admin,
            json!({ "name": "short", "permissions": ["tenant.read"], "expires_at": expires_at }),
        )
        .await;
    assert_eq!(s, 201, "{short}");
    let short = short["key"].as_str().unwrap();
    let (s, _) = app.get(&format!("/v1/tenants/{other}"), short).await;
    assert_eq!(s, 200);
    while chrono::Utc::now() <= expires_at {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (s, b) = app.get(&format!("/v1/tenants/{other}"), short).await;
    assert_eq!((s, code(&b)), (401, "invalid_token"));
}

#[tokio::test]
async fn impersonation_records_both_identities_and_ends_for_good() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, owner_id, _) = tenant_with_owner(&app, &admin, "Acme").await;
    let (s, b) = app
        .post(
            "/v1/admin/impersonate",
            &admin,
            json!({ "user_id": owner_id, "reason": " " }),
        )
        .await;
    assert_eq!((s, code(&b)), (422, "invalid_reason"));
    let admin_id = app.get("/v1/me", &admin).await.1["user"]["id"].clone();
    let (s, b) = app
        .post(
            "/v1/admin/impersonate",
            &admin,
            json!({ "user_id": admin_id, "reason": "curious" }),
        )
        .await;
    assert_eq!((s, code(&b)), (403, "cannot_impersonate_admin"));

    let (s, started) = app
        .post(
            "/v1/admin/impersonate",
            &admin,
            json!({ "user_id": owner_id, "reason": "ticket 42" }),
        )
        .await;
    assert_eq!(s, 200, "{started}");
    assert!(started.get("refresh_token").is_none());
    let expires =
        chrono::DateTime::parse_from_rfc3339(started["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires <= chrono::Utc::now() + chrono::Duration::minutes(61));
    let token = started["access_token"].as_str().unwrap();

    let (s, me) = app.get("/v1/me", token).await;
    assert_eq!(s, 200);
    assert_eq!(me["user"]["id"], json!(owner_id));
    assert_eq!(me["impersonated_by"]["id"], admin_id);
    assert_eq!(me["is_platform_admin"], false);
    let (s, b) = app
        .post(
            "/v1/me/password",
            token,
            json!({ "current_password": "x", "new_password": "whatever-123" }),
        )
        .await;
    assert_eq!((s, code(&b)), (403, "not_allowed_while_impersonating"));
    // Admin routes stay closed to an impersonation token.
    let (s, _) = app.get("/v1/admin/users", token).await;
    assert_eq!(s, 403);

    let (s, _) = app
        .patch(
            &format!("/v1/tenants/{tid}"),
            token,
            json!({ "name": "Renamed By Support" }),
        )
        .await;
    assert_eq!(s, 200);
    let meta: Value =
        sqlx::query_scalar("SELECT metadata FROM events WHERE event_type = 'TenantRenamed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(meta["actor"], json!({ "type": "user", "id": owner_id }));
    assert_eq!(
        meta["impersonator"],
        json!({ "type": "user", "id": admin_id })
    );

    let (s, _) = app
        .post("/v1/admin/stop-impersonation", token, json!({}))
        .await;
    assert_eq!(s, 204);
    let (s, b) = app.get("/v1/me", token).await;
    assert_eq!((s, code(&b)), (401, "invalid_token"));
    let (s, b) = app
        .post("/v1/admin/stop-impersonation", &admin, json!({}))
        .await;
    assert_eq!((s, code(&b)), (409, "not_impersonating"));

    let audit: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, payload FROM events \
          WHERE event_type IN ('ImpersonationStarted', 'ImpersonationEnded') ORDER BY position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].1["admin_id"], admin_id);
    assert_eq!(audit[0].1["user_id"], json!(owner_id));
    assert_eq!(audit[0].1["reason"], "ticket 42");
    assert_eq!(audit[1].0, "ImpersonationEnded");
    assert_eq!(audit[1].1["admin_id"], admin_id);

    // A deactivated user cannot be impersonated.
    let gone = app
        .create_user(&admin, "gone@acme.io", "password-123")
        .await;
    let gone_id = gone["id"].as_str().unwrap();
    app.post(
        &format!("/v1/admin/users/{gone_id}/deactivate"),
        &admin,
        json!({}),
    )
    .await;
    let (s, b) = app
        .post(
            "/v1/admin/impersonate",
            &admin,
            json!({ "user_id": gone_id, "reason": "ticket 43" }),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "user_deactivated"));
}

#[tokio::test]
async fn suspended_tenants_read_but_do_not_change_and_archived_ones_vanish() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, _, owner) = tenant_with_owner(&app, &admin, "Acme").await;
    let (s, _) = app
        .post(
            &format!("/v1/tenants/{tid}/suspend"),
            &admin,
            json!({ "reason": "unpaid" }),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app.get(&format!("/v1/tenants/{tid}"), &owner).await;
    assert_eq!(s, 200);
    let (s, b) = app
        .patch(
            &format!("/v1/tenants/{tid}"),
            &owner,
            json!({ "name": "X" }),
        )
        .await;
    assert_eq!((s, code(&b)), (423, "tenant_suspended"));
    let (s, _) = app
        .patch(
            &format!("/v1/tenants/{tid}"),
            &admin,
            json!({ "name": "Acme Two" }),
        )
        .await;
    assert_eq!(s, 200, "platform admins still change a suspended tenant");

    app.post(&format!("/v1/tenants/{tid}/reactivate"), &admin, json!({}))
        .await;
    let (s, _) = app.delete(&format!("/v1/tenants/{tid}"), &admin).await;
    assert_eq!(s, 204);
    let (s, b) = app.get(&format!("/v1/tenants/{tid}"), &owner).await;
    assert_eq!((s, code(&b)), (404, "tenant_not_found"));
    let (s, _) = app.get(&format!("/v1/tenants/{tid}"), &admin).await;
    assert_eq!(s, 200);
    let (_, me) = app.get("/v1/me", &owner).await;
    assert_eq!(
        me["tenants"],
        json!([]),
        "archived tenants leave the switcher"
    );
}

#[tokio::test]
async fn admins_filter_users_by_tenant_and_role_and_see_memberships() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, owner, _) = tenant_with_owner(&app, &admin, "Acme").await;
    let (viewer, _) = app.member(&admin, &tid, "viewer@acme.io", "viewer").await;
    app.create_user(&admin, "loner@x.io", "password-123").await;

    let ids = |list: &Value| -> Vec<String> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, list) = app
        .get(&format!("/v1/admin/users?tenant_id={tid}"), &admin)
        .await;
    assert_eq!(s, 200);
    assert_eq!(ids(&list), [owner.as_str(), viewer.as_str()]);
    let (_, list) = app
        .get(
            &format!("/v1/admin/users?tenant_id={tid}&role=viewer"),
            &admin,
        )
        .await;
    assert_eq!(ids(&list), [viewer.as_str()]);
    let (s, b) = app.get("/v1/admin/users?tenant_id=nope", &admin).await;
    assert_eq!((s, code(&b)), (422, "invalid_query"));

    let (s, user) = app.get(&format!("/v1/admin/users/{viewer}"), &admin).await;
    assert_eq!(s, 200);
    assert_eq!(user["email"], "viewer@acme.io");
    assert_eq!(user["memberships"][0]["tenant_id"], json!(tid));
    assert_eq!(user["memberships"][0]["role"], "viewer");

    // Deactivating the only owner would orphan the tenant.
    let (s, b) = app
        .post(
            &format!("/v1/admin/users/{owner}/deactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "last_owner"));
    assert_eq!(b["error"]["details"]["tenant_ids"], json!([tid]));
}

#[tokio::test]
async fn an_api_key_retrying_with_an_idempotency_key_defines_a_role_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, _, owner) = tenant_with_owner(&app, &admin, "Acme").await;
    let (_, key) = app
        .api_key(
            &owner,
            &tid,
            &["roles.manage", "members.read", "tenant.read"],
        )
        .await;
    let send = || {
        app.client
            .post(app.url(&format!("/v1/tenants/{tid}/roles")))
            .bearer_auth(&key)
            .header("idempotency-key", "define-reader-1")
            .json(&json!({ "name": "reader", "permissions": ["tenant.read"] }))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let second = send().await.unwrap();
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let defined: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'RoleDefined'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(defined, 1);
}

#[tokio::test]
async fn sixteen_concurrent_role_changes_in_one_tenant_all_succeed() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, _, _) = tenant_with_owner(&app, &admin, "Busy").await;
    let mut members = Vec::new();
    for i in 0..16 {
        let user = app
            .create_user(&admin, &format!("m{i}@busy.io"), "password-123")
            .await;
        let id = user["id"].as_str().unwrap().to_string();
        app.add_member(&admin, &tid, &id, "viewer").await;
        members.push(id);
    }
    let changes = members.iter().map(|id| {
        let path = format!("/v1/tenants/{tid}/members/{id}");
        let admin = admin.clone();
        let app = &app;
        async move { app.put(&path, &admin, json!({ "role": "operator" })).await }
    });
    let answers = futures_util::future::join_all(changes).await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    let operators = roles_of(&app, &admin, &tid)
        .await
        .into_iter()
        .filter(|(_, r)| r == "operator")
        .count();
    assert_eq!(operators, 16);
}

/// The guard answers warm requests from memory; a logout, a key revocation,
/// a role change and a suspension made on one server take effect on
/// another server sharing the database without waiting for anything but
/// the log's notification (both poll only every ten minutes here).
#[tokio::test]
async fn revocations_reach_another_server_through_the_log() {
    use std::time::Duration;
    use tenantry_tests::TestDb;
    let slow = [("TENANTRY_PROJECTOR_POLL_MS", "600000")];
    let a = TestApp::spawn_with(&slow).await;
    let admin = a.admin_token().await;
    let tid = a.create_tenant(&admin, "Shared").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let user = a
        .create_user(&admin, "member@two.test", "member-password-1")
        .await;
    let (s, _) = a
        .post(
            &format!("/v1/tenants/{tid}/members"),
            &admin,
            json!({ "user_id": user["id"], "role": "admin" }),
        )
        .await;
    assert_eq!(s, 201);
    let (_, key) = a.api_key(&admin, &tid, &["tenant.read"]).await;
    let b = TestApp::spawn_on(
        TestDb {
            name: String::new(),
            url: a.db.url.clone(),
        },
        &slow,
    )
    .await;
    let member = b.token_for("member@two.test", "member-password-1").await;
    let eventually = |what: &'static str, path: String, token: String, status: u16| {
        let b = &b;
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            loop {
                let (s, body) = b.get(&path, &token).await;
                if s == status {
                    return body;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{what}: B still answers {s}: {body}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let tenant = format!("/v1/tenants/{tid}");
    let keys = format!("/v1/tenants/{tid}/api-keys");
    // Warm: B knows the member (an admin of the tenant) and the key.
    assert_eq!(b.get(&keys, &member).await.0, 200);
    assert_eq!(b.get(&tenant, &key).await.0, 200);

    // A role change on A: B stops letting the member manage keys.
    let (s, _) = a
        .put(
            &format!("/v1/tenants/{tid}/members/{}", user["id"].as_str().unwrap()),
            &admin,
            json!({ "role": "viewer" }),
        )
        .await;
    assert_eq!(s, 200);
    eventually("a role change", keys.clone(), member.clone(), 403).await;

    // A suspension on A: B refuses the member's changes.
    let (s, _) = a
        .post(
            &format!("{tenant}/suspend"),
            &admin,
            json!({ "reason": "overdue" }),
        )
        .await;
    assert_eq!(s, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (s, _) = b.patch(&tenant, &member, json!({ "name": "x" })).await;
        if s == 423 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B still lets a suspended tenant change: {s}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (s, _) = a
        .post(&format!("{tenant}/reactivate"), &admin, json!({}))
        .await;
    assert_eq!(s, 200);

    // A key revocation on A: B refuses the key.
    let key_id = {
        let (_, list) = a.get(&keys, &admin).await;
        list["data"][0]["id"].as_str().unwrap().to_string()
    };
    let (s, _) = a.delete(&format!("{keys}/{key_id}"), &admin).await;
    assert_eq!(s, 204);
    eventually("a key revocation", tenant.clone(), key.clone(), 401).await;

    // A logout on A of the member's session: B refuses its token.
    let (s, _) = a
        .send(
            reqwest::Method::POST,
            "/v1/auth/logout",
            Some(&member),
            None,
        )
        .await;
    assert_eq!(s, 204);
    eventually("a logout", "/v1/me".into(), member.clone(), 401).await;
    b.stop().await;
}
