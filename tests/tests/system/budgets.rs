//! Budgets and credit reservations: holds granted within the agent's and
//! the tenant's monthly budgets and 402 beyond either, settled by usage,
//! released, or expired by the sweeper when their holder dies; and the
//! invariant under 50 concurrent clients on two server processes.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tenantry_tests::{code, TestApp, TestDb};

struct Budgeted {
    app: TestApp,
    tid: String,
    owner: String,
    runtime: String,
}

/// A tenant whose budget is `tenant_minor` (minor units), with an API key
/// for the runtime.
async fn budgeted(extra: &[(&str, &str)], tenant_minor: u64) -> Budgeted {
    let app = TestApp::spawn_with(extra).await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Acme").await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let (s, body) = app
        .patch(
            &format!("/v1/tenants/{tid}"),
            &admin,
            json!({ "settings": { "monthly_budget_minor": tenant_minor } }),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let (_, owner) = app.member(&admin, &tid, "owner@acme.test", "owner").await;
    let (_, runtime) = app
        .api_key(&owner, &tid, &["usage.write", "usage.read"])
        .await;
    Budgeted {
        app,
        tid,
        owner,
        runtime,
    }
}

impl Budgeted {
    async fn agent(&self, name: &str, budget_minor: Option<i64>) -> String {
        let (s, body) = self
            .app
            .post(
                &format!("/v1/tenants/{}/agents", self.tid),
                &self.owner,
                json!({ "name": name, "monthly_budget_minor": budget_minor }),
            )
            .await;
        assert_eq!(s, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn reserve(&self, app: &TestApp, id: &str, agent: &str, micros: i64) -> (u16, Value) {
        app.post(
            &format!("/v1/tenants/{}/reservations", self.tid),
            &self.runtime,
            json!({ "id": id, "agent_id": agent, "amount_micros": micros }),
        )
        .await
    }

    async fn budgets(&self) -> Value {
        let (s, body) = self
            .app
            .get(&format!("/v1/tenants/{}/budgets", self.tid), &self.runtime)
            .await;
        assert_eq!(s, 200, "{body}");
        body
    }
}

fn agent_budget<'a>(budgets: &'a Value, agent: &str) -> &'a Value {
    budgets["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent_id"] == agent)
        .unwrap()
}

#[tokio::test]
async fn holds_fit_both_budgets_and_402_names_the_one_that_does_not() {
    // The tenant may spend 100.00 (1,000,000 micro-units per 1.00 is 10,000
    // per cent); the receptionist 50.00.
    let b = budgeted(&[], 10_000).await;
    let receptionist = b.agent("Receptionist", Some(5_000)).await;
    let writer = b.agent("Writer", None).await;

    let (s, held) = b.reserve(&b.app, "r1", &receptionist, 40_000_000).await;
    assert_eq!(s, 201, "{held}");
    assert_eq!(held["status"], "held");
    // The same id again: the same hold, nothing more reserved.
    let (s, again) = b.reserve(&b.app, "r1", &receptionist, 40_000_000).await;
    assert_eq!((s, &again["expires_at"]), (201, &held["expires_at"]));

    let r = b
        .app
        .client
        .post(b.app.url(&format!("/v1/tenants/{}/reservations", b.tid)))
        .bearer_auth(&b.runtime)
        .json(&json!({"id": "r2", "agent_id": receptionist, "amount_micros": 20_000_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(code(&body), "budget_exceeded");
    let details = &body["error"]["details"];
    assert_eq!(details["scope"], "agent");
    assert_eq!(details["agent_id"], receptionist.as_str());
    assert_eq!(
        (
            details["limit_micros"].as_i64(),
            details["spent_micros"].as_i64(),
            details["reserved_micros"].as_i64()
        ),
        (Some(50_000_000), Some(0), Some(40_000_000))
    );
    assert!(details["resets_at"].is_string());

    // The writer has no budget of its own: the tenant's binds, up to its limit exactly.
    let (s, _) = b.reserve(&b.app, "w1", &writer, 60_000_000).await;
    assert_eq!(s, 201);
    let (s, body) = b.reserve(&b.app, "w2", &writer, 1).await;
    assert_eq!((s, code(&body)), (402, "budget_exceeded"));
    assert_eq!(body["error"]["details"]["scope"], "tenant");

    let budgets = b.budgets().await;
    assert_eq!(budgets["tenant"]["limit_micros"], 100_000_000);
    assert_eq!(budgets["tenant"]["reserved_micros"], 100_000_000);
    assert_eq!(budgets["tenant"]["state"], "exceeded");
    assert_eq!(agent_budget(&budgets, &receptionist)["state"], "warning");

    // Usage settles r1 with its actual cost: the hold gives way to what was spent.
    let (s, body) = b
        .app
        .post(
            &format!("/v1/tenants/{}/usage", b.tid),
            &b.runtime,
            json!({"records": [{"id": "u1", "agent_id": receptionist, "provider": "openai",
                   "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 500,
                   "occurred_at": chrono::Utc::now().to_rfc3339(), "reservation_id": "r1"}]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    // The writer gives w1 back; giving it back again is no error.
    for _ in 0..2 {
        let (s, _) = b
            .app
            .delete(
                &format!("/v1/tenants/{}/reservations/w1", b.tid),
                &b.runtime,
            )
            .await;
        assert_eq!(s, 204);
    }
    let budgets = b.budgets().await;
    assert_eq!(
        (
            budgets["tenant"]["spent_micros"].as_i64(),
            budgets["tenant"]["reserved_micros"].as_i64()
        ),
        (Some(7_500), Some(0))
    );
    assert_eq!(budgets["tenant"]["state"], "ok");
    // The crossings were recorded once each, and not undone by the release.
    let crossed: Vec<(String, String)> = sqlx::query_as(
        "SELECT payload->>'scope', payload->>'threshold' FROM events \
          WHERE event_type = 'BudgetThresholdCrossed' AND tenant_id = $1::uuid ORDER BY tenant_sequence",
    )
    .bind(&b.tid)
    .fetch_all(&b.app.pool)
    .await
    .unwrap();
    assert_eq!(
        crossed,
        [
            ("agent".to_string(), "warning".to_string()),
            ("tenant".to_string(), "warning".to_string()),
            ("tenant".to_string(), "exceeded".to_string()),
        ]
    );
    // An amount or an estimate: one of them.
    let (s, body) = b
        .app
        .post(
            &format!("/v1/tenants/{}/reservations", b.tid),
            &b.runtime,
            json!({"id": "r9", "agent_id": writer}),
        )
        .await;
    assert_eq!((s, code(&body)), (422, "validation_failed"), "{body}");
    assert_eq!(
        body["error"]["details"]["fields"][0]["code"],
        "invalid_amount"
    );
    // Paused agents hold nothing.
    let (s, _) = b
        .app
        .post(
            &format!("/v1/tenants/{}/agents/{writer}/pause", b.tid),
            &b.owner,
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, body) = b.reserve(&b.app, "w3", &writer, 1).await;
    assert_eq!((s, code(&body)), (409, "agent_paused"));
}

#[tokio::test]
async fn the_sweeper_gives_back_the_holds_of_a_holder_that_died() {
    let b = budgeted(&[("TENANTRY_RESERVATION_SWEEP", "200ms")], 100).await;
    let agent = b.agent("Crashy", None).await;
    let (s, body) = b
        .app
        .post(
            &format!("/v1/tenants/{}/reservations", b.tid),
            &b.runtime,
            json!({"id": "lost", "agent_id": agent, "amount_micros": 1_000_000, "ttl_seconds": 1}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(b.budgets().await["tenant"]["reserved_micros"], 1_000_000);
    // Nobody settles or releases it: the sweeper does, once it has expired.
    let deadline = Instant::now() + Duration::from_secs(15);
    while b.budgets().await["tenant"]["reserved_micros"] != 0 {
        assert!(Instant::now() < deadline, "the hold was never given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let actor: String = sqlx::query_scalar(
        "SELECT metadata->'actor'->>'name' FROM events WHERE event_type = 'ReservationExpired' \
          AND tenant_id = $1::uuid",
    )
    .bind(&b.tid)
    .fetch_one(&b.app.pool)
    .await
    .unwrap();
    assert_eq!(actor, "reservation-sweeper");
    // The credit is there again.
    let (s, _) = b.reserve(&b.app, "next", &agent, 1_000_000).await;
    assert_eq!(s, 201);
}

#[tokio::test]
async fn fifty_clients_on_two_servers_never_reserve_past_either_limit() {
    // Tenant: 30.00 (30,000,000 micros); the agent: 20.00.
    let b = budgeted(&[], 3_000).await;
    let agent = b.agent("Busy", Some(2_000)).await;
    let other = b.agent("Other", None).await;
    let second = TestApp::spawn_on(
        TestDb {
            name: String::new(),
            url: b.app.db.url.clone(),
        },
        &[],
    )
    .await;
    // 50 clients at a time, alternating servers, each asking 1.00. First
    // the agent's limit binds: 95 asks for it, 5 for the other agent.
    let ask_all = |asks: Vec<(usize, String)>| {
        let (b, second) = (&b, &second);
        async move {
            let tries = asks.into_iter().map(|(i, who)| async move {
                let app = if i % 2 == 0 { &b.app } else { second };
                let (s, body) = b.reserve(app, &format!("c{i}"), &who, 1_000_000).await;
                assert!(
                    s == 201 || (s == 402 && code(&body) == "budget_exceeded"),
                    "{s} {body}"
                );
                (who, s, body)
            });
            futures_util::stream::iter(tries)
                .buffer_unordered(50)
                .collect::<Vec<_>>()
                .await
        }
    };
    let granted = |answers: &[(String, u16, Value)], w: &str| {
        answers
            .iter()
            .filter(|(who, s, _)| who == w && *s == 201)
            .count()
    };
    let first = ask_all(
        (0..100)
            .map(|i| {
                (
                    i,
                    if i % 20 == 0 {
                        other.clone()
                    } else {
                        agent.clone()
                    },
                )
            })
            .collect(),
    )
    .await;
    assert_eq!(granted(&first, &agent), 20, "the agent's limit");
    assert_eq!(granted(&first, &other), 5);
    assert!(first
        .iter()
        .filter(|(_, s, _)| *s == 402)
        .all(|(_, _, body)| body["error"]["details"]["scope"] == "agent"));
    // Then the tenant's: 5.00 of it is left, 50 asks for the other agent.
    let second_round = ask_all((100..150).map(|i| (i, other.clone())).collect()).await;
    assert_eq!(granted(&second_round, &other), 5, "the tenant's limit");
    // And the log agrees: the holds granted never exceeded a limit.
    let held: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum((payload->>'amount_micros')::int8), 0)::int8 FROM events \
          WHERE event_type = 'ReservationGranted' AND tenant_id = $1::uuid",
    )
    .bind(&b.tid)
    .fetch_one(&b.app.pool)
    .await
    .unwrap();
    assert_eq!(held, 30_000_000);
    drop(second);
}

/// Reservations read the tenant's limit and the agent from memory while
/// nobody changes them (`Store::load_recent`); a change made on another
/// server reaches them through the log: a lowered budget binds, a paused
/// agent is refused, and a resumed one is served again.
#[tokio::test]
async fn limits_and_agents_changed_on_another_server_bind_here() {
    let b = budgeted(&[], 1_000_000).await;
    let agent = b.agent("Roaming", None).await;
    let other = TestApp::spawn_on(
        TestDb {
            name: String::new(),
            url: b.app.db.url.clone(),
        },
        &[],
    )
    .await;
    // Warm: the first server has read the tenant and the agent.
    let (s, body) = b.reserve(&b.app, "warm", &agent, 1_000_000).await;
    assert_eq!(s, 201, "{body}");

    // Until the change made on the other server is heard of here.
    async fn eventually(what: &str, mut attempt: impl AsyncFnMut(usize) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut i = 0;
        while !attempt(i).await {
            assert!(
                Instant::now() < deadline,
                "{what} never reached the first server"
            );
            i += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let admin = other.admin_token().await;
    let (s, _) = other
        .patch(
            &format!("/v1/tenants/{}", b.tid),
            &admin,
            json!({ "settings": { "monthly_budget_minor": 150 } }),
        )
        .await;
    assert_eq!(s, 200);
    // 1.00 is held; 1.50 is the limit now: another 1.00 does not fit.
    eventually("the lowered budget", async |i| {
        let (s, body) = b
            .reserve(&b.app, &format!("low-{i}"), &agent, 1_000_000)
            .await;
        assert!(s == 201 || s == 402, "{s} {body}");
        s == 402 && body["error"]["details"]["limit_micros"] == 1_500_000
    })
    .await;

    let (s, _) = other
        .post(
            &format!("/v1/tenants/{}/agents/{agent}/pause", b.tid),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    eventually("the paused agent", async |i| {
        let (s, body) = b.reserve(&b.app, &format!("p-{i}"), &agent, 1).await;
        s == 409 && code(&body) == "agent_paused"
    })
    .await;
    let (s, _) = other
        .post(
            &format!("/v1/tenants/{}/agents/{agent}/resume", b.tid),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    // Served again: the ask reaches the budgets (which may refuse it: holds
    // granted before the lowered budget was heard here still count).
    eventually("the resumed agent", async |i| {
        let (s, body) = b.reserve(&b.app, &format!("r-{i}"), &agent, 1).await;
        s == 201 || (s == 402 && code(&body) == "budget_exceeded")
    })
    .await;
}

/// With `budget_period: billing_period`, budgets count over the
/// subscription's current billing period and reset when Stripe renews it;
/// without a running subscription, over the calendar month.
#[tokio::test]
async fn budgets_follow_the_billing_period_when_the_tenant_asks() {
    const SECRET: &str = "whsec_budget_periods";
    let b = budgeted(&[("TENANTRY_STRIPE_WEBHOOK_SECRETS", SECRET)], 300).await;
    let admin = b.app.admin_token().await;
    let agent = b.agent("Periodic", None).await;
    let (s, body) = b
        .app
        .post(
            "/v1/admin/plans",
            &admin,
            json!({
                "key": "team", "name": "Team", "price_minor": 4900, "currency": "usd",
                "interval": "month", "trial_days": 0,
                "entitlements": { "max_seats": 10, "max_agents": 5, "monthly_credit_minor": 0,
                                  "rate_tier": "standard", "features": [] }
            }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = b
        .app
        .put(
            &format!("/v1/tenants/{}/billing/plan", b.tid),
            &admin,
            json!({ "plan": "team", "trial": false }),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    assert_eq!(
        b.budgets().await["period"],
        month,
        "the calendar month by default"
    );

    // A subscription whose period ends in ten days, as Stripe says it.
    let now = chrono::Utc::now().timestamp();
    let subscription = |id: &str, created: i64, period_end: i64| {
        let body = serde_json::to_vec(&json!({
            "id": id, "object": "event", "type": "customer.subscription.updated",
            "created": created,
            "data": { "object": {
                "id": "sub_periodic", "object": "subscription", "status": "active",
                "cancel_at_period_end": false, "current_period_end": period_end,
                "metadata": { "tenant_id": b.tid }
            }}
        }))
        .unwrap();
        let header = tenantry_api::stripe_signature::sign(&body, SECRET, created);
        (body, header)
    };
    let deliver = |(body, header): (Vec<u8>, String)| {
        let app = &b.app;
        async move {
            let r = app
                .client
                .post(app.url("/v1/webhooks/stripe"))
                .header("stripe-signature", header)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
    };
    let first_end = now + 10 * 86_400;
    deliver(subscription("evt_p1", now - 5, first_end)).await;
    let (s, _) = b
        .app
        .patch(
            &format!("/v1/tenants/{}", b.tid),
            &admin,
            json!({ "settings": { "budget_period": "billing_period" } }),
        )
        .await;
    assert_eq!(s, 200);
    let end = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let budgets = b.budgets().await;
    assert_eq!(
        budgets["period"],
        format!("until-{}", end(first_end)),
        "{budgets}"
    );
    let resets: chrono::DateTime<chrono::Utc> =
        budgets["resets_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(resets.timestamp(), first_end);

    // 3.00 for the period: 2.00 fits, another 2.00 does not until it resets.
    let (s, body) = b.reserve(&b.app, "p1", &agent, 2_000_000).await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = b.reserve(&b.app, "p2", &agent, 2_000_000).await;
    assert_eq!((s, code(&body)), (402, "budget_exceeded"), "{body}");
    let resets: chrono::DateTime<chrono::Utc> = body["error"]["details"]["resets_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(resets.timestamp(), first_end, "{body}");

    // Stripe renews the subscription: a new period, a fresh budget.
    let second_end = first_end + 30 * 86_400;
    deliver(subscription("evt_p2", now, second_end)).await;
    let budgets = b.budgets().await;
    assert_eq!(budgets["period"], format!("until-{}", end(second_end)));
    assert_eq!(budgets["tenant"]["spent_micros"], 0);
    assert_eq!(budgets["tenant"]["reserved_micros"], 0);
    let (s, body) = b.reserve(&b.app, "p3", &agent, 2_000_000).await;
    assert_eq!(s, 201, "{body}");
    // The hold of the last period still gives back.
    let (s, _) = b
        .app
        .delete(
            &format!("/v1/tenants/{}/reservations/p1", b.tid),
            &b.runtime,
        )
        .await;
    assert!(s == 204 || s == 200, "{s}");
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'ReservationReleased' AND tenant_id = $1::uuid",
    )
    .bind(&b.tid)
    .fetch_one(&b.app.pool)
    .await
    .unwrap();
    assert_eq!(held, 1, "released from the ledger that held it");
    // A subscription's period that has ended: the calendar month again.
    deliver(subscription("evt_p3", now + 1, now - 60)).await;
    assert_eq!(b.budgets().await["period"], month);
}
