//! Billing, first part: the plan catalogue, manual assignment, versions
//! that tenants keep, trials, retirement, and the Stripe-backed actions
//! while Stripe is not configured.

use serde_json::{json, Value};
use tenantry_tests::{code, TestApp};

fn team_terms(price: i64) -> Value {
    json!({
        "price_minor": price,
        "currency": "usd",
        "interval": "month",
        "trial_days": 14,
        "entitlements": {
            "max_seats": 10,
            "max_agents": 5,
            "monthly_credit_minor": 10000,
            "rate_tier": "standard",
            "features": ["approvals", "byo_llm_keys"]
        }
    })
}

/// A new tenant's id.
async fn new_tenant(app: &TestApp, admin: &str, name: &str) -> String {
    app.create_tenant(admin, name).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Put a tenant on a plan (platform admin).
async fn put_on_plan(
    app: &TestApp,
    admin: &str,
    tid: &str,
    plan: &str,
    trial: bool,
) -> (u16, Value) {
    app.put(
        &format!("/v1/tenants/{tid}/billing/plan"),
        admin,
        json!({ "plan": plan, "trial": trial }),
    )
    .await
}

/// Invite an email as a viewer.
async fn invite(app: &TestApp, token: &str, tid: &str, email: &str) -> (u16, Value) {
    app.post(
        &format!("/v1/tenants/{tid}/invitations"),
        token,
        json!({ "email": email, "role": "viewer" }),
    )
    .await
}

fn plan_in(key: &str, price: i64) -> Value {
    let mut body = team_terms(price);
    body["key"] = json!(key);
    body["name"] = json!("Team");
    body
}

#[tokio::test]
async fn plans_are_versioned_and_a_tenant_keeps_the_version_it_took() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (s, plan) = app
        .post("/v1/admin/plans", &admin, plan_in("team", 4900))
        .await;
    assert_eq!(s, 201, "{plan}");
    assert_eq!(plan["version"], 1);
    assert_eq!(
        plan["terms"]["entitlements"]["features"],
        json!(["approvals", "byo_llm_keys"])
    );
    // The key is unique.
    let (s, b) = app
        .post("/v1/admin/plans", &admin, plan_in("team", 1))
        .await;
    assert_eq!((s, code(&b)), (409, "plan_key_taken"));

    let tid = new_tenant(&app, &admin, "Acme").await;
    let (s, billing) = app.get(&format!("/v1/tenants/{tid}/billing"), &admin).await;
    assert_eq!((s, &billing["plan"]), (200, &Value::Null));
    let (s, billing) = put_on_plan(&app, &admin, &tid, "team", false).await;
    assert_eq!(s, 200, "{billing}");
    assert_eq!(billing["plan"]["version"], 1);
    assert_eq!(billing["status"], "active");
    assert_eq!(billing["terms"]["price_minor"], 4900);

    // A new price is version 2; the tenant keeps version 1 until it changes plan.
    let (s, plan) = app
        .post("/v1/admin/plans/team/versions", &admin, team_terms(5900))
        .await;
    assert_eq!((s, &plan["version"]), (200, &json!(2)));
    let (_, billing) = app.get(&format!("/v1/tenants/{tid}/billing"), &admin).await;
    assert_eq!(
        (
            &billing["plan"]["version"],
            &billing["terms"]["price_minor"]
        ),
        (&json!(1), &json!(4900))
    );
    // Assigned again, it takes the current version.
    let (_, billing) = put_on_plan(&app, &admin, &tid, "team", false).await;
    assert_eq!(billing["plan"]["version"], 2);
    assert_eq!(billing["terms"]["price_minor"], 5900);

    // The history is in the tenant's stream.
    let (_, events) = app.get(&format!("/v1/tenants/{tid}/events"), &admin).await;
    let assigned: Vec<&Value> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "PlanAssigned")
        .collect();
    assert_eq!(assigned.len(), 2);
}

#[tokio::test]
async fn a_trial_ends_after_the_plans_days_and_a_retired_plan_takes_no_one() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.post("/v1/admin/plans", &admin, plan_in("team", 4900))
        .await;
    let mut free = plan_in("free", 0);
    free["trial_days"] = json!(0);
    app.post("/v1/admin/plans", &admin, free).await;
    let tid = new_tenant(&app, &admin, "Trial").await;
    let path = format!("/v1/tenants/{tid}/billing/plan");
    let (s, billing) = app
        .put(&path, &admin, json!({ "plan": "team", "trial": true }))
        .await;
    assert_eq!((s, &billing["status"]), (200, &json!("trialing")));
    let ends: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(billing["trial_ends_at"].clone()).unwrap();
    let days = (ends - chrono::Utc::now()).num_hours();
    assert!((13 * 24..=14 * 24).contains(&days), "{days} hours");
    let (s, b) = app
        .put(&path, &admin, json!({ "plan": "free", "trial": true }))
        .await;
    assert_eq!((s, code(&b)), (422, "plan_has_no_trial"));

    let (s, plan) = app
        .post("/v1/admin/plans/free/retire", &admin, json!({}))
        .await;
    assert_eq!((s, &plan["retired"]), (200, &json!(true)));
    let (s, b) = app.put(&path, &admin, json!({ "plan": "free" })).await;
    assert_eq!((s, code(&b)), (409, "plan_retired"));
    let (s, b) = app
        .post("/v1/admin/plans/free/versions", &admin, team_terms(1))
        .await;
    assert_eq!((s, code(&b)), (409, "plan_retired"));
    let (_, plans) = app.get("/v1/admin/plans", &admin).await;
    let keys: Vec<&str> = plans["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["team", "free"], "retired plans last");
    let (s, b) = app.put(&path, &admin, json!({ "plan": "nope" })).await;
    assert_eq!((s, code(&b)), (404, "plan_not_found"));
}

#[tokio::test]
async fn bad_terms_are_named_field_by_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut bad = plan_in("bad", -5);
    bad["currency"] = json!("USD");
    bad["interval"] = json!("week");
    bad["entitlements"]["features"] = json!(["approvals", "teleport"]);
    let (s, b) = app.post("/v1/admin/plans", &admin, bad).await;
    assert_eq!((s, code(&b)), (422, "validation_failed"), "{b}");
    let fields: Vec<&str> = b["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"interval"), "{fields:?}");
    assert!(fields.contains(&"entitlements.features[1]"), "{fields:?}");
    let mut zero = plan_in("zero", 100);
    zero["entitlements"]["max_seats"] = json!(0);
    let (s, b) = app.post("/v1/admin/plans", &admin, zero).await;
    assert_eq!((s, code(&b)), (422, "validation_failed"));
    assert_eq!(
        b["error"]["details"]["fields"][0]["code"],
        "invalid_entitlement"
    );
}

#[tokio::test]
async fn without_stripe_checkout_and_portal_say_so_and_billing_is_read_by_its_permission() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.post("/v1/admin/plans", &admin, plan_in("team", 4900))
        .await;
    let tid = new_tenant(&app, &admin, "Acme").await;
    let (_, key) = app
        .api_key(&admin, &tid, &["billing.read", "billing.manage"])
        .await;
    let (s, b) = app
        .post(
            &format!("/v1/tenants/{tid}/billing/checkout"),
            &key,
            json!({ "plan": "team" }),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "billing_not_configured"));
    let (s, b) = app
        .post(
            &format!("/v1/tenants/{tid}/billing/checkout"),
            &key,
            json!({ "plan": "nope" }),
        )
        .await;
    assert_eq!((s, code(&b)), (404, "plan_not_found"));
    let (s, b) = app
        .post(
            &format!("/v1/tenants/{tid}/billing/portal"),
            &key,
            json!({}),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "billing_not_configured"));
    let (s, b) = app.get(&format!("/v1/tenants/{tid}/billing"), &key).await;
    assert_eq!((s, &b["tenant_id"]), (200, &json!(tid)));
    let (_, reader) = app.api_key(&admin, &tid, &["tenant.read"]).await;
    let (s, b) = app
        .get(&format!("/v1/tenants/{tid}/billing"), &reader)
        .await;
    assert_eq!((s, code(&b)), (403, "missing_permission"));
}

#[tokio::test]
async fn the_plan_limits_seats_and_a_platform_admins_setting_overrides_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut small = plan_in("small", 900);
    small["entitlements"]["max_seats"] = json!(2);
    app.post("/v1/admin/plans", &admin, small).await;
    let tid = new_tenant(&app, &admin, "Small").await;
    let (s, _) = put_on_plan(&app, &admin, &tid, "small", false).await;
    assert_eq!(s, 200);
    // Two seats: two pending invitations take them.
    assert_eq!(invite(&app, &admin, &tid, "one@small.test").await.0, 201);
    assert_eq!(invite(&app, &admin, &tid, "two@small.test").await.0, 201);
    let (s, b) = invite(&app, &admin, &tid, "three@small.test").await;
    assert_eq!((s, code(&b)), (409, "seat_limit_reached"));
    assert_eq!(b["error"]["details"]["max_seats"], 2);
    // A platform admin's max_seats setting overrides the plan.
    let (s, _) = app
        .patch(
            &format!("/v1/tenants/{tid}"),
            &admin,
            json!({ "settings": { "max_seats": 3 } }),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(invite(&app, &admin, &tid, "three@small.test").await.0, 201);
}

#[tokio::test]
async fn a_trial_that_runs_out_refuses_changes_with_402_until_the_tenant_has_a_plan() {
    use std::sync::Arc;
    use tenantry_api::clock::ManualClock;
    let clock = Arc::new(ManualClock::default());
    let app = TestApp::spawn_with_clock(
        &[("TENANTRY_INVITATION_EXPIRY_SCAN", "100ms")],
        clock.clone(),
    )
    .await;
    let admin = app.admin_token().await;
    app.post("/v1/admin/plans", &admin, plan_in("team", 4900))
        .await;
    // The tenant's owner acts (platform admins are never held back).
    let owner = app
        .create_user(&admin, "owner@trial.test", "owner-password-1")
        .await;
    let (s, tenant) = app
        .post(
            "/v1/tenants",
            &admin,
            json!({ "name": "Trying", "owner_user_id": owner["id"] }),
        )
        .await;
    assert_eq!(s, 201);
    let tid = tenant["id"].as_str().unwrap().to_string();
    let key = app.token_for("owner@trial.test", "owner-password-1").await;
    let plan = format!("/v1/tenants/{tid}/billing/plan");
    let (s, _) = app
        .put(&plan, &admin, json!({ "plan": "team", "trial": true }))
        .await;
    assert_eq!(s, 200);
    assert_eq!(invite(&app, &key, &tid, "during@trial.test").await.0, 201);

    // Fourteen days on, the trial has run out: reads work, changes are 402,
    // billing stays reachable.
    clock.advance(chrono::Duration::days(14) + chrono::Duration::minutes(1));
    let (s, b) = invite(&app, &key, &tid, "after@trial.test").await;
    assert_eq!((s, code(&b)), (402, "payment_required"), "{b}");
    assert_eq!(b["error"]["details"]["billing_status"], "trial_ended");
    let (s, b) = app.get(&format!("/v1/tenants/{tid}"), &key).await;
    assert_eq!(s, 200, "{b}");
    let (s, billing) = app.get(&format!("/v1/tenants/{tid}/billing"), &key).await;
    assert_eq!((s, &billing["status"]), (200, &json!("unpaid")));
    let (s, b) = app
        .post(
            &format!("/v1/tenants/{tid}/billing/checkout"),
            &key,
            json!({ "plan": "team" }),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "billing_not_configured"));
    // The job records the trial's end.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE event_type = 'TrialEnded' AND tenant_id = $1::uuid",
        )
        .bind(&tid)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if ended == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "TrialEnded never recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Recorded or not yet seen by the read model, the tenant still pays first.
    let (s, b) = invite(&app, &key, &tid, "still@trial.test").await;
    assert_eq!((s, code(&b)), (402, "payment_required"));
    // A plan lifts it at once.
    let (s, billing) = app.put(&plan, &admin, json!({ "plan": "team" })).await;
    assert_eq!((s, &billing["status"]), (200, &json!("active")));
    assert_eq!(invite(&app, &key, &tid, "paid@trial.test").await.0, 201);
}

#[tokio::test]
async fn bringing_your_own_llm_keys_needs_a_plan_that_includes_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let mut basic = plan_in("basic", 900);
    basic["entitlements"]["features"] = json!([]);
    app.post("/v1/admin/plans", &admin, basic).await;
    app.post("/v1/admin/plans", &admin, plan_in("team", 4900))
        .await;
    let tid = new_tenant(&app, &admin, "Keys").await;
    let keys = format!("/v1/tenants/{tid}/llm-keys");
    let body = json!({ "provider": "openai", "api_key": "sk-abcdefghijklmnopqrstuvwxyz012345" });
    // No plan yet: not held back.
    let (s, created) = app.post(&keys, &admin, body.clone()).await;
    assert_eq!(s, 201, "{created}");
    let (s, billing) = put_on_plan(&app, &admin, &tid, "basic", false).await;
    assert_eq!(s, 200, "{billing}");
    assert_eq!(
        billing["terms"]["entitlements"]["features"],
        json!([]),
        "{billing}"
    );
    let (s, b) = app
        .put(
            &format!("{keys}/{}", created["id"].as_str().unwrap()),
            &admin,
            json!({ "api_key": "sk-zyxwvutsrqponmlkjihgfedcba543210" }),
        )
        .await;
    assert_eq!((s, code(&b)), (403, "feature_not_in_plan"), "{b}");
    assert_eq!(b["error"]["details"]["feature"], "byo_llm_keys");
    // The plan that includes it lets the tenant store keys again.
    put_on_plan(&app, &admin, &tid, "team", false).await;
    let (s, _) = app
        .post(
            &keys,
            &admin,
            json!({ "provider": "anthropic", "api_key": "sk-ant-abcdefghijklmnopqrstuvwxyz" }),
        )
        .await;
    assert_eq!(s, 201);
}

mod stripe_webhooks {
    use super::*;
    use tenantry_api::stripe_signature::sign;

    const SECRET: &str = "whsec_test_secret_one";

    fn event(id: &str, kind: &str, created: i64, tid: &str, status: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": id,
            "object": "event",
            "type": kind,
            "created": created,
            "data": { "object": {
                "id": "sub_123",
                "object": "subscription",
                "status": status,
                "cancel_at_period_end": false,
                "current_period_end": created + 30 * 86_400,
                "metadata": { "tenant_id": tid }
            }}
        }))
        .unwrap()
    }

    async fn deliver(app: &TestApp, body: &[u8], header: &str) -> (u16, Value) {
        let r = app
            .client
            .post(app.url("/v1/webhooks/stripe"))
            .header("stripe-signature", header)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn synced(app: &TestApp, tid: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE event_type = 'SubscriptionSynced' AND tenant_id = $1::uuid",
        )
        .bind(tid)
        .fetch_one(&app.pool)
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn signed_events_apply_once_in_stripes_order_and_forgeries_change_nothing() {
        let app = TestApp::spawn_with(&[(
            "TENANTRY_STRIPE_WEBHOOK_SECRETS",
            &format!("whsec_old_rotated_out, {SECRET}"),
        )])
        .await;
        let admin = app.admin_token().await;
        app.post("/v1/admin/plans", &admin, plan_in("team", 4900))
            .await;
        let tid = new_tenant(&app, &admin, "Stripe").await;
        put_on_plan(&app, &admin, &tid, "team", false).await;
        let now = chrono::Utc::now().timestamp();

        // A payment failed: past_due.
        let body = event(
            "evt_1",
            "customer.subscription.updated",
            now - 60,
            &tid,
            "past_due",
        );
        let header = sign(&body, SECRET, now);
        let (s, r) = deliver(&app, &body, &header).await;
        assert_eq!((s, &r["applied"]), (200, &json!(true)), "{r}");
        let (_, billing) = app.get(&format!("/v1/tenants/{tid}/billing"), &admin).await;
        assert_eq!(billing["status"], "past_due");
        // Delivered again: acknowledged, applied once.
        let (s, r) = deliver(&app, &body, &header).await;
        assert_eq!((s, &r["applied"]), (200, &json!(false)));
        assert_eq!(synced(&app, &tid).await, 1);

        // Two deliveries of one event at once: one effect.
        let deleted = event(
            "evt_3",
            "customer.subscription.deleted",
            now - 10,
            &tid,
            "canceled",
        );
        let header = sign(&deleted, SECRET, now);
        let (a, b) = tokio::join!(
            deliver(&app, &deleted, &header),
            deliver(&app, &deleted, &header)
        );
        assert_eq!((a.0, b.0), (200, 200));
        assert_eq!(synced(&app, &tid).await, 2);
        // An older event arriving late never moves it back.
        let created = event(
            "evt_2",
            "customer.subscription.created",
            now - 30,
            &tid,
            "active",
        );
        let (s, r) = deliver(&app, &created, &sign(&created, SECRET, now)).await;
        assert_eq!((s, &r["applied"]), (200, &json!(false)));
        let (_, billing) = app.get(&format!("/v1/tenants/{tid}/billing"), &admin).await;
        assert_eq!(billing["status"], "canceled");

        // Forged, stale, unsigned: 400, nothing changes.
        let later = event(
            "evt_4",
            "customer.subscription.updated",
            now,
            &tid,
            "active",
        );
        for header in [
            sign(&later, "whsec_attacker", now),
            sign(&later, SECRET, now - 301),
            "t=1,v1=zz".to_string(),
        ] {
            let (s, r) = deliver(&app, &later, &header).await;
            assert_eq!((s, code(&r)), (400, "invalid_signature"), "{header}");
        }
        assert_eq!(synced(&app, &tid).await, 2);
        // A type Tenantry does not use: acknowledged and ignored.
        let invoice = serde_json::to_vec(&json!({
            "id": "evt_5", "type": "invoice.created", "created": now, "data": { "object": {} }
        }))
        .unwrap();
        let (s, r) = deliver(&app, &invoice, &sign(&invoice, SECRET, now)).await;
        assert_eq!((s, &r["applied"]), (200, &json!(false)));
    }

    /// Dunning: a failed payment makes the subscription past_due; through
    /// the grace period changes go on, after it they are 402 while reads
    /// work; a successful payment lifts it at once.
    #[tokio::test]
    async fn a_failed_payment_restricts_changes_after_the_grace_period_and_a_payment_lifts_it() {
        use std::sync::Arc;
        use tenantry_api::clock::{Clock, ManualClock};
        let clock = Arc::new(ManualClock::default());
        let app = TestApp::spawn_with_clock(
            &[
                ("TENANTRY_STRIPE_WEBHOOK_SECRETS", SECRET),
                ("TENANTRY_BILLING_GRACE", "3d"),
            ],
            clock.clone(),
        )
        .await;
        let admin = app.admin_token().await;
        app.post("/v1/admin/plans", &admin, plan_in("team", 4900))
            .await;
        let owner = app
            .create_user(&admin, "owner@dunning.test", "owner-password-1")
            .await;
        let (_, tenant) = app
            .post(
                "/v1/tenants",
                &admin,
                json!({ "name": "Dunning", "owner_user_id": owner["id"] }),
            )
            .await;
        let tid = tenant["id"].as_str().unwrap().to_string();
        put_on_plan(&app, &admin, &tid, "team", false).await;
        let owner = app
            .token_for("owner@dunning.test", "owner-password-1")
            .await;
        let t = clock.now().timestamp();
        let failed = event(
            "evt_failed",
            "customer.subscription.updated",
            t,
            &tid,
            "past_due",
        );
        let (s, _) = deliver(&app, &failed, &sign(&failed, SECRET, t)).await;
        assert_eq!(s, 200);
        // Within the grace period: changes work.
        clock.advance(chrono::Duration::days(2));
        assert_eq!(invite(&app, &owner, &tid, "a@dunning.test").await.0, 201);
        // After it: 402 on changes, reads and billing still work.
        clock.advance(chrono::Duration::days(2));
        let (s, b) = invite(&app, &owner, &tid, "b@dunning.test").await;
        assert_eq!((s, code(&b)), (402, "payment_required"), "{b}");
        assert_eq!(b["error"]["details"]["billing_status"], "past_due");
        assert_eq!(app.get(&format!("/v1/tenants/{tid}"), &owner).await.0, 200);
        let (_, billing) = app.get(&format!("/v1/tenants/{tid}/billing"), &owner).await;
        assert_eq!(billing["status"], "past_due");
        // The payment goes through: lifted at once.
        let t = clock.now().timestamp();
        let paid = event(
            "evt_paid",
            "customer.subscription.updated",
            t,
            &tid,
            "active",
        );
        let (s, r) = deliver(&app, &paid, &sign(&paid, SECRET, t)).await;
        assert_eq!((s, &r["applied"]), (200, &json!(true)));
        assert_eq!(invite(&app, &owner, &tid, "b@dunning.test").await.0, 201);
    }

    fn invoice_event(id: &str, kind: &str, created: i64, invoice: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": id, "object": "event", "type": kind, "created": created,
            "data": { "object": invoice }
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn invoice_events_are_listed_for_the_tenant_of_their_subscription() {
        let app = TestApp::spawn_with(&[("TENANTRY_STRIPE_WEBHOOK_SECRETS", SECRET)]).await;
        let admin = app.admin_token().await;
        app.post("/v1/admin/plans", &admin, plan_in("team", 4900))
            .await;
        let tid = new_tenant(&app, &admin, "Invoiced").await;
        put_on_plan(&app, &admin, &tid, "team", false).await;
        let now = chrono::Utc::now().timestamp();
        // The subscription, with the tenant in its metadata.
        let created = event(
            "evt_sub",
            "customer.subscription.created",
            now - 100,
            &tid,
            "active",
        );
        deliver(&app, &created, &sign(&created, SECRET, now)).await;
        // Its invoice names only the subscription.
        let invoice = |status: &str, paid: i64| {
            json!({
                "id": "in_1", "object": "invoice", "number": "TEN-0001", "status": status,
                "currency": "usd", "amount_due": 4900, "amount_paid": paid,
                "hosted_invoice_url": "https://invoice.stripe.com/i/in_1",
                "invoice_pdf": "https://pay.stripe.com/invoice/in_1/pdf",
                "period_start": now - 100, "period_end": now - 100 + 30 * 86_400,
                "subscription": "sub_123", "metadata": {}
            })
        };
        let finalized = invoice_event("evt_fin", "invoice.finalized", now - 50, invoice("open", 0));
        let paid = invoice_event("evt_paid", "invoice.paid", now - 10, invoice("paid", 4900));
        // Paid arrives before finalized: the older one changes nothing.
        for body in [&paid, &finalized] {
            let (s, _) = deliver(&app, body, &sign(body, SECRET, now)).await;
            assert_eq!(s, 200);
        }
        let (s, list) = app
            .get(&format!("/v1/tenants/{tid}/billing/invoices"), &admin)
            .await;
        assert_eq!(s, 200, "{list}");
        let invoices = list["data"].as_array().unwrap();
        assert_eq!(invoices.len(), 1, "{list}");
        assert_eq!(invoices[0]["status"], "paid");
        assert_eq!(invoices[0]["amount_paid"], 4900);
        assert_eq!(invoices[0]["number"], "TEN-0001");
        assert_eq!(
            invoices[0]["invoice_pdf"],
            "https://pay.stripe.com/invoice/in_1/pdf"
        );
    }

    #[tokio::test]
    async fn without_secrets_the_endpoint_says_billing_is_not_configured() {
        let app = TestApp::spawn().await;
        let body = b"{}";
        let (s, r) = deliver(
            &app,
            body,
            &sign(body, SECRET, chrono::Utc::now().timestamp()),
        )
        .await;
        assert_eq!((s, code(&r)), (409, "billing_not_configured"));
    }
}
