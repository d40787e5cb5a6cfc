//! Billing with Stripe, against localstripe (a Stripe-compatible server from
//! PyPI that keeps state and delivers real signed webhooks): prices made by
//! `tenantry billing sync-plans`, checkout creating the tenant's customer
//! once, a subscription paid in "Stripe" reaching the tenant's billing
//! through webhooks, the billing portal, and reconciliation finding and
//! repairing what the webhooks missed. Checkout and portal sessions come
//! from the tests' stand-in ([`StripeFront`]): localstripe has neither.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tenantry_api::cli::Done;
use tenantry_tests::localstripe::{LocalStripe, StripeFront, SECRET_KEY};
use tenantry_tests::{test_config, TestApp};

const WEBHOOK_SECRET: &str = "whsec_localstripe_endpoint_0123";

struct Stripe {
    local: LocalStripe,
    front: StripeFront,
    app: TestApp,
    admin: String,
    extra: Vec<(String, String)>,
}

impl Stripe {
    /// localstripe, the front, and a server configured for both, with
    /// localstripe's webhooks delivered to it.
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    async fn start_with(more: &[(&str, &str)]) -> Self {
        let local = LocalStripe::start().await;
        let front = StripeFront::start(&local).await;
        let mut extra = vec![
            (
                "TENANTRY_STRIPE_SECRET_KEY".to_string(),
                SECRET_KEY.to_string(),
            ),
            ("TENANTRY_STRIPE_API_BASE".to_string(), front.url()),
            (
                "TENANTRY_STRIPE_WEBHOOK_SECRETS".to_string(),
                WEBHOOK_SECRET.to_string(),
            ),
            (
                "TENANTRY_STRIPE_RETURN_URL".to_string(),
                "https://portal.example/billing".to_string(),
            ),
        ];
        extra.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let pairs: Vec<(&str, &str)> = extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let app = TestApp::spawn_with(&pairs).await;
        local
            .register_webhook(&app.url("/v1/webhooks/stripe"), WEBHOOK_SECRET)
            .await;
        let admin = app.admin_token().await;
        Self {
            local,
            front,
            app,
            admin,
            extra,
        }
    }

    /// A `tenantry` command run as the binary runs it, on the server's
    /// database.
    async fn cli(&self, args: &[&str]) -> Result<Done, String> {
        let pairs: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let config = test_config(&self.app.db.url, &pairs);
        let cli =
            tenantry_api::cli::parse(std::iter::once("tenantry").chain(args.iter().copied()))?;
        tenantry_api::cli::run(cli, config).await
    }

    /// The `team` plan (49.00 EUR a month, 5 seats) with its Stripe price.
    async fn team_plan(&self) {
        let (s, body) = self
            .app
            .post(
                "/v1/admin/plans",
                &self.admin,
                json!({
                    "key": "team", "name": "Team", "price_minor": 4900, "currency": "eur",
                    "interval": "month", "trial_days": 0,
                    "entitlements": { "max_seats": 5, "features": [] }
                }),
            )
            .await;
        assert_eq!(s, 201, "{body}");
        assert_eq!(self.cli(&["billing", "sync-plans"]).await, Ok(Done::Clean));
    }

    /// A tenant with an owner; returns (tenant id, owner token).
    async fn tenant(&self, name: &str, owner_email: &str) -> (String, String) {
        let tenant = self.app.create_tenant(&self.admin, name).await;
        let tid = tenant["id"].as_str().unwrap().to_string();
        let (_, owner) = self
            .app
            .member(&self.admin, &tid, owner_email, "owner")
            .await;
        (tid, owner)
    }

    async fn billing(&self, tid: &str, token: &str) -> Value {
        let (s, body) = self
            .app
            .get(&format!("/v1/tenants/{tid}/billing"), token)
            .await;
        assert_eq!(s, 200, "{body}");
        body
    }

    /// Wait until the tenant's billing satisfies `ok` (webhooks arrive
    /// about a second after the change in localstripe).
    async fn billing_when(&self, tid: &str, token: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let body = self.billing(tid, token).await;
            if ok(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "billing never became as expected: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Checkout, then "the customer pays": a card and the subscription
    /// Checkout would create, made in localstripe. Returns the
    /// subscription's id once Tenantry shows it active.
    async fn subscribe(&self, tid: &str, owner: &str) -> String {
        self.subscribe_to(tid, owner, "team").await
    }

    async fn subscribe_to(&self, tid: &str, owner: &str, plan: &str) -> String {
        let (s, session) = self
            .app
            .post(
                &format!("/v1/tenants/{tid}/billing/checkout"),
                owner,
                json!({ "plan": plan }),
            )
            .await;
        assert_eq!(s, 200, "{session}");
        let asked = self.front.sessions().pop().expect("a checkout session");
        let customer = asked.field("customer").expect("a customer").to_string();
        let price = asked
            .field("line_items[0][price]")
            .expect("a price")
            .to_string();
        self.local.give_card(&customer).await;
        let sub = self
            .local
            .call(
                Method::POST,
                "/v1/subscriptions",
                &[
                    ("customer", &customer),
                    ("items[0][plan]", &price),
                    (
                        "metadata[tenant_id]",
                        asked
                            .field("subscription_data[metadata][tenant_id]")
                            .expect("the tenant on the subscription"),
                    ),
                ],
            )
            .await;
        let sub_id = sub["id"].as_str().unwrap().to_string();
        self.billing_when(tid, owner, |b| {
            b["status"] == "active" && b["subscription"]["id"] == sub_id.as_str()
        })
        .await;
        self.paid_invoices(tid, owner).await;
        sub_id
    }

    /// The tenant's invoices once one shows paid (from the invoice webhooks).
    async fn paid_invoices(&self, tid: &str, token: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, list) = self
                .app
                .get(&format!("/v1/tenants/{tid}/billing/invoices"), token)
                .await;
            assert_eq!(s, 200);
            let data = list["data"].as_array().unwrap().clone();
            if data.iter().any(|i| i["status"] == "paid") {
                return data;
            }
            assert!(Instant::now() < deadline, "no paid invoice: {list}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn portal(&self, tid: &str, token: &str) -> (u16, Value) {
        self.app
            .post(
                &format!("/v1/tenants/{tid}/billing/portal"),
                token,
                json!({}),
            )
            .await
    }

    async fn reconciliation(&self) -> Value {
        let (s, body) = self
            .app
            .get("/v1/admin/billing/reconciliation", &self.admin)
            .await;
        assert_eq!(s, 200, "{body}");
        body["last"].clone()
    }
}

#[tokio::test]
async fn checkout_subscription_webhooks_invoices_and_portal_against_localstripe() {
    let stripe = Stripe::start().await;
    stripe.team_plan().await;
    // The price exists in Stripe as Tenantry names it; a second sync adds none.
    let price = stripe
        .local
        .call(Method::GET, "/v1/plans/tenantry_team_v1", &[])
        .await;
    assert_eq!(
        (price["amount"].as_i64(), price["currency"].as_str()),
        (Some(4900), Some("eur"))
    );
    assert_eq!(
        stripe.cli(&["billing", "sync-plans"]).await,
        Ok(Done::Clean)
    );
    let plans = stripe.local.call(Method::GET, "/v1/plans", &[]).await;
    assert_eq!(plans["data"].as_array().unwrap().len(), 1);

    let (tid, owner) = stripe.tenant("Acme", "owner@acme.test").await;
    // Without a customer there is no portal yet.
    let (s, body) = stripe.portal(&tid, &owner).await;
    assert_eq!(
        (s, tenantry_tests::code(&body)),
        (409, "no_stripe_customer")
    );

    // Checkout: a customer for the tenant, created once however often it is asked.
    for _ in 0..2 {
        let (s, session) = stripe
            .app
            .post(
                &format!("/v1/tenants/{tid}/billing/checkout"),
                &owner,
                json!({ "plan": "team" }),
            )
            .await;
        assert_eq!(s, 200, "{session}");
        assert!(session["url"]
            .as_str()
            .unwrap()
            .starts_with("https://checkout.stripe.test/"));
    }
    let customers = stripe.local.call(Method::GET, "/v1/customers", &[]).await;
    let customers = customers["data"].as_array().unwrap();
    assert_eq!(customers.len(), 1, "one customer per tenant");
    assert_eq!(customers[0]["metadata"]["tenant_id"], tid.as_str());
    let asked = stripe.front.sessions();
    assert_eq!(asked.len(), 2);
    let first = &asked[0];
    assert_eq!(first.authorization, format!("Bearer {SECRET_KEY}"));
    assert_eq!(first.field("mode"), Some("subscription"));
    assert_eq!(first.field("customer"), customers[0]["id"].as_str());
    assert_eq!(
        first.field("line_items[0][price]"),
        Some("tenantry_team_v1")
    );
    assert_eq!(first.field("client_reference_id"), Some(tid.as_str()));
    assert_eq!(
        first.field("subscription_data[metadata][tenant_id]"),
        Some(tid.as_str())
    );

    // The customer pays; localstripe's own webhooks make the tenant active.
    let sub_id = stripe.subscribe(&tid, &owner).await;
    let billing = stripe.billing(&tid, &owner).await;
    assert_eq!(billing["plan"]["key"], "team");
    assert_eq!(billing["plan"]["version"], 1);
    assert!(billing["subscription"]["current_period_end"].is_string());
    // Its invoice, paid, listed from the invoice webhooks.
    let invoices = stripe.paid_invoices(&tid, &owner).await;
    assert_eq!(invoices[0]["amount_paid"], 4900);
    assert_eq!(invoices[0]["currency"], "eur");
    // Each event applied once, caused by Stripe.
    let causes: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT event_type, metadata->'actor'->>'name' FROM events \
          WHERE tenant_id = $1::uuid AND aggregate_type = 'billing' ORDER BY sequence",
    )
    .bind(&tid)
    .fetch_all(&stripe.app.pool)
    .await
    .unwrap();
    assert!(causes
        .iter()
        .any(|(t, a)| t == "SubscriptionSynced" && a.as_deref() == Some("stripe")));
    assert!(causes
        .iter()
        .any(|(t, a)| t == "InvoiceRecorded" && a.as_deref() == Some("stripe")));

    // The portal, for the tenant's customer, returning where configured.
    let (s, portal) = stripe.portal(&tid, &owner).await;
    assert_eq!(s, 200, "{portal}");
    assert!(portal["url"]
        .as_str()
        .unwrap()
        .starts_with("https://billing.stripe.test/"));
    let asked = stripe.front.sessions().pop().unwrap();
    assert_eq!(asked.path, "/v1/billing_portal/sessions");
    assert_eq!(asked.field("customer"), customers[0]["id"].as_str());
    assert_eq!(
        asked.field("return_url"),
        Some("https://portal.example/billing")
    );

    // Cancelled in Stripe: the deletion's webhook cancels it here.
    stripe
        .local
        .call(Method::DELETE, &format!("/v1/subscriptions/{sub_id}"), &[])
        .await;
    stripe
        .billing_when(&tid, &owner, |b| b["status"] == "canceled")
        .await;
    // A canceled tenant reads, but its changes need a payment.
    let (s, body) = stripe
        .app
        .post(
            &format!("/v1/tenants/{tid}/invitations"),
            &owner,
            json!({ "email": "late@acme.test", "role": "viewer" }),
        )
        .await;
    assert_eq!((s, tenantry_tests::code(&body)), (402, "payment_required"));
}

#[tokio::test]
async fn checkout_refuses_what_stripe_cannot_sell_with_a_reason() {
    let stripe = Stripe::start().await;
    let (tid, owner) = stripe.tenant("Acme", "owner@acme.test").await;
    let checkout = |plan: &'static str| {
        let path = format!("/v1/tenants/{tid}/billing/checkout");
        let owner = owner.clone();
        let app = &stripe.app;
        async move { app.post(&path, &owner, json!({ "plan": plan })).await }
    };
    let (s, body) = checkout("nope").await;
    assert_eq!((s, tenantry_tests::code(&body)), (404, "plan_not_found"));
    // A plan whose price was never synced to Stripe: say what to run.
    let (s, _) = stripe
        .app
        .post(
            "/v1/admin/plans",
            &stripe.admin,
            json!({
                "key": "agency", "name": "Agency", "price_minor": 19900, "currency": "eur",
                "interval": "month", "entitlements": {}
            }),
        )
        .await;
    assert_eq!(s, 201);
    let (s, body) = checkout("agency").await;
    assert_eq!(
        (s, tenantry_tests::code(&body)),
        (409, "plan_not_for_sale"),
        "{body}"
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sync-plans"));
    // A free plan is assigned, not sold.
    let (s, _) = stripe
        .app
        .post(
            "/v1/admin/plans",
            &stripe.admin,
            json!({
                "key": "free", "name": "Free", "price_minor": 0, "currency": "eur",
                "interval": "month", "entitlements": { "max_seats": 2 }
            }),
        )
        .await;
    assert_eq!(s, 201);
    let (s, body) = checkout("free").await;
    assert_eq!((s, tenantry_tests::code(&body)), (409, "plan_not_for_sale"));
}

#[tokio::test]
async fn reconciliation_finds_a_cancellation_made_while_webhooks_were_off_and_fix_repairs_it_once()
{
    let stripe = Stripe::start().await;
    stripe.team_plan().await;
    let (tid, owner) = stripe.tenant("Acme", "owner@acme.test").await;
    let sub_id = stripe.subscribe(&tid, &owner).await;
    // Everything agrees.
    let done = stripe.cli(&["billing", "reconcile"]).await;
    let clean = stripe.reconciliation().await;
    assert_eq!(done, Ok(Done::Clean), "{clean}");
    assert_eq!(clean["differences"], json!([]));
    assert_eq!(clean["tenants_checked"], 1);

    // The endpoint is down while someone cancels in Stripe's dashboard.
    stripe.local.unregister_webhook().await;
    stripe
        .local
        .call(Method::DELETE, &format!("/v1/subscriptions/{sub_id}"), &[])
        .await;
    assert_eq!(stripe.billing(&tid, &owner).await["status"], "active");

    // Found, and reported without changing anything.
    let events_before = billing_events(&stripe, &tid).await;
    assert_eq!(
        stripe
            .cli(&["billing", "reconcile", "--format", "json"])
            .await,
        Ok(Done::Drift)
    );
    let found = stripe.reconciliation().await;
    let differences = found["differences"].as_array().unwrap();
    assert_eq!(differences.len(), 1, "{found}");
    assert_eq!(differences[0]["kind"], "status_differs");
    assert_eq!(differences[0]["stripe_object"], sub_id.as_str());
    assert_eq!(differences[0]["tenantry"], "active");
    assert_eq!(differences[0]["stripe"], "canceled");
    assert_eq!(differences[0]["fixed"], false);
    assert_eq!(billing_events(&stripe, &tid).await, events_before);

    // --fix repairs it with an event naming the reconciler and the object.
    assert_eq!(
        stripe
            .cli(&["billing", "reconcile", "--tenant", &tid, "--fix"])
            .await,
        Ok(Done::Drift)
    );
    let fixed = stripe.reconciliation().await;
    assert_eq!(fixed["fixed"], 1);
    assert_eq!(fixed["differences"][0]["fixed"], true);
    assert_eq!(stripe.billing(&tid, &owner).await["status"], "canceled");
    let (actor, payload): (String, Value) = sqlx::query_as(
        "SELECT metadata->'actor'->>'name', payload FROM events \
          WHERE tenant_id = $1::uuid AND event_type = 'SubscriptionSynced' \
          ORDER BY sequence DESC LIMIT 1",
    )
    .bind(&tid)
    .fetch_one(&stripe.app.pool)
    .await
    .unwrap();
    assert_eq!(actor, "reconciler");
    assert_eq!(payload["subscription_id"], sub_id.as_str());
    assert_eq!(payload["status"], "canceled");
    assert_eq!(payload["stripe_event_id"], Value::Null);

    // A second run finds nothing and changes nothing.
    let events_after_fix = billing_events(&stripe, &tid).await;
    assert_eq!(
        stripe.cli(&["billing", "reconcile", "--fix"]).await,
        Ok(Done::Clean)
    );
    assert_eq!(billing_events(&stripe, &tid).await, events_after_fix);
    assert_eq!(stripe.reconciliation().await["differences"], json!([]));
}

#[tokio::test]
async fn reconciliation_links_a_customer_and_records_invoices_the_webhooks_never_brought() {
    let stripe = Stripe::start().await;
    stripe.team_plan().await;
    let (tid, owner) = stripe.tenant("Acme", "owner@acme.test").await;
    // Webhooks off from the start: a customer and a paid subscription made
    // in Stripe for the tenant, of which Tenantry heard nothing.
    stripe.local.unregister_webhook().await;
    let customer = stripe
        .local
        .call(
            Method::POST,
            "/v1/customers",
            &[("name", "Acme"), ("metadata[tenant_id]", &tid)],
        )
        .await;
    let customer = customer["id"].as_str().unwrap().to_string();
    stripe.local.give_card(&customer).await;
    let sub = stripe
        .local
        .call(
            Method::POST,
            "/v1/subscriptions",
            &[
                ("customer", &customer),
                ("items[0][plan]", "tenantry_team_v1"),
            ],
        )
        .await;
    let sub_id = sub["id"].as_str().unwrap();

    assert_eq!(
        stripe.cli(&["billing", "reconcile", "--fix"]).await,
        Ok(Done::Drift)
    );
    let report = stripe.reconciliation().await;
    let kinds: Vec<&str> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "customer_unlinked",
        "subscription_missing",
        "plan_differs",
        "invoice_missing",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {report}");
    }
    let billing = stripe.billing(&tid, &owner).await;
    assert_eq!(billing["status"], "active");
    assert_eq!(billing["subscription"]["id"], sub_id);
    assert_eq!(billing["plan"]["key"], "team");
    let (_, invoices) = stripe
        .app
        .get(&format!("/v1/tenants/{tid}/billing/invoices"), &owner)
        .await;
    assert_eq!(invoices["data"][0]["status"], "paid", "{invoices}");
    // And the portal knows the customer now.
    let (s, _) = stripe.portal(&tid, &owner).await;
    assert_eq!(s, 200);
    assert_eq!(stripe.cli(&["billing", "reconcile"]).await, Ok(Done::Clean));
}

async fn billing_events(stripe: &Stripe, tid: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE tenant_id = $1::uuid AND aggregate_type = 'billing'",
    )
    .bind(tid)
    .fetch_one(&stripe.app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_server_reconciles_on_its_schedule_and_reports_without_repairing() {
    let stripe = Stripe::start_with(&[("TENANTRY_BILLING_RECONCILE_INTERVAL", "200ms")]).await;
    stripe.team_plan().await;
    let (tid, owner) = stripe.tenant("Acme", "owner@acme.test").await;
    let sub_id = stripe.subscribe(&tid, &owner).await;
    stripe.local.unregister_webhook().await;
    stripe
        .local
        .call(Method::DELETE, &format!("/v1/subscriptions/{sub_id}"), &[])
        .await;
    // A scheduled run (no CLI here) finds the cancellation the webhooks missed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let last = stripe.reconciliation().await;
        let found = last["differences"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["kind"] == "status_differs"));
        if found {
            break last;
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled report found it: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(report["fix"], false);
    assert_eq!(report["fixed"], 0);
    // It reports; repairing is the operator's call.
    assert_eq!(stripe.billing(&tid, &owner).await["status"], "active");
}

#[tokio::test]
async fn a_price_made_in_stripe_by_the_operator_sells_its_plan_version() {
    let stripe = Stripe::start().await;
    let (s, body) = stripe
        .app
        .post(
            "/v1/admin/plans",
            &stripe.admin,
            json!({
                "key": "agency", "name": "Agency", "price_minor": 19900, "currency": "eur",
                "interval": "month", "entitlements": { "max_seats": 25 },
                "stripe_price": "price_acme_agency_monthly"
            }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["terms"]["stripe_price"], "price_acme_agency_monthly");
    // Not in Stripe yet: sync-plans says so and creates nothing in its place.
    let missing = stripe.cli(&["billing", "sync-plans"]).await;
    assert!(
        missing
            .as_ref()
            .is_err_and(|e| e.contains("price_acme_agency_monthly")),
        "{missing:?}"
    );
    let plans = stripe.local.call(Method::GET, "/v1/plans", &[]).await;
    assert_eq!(plans["data"], json!([]));
    // The operator makes it in Stripe.
    stripe
        .local
        .call(
            Method::POST,
            "/v1/plans",
            &[
                ("id", "price_acme_agency_monthly"),
                ("amount", "19900"),
                ("currency", "eur"),
                ("interval", "month"),
                ("product[name]", "Agency"),
            ],
        )
        .await;
    assert_eq!(
        stripe.cli(&["billing", "sync-plans"]).await,
        Ok(Done::Clean)
    );

    let (tid, owner) = stripe.tenant("Acme", "owner@acme.test").await;
    stripe.subscribe_to(&tid, &owner, "agency").await;
    let asked = stripe.front.sessions().pop().unwrap();
    assert_eq!(
        asked.field("line_items[0][price]"),
        Some("price_acme_agency_monthly")
    );
    let billing = stripe.billing(&tid, &owner).await;
    assert_eq!(billing["plan"]["key"], "agency", "{billing}");
    assert_eq!(billing["terms"]["entitlements"]["max_seats"], 25);

    // Tenantry's own names are not for configuring.
    let (s, body) = stripe
        .app
        .post(
            "/v1/admin/plans/agency/versions",
            &stripe.admin,
            json!({
                "price_minor": 19900, "currency": "eur", "interval": "month",
                "entitlements": {}, "stripe_price": "tenantry_team_v1"
            }),
        )
        .await;
    assert_eq!(s, 422, "{body}");
    let field = &body["error"]["details"]["fields"][0];
    assert_eq!(
        (field["field"].as_str(), field["code"].as_str()),
        (Some("stripe_price"), Some("invalid_stripe_price")),
        "{body}"
    );
}
