//! Approvals over HTTP. Policies: defined, replaced and removed by holders
//! of `approvals.manage`; what they accept; one pattern per policy; what an
//! uncovered action gets; each tenant sees only its own. Requests: stages,
//! no self-approval, races (the last approval, a cancel against the deciding
//! approval), the long poll (woken by a decision and by an expiry), lists
//! and "waiting for me", expiry read at once and recorded by the job.

use serde_json::{json, Value};
use tenantry_tests::{code, TestApp};

async fn tenant_with(app: &TestApp, admin: &str, name: &str, role: &str) -> (String, String) {
    let tenant = app.create_tenant(admin, name).await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let email = format!("{role}@{}.test", name.to_lowercase());
    let (_, token) = app.member(admin, &tid, &email, role).await;
    (tid, token)
}

fn refunds() -> Value {
    json!({
        "actions": ["payments.refund", "payments.payout."],
        "stages": [
            {"approvals": 2},
            {"approvals": 1, "role": "owner", "rejection_ends": false}
        ],
        "expires_in_secs": 3600
    })
}

#[tokio::test]
async fn a_policy_is_defined_read_replaced_and_removed() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, owner) = tenant_with(&app, &admin, "Acme", "owner").await;
    let all = format!("/v1/tenants/{tid}/approval-policies");
    let one = format!("{all}/refunds");

    let (s, body) = app.get(&all, &owner).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body, json!({"uncovered": "default_policy", "policies": []}));

    let (s, defined) = app.put(&one, &owner, refunds()).await;
    assert_eq!(s, 200, "{defined}");
    assert_eq!(defined["name"], "refunds");
    assert_eq!(
        defined["stages"][0],
        json!({"approvals": 2, "role": null, "rejection_ends": true})
    );
    assert_eq!(defined["stages"][1]["rejection_ends"], false);

    let mut stricter = refunds();
    stricter["stages"][0]["approvals"] = json!(3);
    let (s, replaced) = app.put(&one, &owner, stricter).await;
    assert_eq!(s, 200, "{replaced}");
    let (_, body) = app.get(&all, &owner).await;
    assert_eq!(body["policies"].as_array().unwrap().len(), 1);
    assert_eq!(body["policies"][0]["stages"][0]["approvals"], 3);

    let (s, _) = app.delete(&one, &owner).await;
    assert_eq!(s, 204);
    let (s, body) = app.delete(&one, &owner).await;
    assert_eq!((s, code(&body)), (404, "approval_policy_not_found"));
    let (_, body) = app.get(&all, &owner).await;
    assert_eq!(body["policies"], json!([]));
}

#[tokio::test]
async fn two_policies_never_name_one_pattern_and_bad_rules_are_named_field_by_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, owner) = tenant_with(&app, &admin, "Acme", "owner").await;
    let all = format!("/v1/tenants/{tid}/approval-policies");
    assert_eq!(
        app.put(&format!("{all}/refunds"), &owner, refunds())
            .await
            .0,
        200
    );

    let (s, body) = app
        .put(
            &format!("{all}/payouts"),
            &owner,
            json!({"actions": ["payments.payout."], "stages": [{"approvals": 1}]}),
        )
        .await;
    assert_eq!((s, code(&body)), (409, "action_pattern_taken"), "{body}");

    let (s, body) = app
        .put(
            &format!("{all}/Bad-Name"),
            &owner,
            json!({
                "actions": ["Payments", "ok.action"],
                "stages": [{"approvals": 0}, {"approvals": 1, "role": "no-such-role"}],
                "expires_in_secs": 5
            }),
        )
        .await;
    assert_eq!((s, code(&body)), (422, "validation_failed"), "{body}");
    let fields = &body["error"]["details"]["fields"];
    for (field, why) in [
        ("name", "invalid_policy_name"),
        ("actions[0]", "invalid_action"),
        ("stages[0].approvals", "invalid_approvals"),
        ("stages[1].role", "unknown_role"),
        ("expires_in_secs", "invalid_expiry"),
    ] {
        assert!(
            fields
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["field"] == field && f["code"] == why),
            "{field} {why}: {body}"
        );
    }
    let (s, body) = app
        .put(
            &format!("{all}/empty"),
            &owner,
            json!({"actions": [], "stages": []}),
        )
        .await;
    assert_eq!(s, 422, "{body}");

    // A custom role of the tenant may decide a stage.
    let (s, body) = app
        .post(
            &format!("/v1/tenants/{tid}/roles"),
            &owner,
            json!({"name": "finance", "permissions": ["approvals.decide"]}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = app
        .put(
            &format!("{all}/contracts"),
            &owner,
            json!({"actions": ["contracts."], "stages": [{"approvals": 1, "role": "finance"}]}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
}

#[tokio::test]
async fn the_tenant_chooses_what_an_uncovered_action_gets() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, owner) = tenant_with(&app, &admin, "Acme", "owner").await;
    let all = format!("/v1/tenants/{tid}/approval-policies");
    let (s, body) = app
        .patch(&all, &owner, json!({"uncovered": "refuse"}))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["uncovered"], "refuse");
    let (s, body) = app.patch(&all, &owner, json!({"uncovered": "maybe"})).await;
    assert_eq!((s, code(&body)), (422, "validation_failed"), "{body}");
    let (_, body) = app.get(&all, &owner).await;
    assert_eq!(body["uncovered"], "refuse");
}

#[tokio::test]
async fn only_approvals_managers_see_and_change_policies_and_only_their_tenants() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (tid, owner) = tenant_with(&app, &admin, "Acme", "owner").await;
    let (_, operator) = app
        .member(&admin, &tid, "operator@acme.test", "operator")
        .await;
    let all = format!("/v1/tenants/{tid}/approval-policies");
    assert_eq!(
        app.put(&format!("{all}/refunds"), &owner, refunds())
            .await
            .0,
        200
    );

    let (s, body) = app.get(&all, &operator).await;
    assert_eq!((s, code(&body)), (403, "missing_permission"), "{body}");
    let (s, body) = app.put(&format!("{all}/mine"), &operator, refunds()).await;
    assert_eq!((s, code(&body)), (403, "missing_permission"), "{body}");

    let (other, other_owner) = tenant_with(&app, &admin, "Bravo", "owner").await;
    let (s, body) = app
        .get(
            &format!("/v1/tenants/{other}/approval-policies"),
            &other_owner,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["policies"], json!([]));
    let (s, body) = app.get(&all, &other_owner).await;
    assert_eq!(s, 404, "{body}");
}

/// A tenant with a refunds policy (two stages: two approvals by anyone who
/// decides, then one owner), its owner, two operators and an API key made
/// by the owner.
struct Desk {
    tid: String,
    owner: String,
    ops: Vec<String>,
    key: String,
}

async fn desk(app: &TestApp, admin: &str) -> Desk {
    let (tid, owner) = tenant_with(app, admin, "Acme", "owner").await;
    let mut ops = Vec::new();
    for i in 0..3 {
        let (_, t) = app
            .member(admin, &tid, &format!("op{i}@acme.test"), "operator")
            .await;
        ops.push(t);
    }
    let path = format!("/v1/tenants/{tid}/approval-policies/refunds");
    assert_eq!(app.put(&path, &owner, refunds()).await.0, 200);
    let (s, key) = app
        .post(
            &format!("/v1/tenants/{tid}/api-keys"),
            &owner,
            json!({"name": "runtime", "permissions": ["approvals.request"]}),
        )
        .await;
    assert_eq!(s, 201, "{key}");
    Desk {
        tid,
        owner,
        ops,
        key: key["key"].as_str().unwrap().to_string(),
    }
}

fn ask(id: &str) -> Value {
    json!({
        "id": id,
        "action": "payments.refund",
        "summary": "Refund order 1042",
        "payload": {"order": 1042, "amount_minor": 12_000}
    })
}

#[tokio::test]
async fn a_request_goes_through_its_stages_and_nobody_approves_their_own() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let d = desk(&app, &admin).await;
    let requests = format!("/v1/tenants/{}/approvals", d.tid);

    let (s, req) = app.post(&requests, &d.key, ask("refund-1042")).await;
    assert_eq!(s, 201, "{req}");
    assert_eq!(req["status"], "pending");
    assert_eq!(req["stages"].as_array().unwrap().len(), 2);
    let id = req["id"].as_str().unwrap().to_string();
    // The same id and content again is the same request; other content is not.
    let (s, again) = app.post(&requests, &d.key, ask("refund-1042")).await;
    assert_eq!((s, again["id"].as_str()), (201, Some(id.as_str())));
    let mut other = ask("refund-1042");
    other["summary"] = json!("Refund order 9999");
    let (s, body) = app.post(&requests, &d.key, other).await;
    assert_eq!((s, code(&body)), (409, "approval_id_conflict"), "{body}");

    let decisions = format!("{requests}/{id}/decisions");
    // The owner created the key that asked: not theirs to approve.
    let (s, body) = app
        .post(&decisions, &d.owner, json!({"decision": "approve"}))
        .await;
    assert_eq!((s, code(&body)), (403, "self_approval"), "{body}");
    // A key cannot decide (it lacks approvals.decide, and decisions are people's).
    let (s, _) = app
        .post(&decisions, &d.key, json!({"decision": "approve"}))
        .await;
    assert_eq!(s, 403);

    // A decision for a stage the request has not reached is refused.
    let (s, body) = app
        .post(
            &decisions,
            &d.ops[0],
            json!({"decision": "approve", "stage": 1}),
        )
        .await;
    assert_eq!((s, code(&body)), (409, "stage_not_reached"), "{body}");
    let (s, body) = app
        .post(&decisions, &d.ops[0], json!({"decision": "approve"}))
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        (body["stage"].as_u64(), body["status"].as_str()),
        (Some(0), Some("pending"))
    );
    let (s, body) = app
        .post(&decisions, &d.ops[0], json!({"decision": "approve"}))
        .await;
    assert_eq!((s, code(&body)), (409, "already_decided"), "{body}");
    let (s, body) = app
        .post(&decisions, &d.ops[1], json!({"decision": "approve"}))
        .await;
    assert_eq!(body["stage"], 1, "{s} {body}");
    // Stage 1 is the owners': an operator is refused.
    let (s, body) = app
        .post(&decisions, &d.ops[2], json!({"decision": "approve"}))
        .await;
    assert_eq!(
        (s, code(&body)),
        (403, "not_an_approver_at_stage"),
        "{body}"
    );
    // A second owner approves the last stage.
    let (_, owner2) = app
        .member(&admin, &d.tid, "owner2@acme.test", "owner")
        .await;
    let (s, body) = app
        .post(
            &decisions,
            &owner2,
            json!({"decision": "approve", "comment": "fine"}),
        )
        .await;
    assert_eq!(
        (s, body["status"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
    assert_eq!(body["decisions"].as_array().unwrap().len(), 3);
    let (s, body) = app
        .post(&format!("{requests}/{id}/cancel"), &d.key, json!({}))
        .await;
    assert_eq!((s, code(&body)), (409, "approval_not_pending"), "{body}");
}

#[tokio::test]
async fn two_approvers_racing_for_the_last_approval_move_the_stage_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let d = desk(&app, &admin).await;
    let requests = format!("/v1/tenants/{}/approvals", d.tid);
    for round in 0..5 {
        let (_, req) = app
            .post(&requests, &d.key, ask(&format!("race-{round}")))
            .await;
        let id = req["id"].as_str().unwrap().to_string();
        let decisions = format!("{requests}/{id}/decisions");
        let (s, _) = app
            .post(
                &decisions,
                &d.ops[0],
                json!({"decision": "approve", "stage": 0}),
            )
            .await;
        assert_eq!(s, 200);
        // Stage 0 needs one more: two operators give it at once.
        let (a, b) = tokio::join!(
            app.post(
                &decisions,
                &d.ops[1],
                json!({"decision": "approve", "stage": 0})
            ),
            app.post(
                &decisions,
                &d.ops[2],
                json!({"decision": "approve", "stage": 0})
            ),
        );
        assert_eq!((a.0, b.0), (200, 200), "{a:?} {b:?}");
        let (_, now) = app.get(&format!("{requests}/{id}"), &d.key).await;
        assert_eq!(now["stage"], 1, "round {round}: {now}");
        assert_eq!(now["status"], "pending");
        assert_eq!(now["decisions"].as_array().unwrap().len(), 3, "{now}");
        let advanced: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE aggregate_type = 'approval' \
              AND aggregate_id = $1 AND event_type = 'StageAdvanced'",
        )
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(advanced, 1, "round {round}");
    }
}

#[tokio::test]
async fn a_waiting_reader_wakes_on_a_decision_and_the_requester_may_cancel() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let d = desk(&app, &admin).await;
    let requests = format!("/v1/tenants/{}/approvals", d.tid);
    let (_, req) = app.post(&requests, &d.key, ask("wait-1")).await;
    let id = req["id"].as_str().unwrap().to_string();
    let one = format!("{requests}/{id}");

    // The reader waits past the version it read; whichever comes first,
    // its wait or the decision, it answers with the decision.
    let version = req["version"].as_i64().unwrap();
    let waiting = format!("{one}?wait=30&after_version={version}");
    let deciding = format!("{one}/decisions");
    let started = std::time::Instant::now();
    let (waited, decided) = tokio::join!(
        app.get(&waiting, &d.key),
        app.post(
            &deciding,
            &d.ops[0],
            json!({"decision": "reject", "comment": "not this one"}),
        )
    );
    assert_eq!(decided.0, 200, "{decided:?}");
    assert_eq!(waited.0, 200, "{waited:?}");
    assert_eq!(waited.1["status"], "rejected", "{waited:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(25));

    let (_, req) = app.post(&requests, &d.key, ask("wait-2")).await;
    let two = format!("{requests}/{}", req["id"].as_str().unwrap());
    let (s, body) = app
        .post(&format!("{two}/cancel"), &d.ops[0], json!({}))
        .await;
    assert_eq!((s, code(&body)), (403, "not_the_requester"), "{body}");
    let (s, body) = app.post(&format!("{two}/cancel"), &d.key, json!({})).await;
    assert_eq!(
        (s, body["status"].as_str()),
        (200, Some("canceled")),
        "{body}"
    );
    let (s, body) = app.get(&format!("{two}?wait=31"), &d.key).await;
    assert_eq!((s, code(&body)), (422, "validation_failed"), "{body}");
    // Comments need no decision, even on an ended request; keys do not comment.
    let commenting = format!("{two}/comments");
    let (s, body) = app
        .post(&commenting, &d.ops[0], json!({"comment": "ok, dropped"}))
        .await;
    assert_eq!(
        (s, body["status"].as_str()),
        (200, Some("canceled")),
        "{body}"
    );
    let (s, body) = app
        .post(&commenting, &d.key, json!({"comment": "me too"}))
        .await;
    assert_eq!((s, code(&body)), (403, "user_token_required"), "{body}");
    let (s, body) = app
        .post(&commenting, &d.ops[0], json!({"comment": "  "}))
        .await;
    assert_eq!((s, code(&body)), (422, "validation_failed"), "{body}");
    // A comment may not make a console show something else than was written.
    let (s, body) = app
        .post(
            &commenting,
            &d.ops[0],
            json!({"comment": "approved \u{202E}txt.exe"}),
        )
        .await;
    assert_eq!((s, code(&body)), (422, "validation_failed"), "{body}");
    assert_eq!(
        body["error"]["details"]["fields"][0]["code"],
        "invalid_characters"
    );
    let (s, body) = app
        .post(
            &requests,
            &d.key,
            json!({"id": "spoof-1", "action": "payments.refund",
                   "summary": "Refund \u{1b}[31m order", "payload": {}}),
        )
        .await;
    assert_eq!((s, code(&body)), (422, "validation_failed"), "{body}");
    assert_eq!(body["error"]["details"]["fields"][0]["field"], "summary");
    let comments: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'approval' AND event_type = 'CommentAdded'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(comments, 1);
}

#[tokio::test]
async fn an_uncovered_action_is_refused_when_the_tenant_says_so() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let d = desk(&app, &admin).await;
    let requests = format!("/v1/tenants/{}/approvals", d.tid);
    let mut contract = ask("c-1");
    contract["action"] = json!("contracts.send");
    let (s, body) = app.post(&requests, &d.key, contract.clone()).await;
    assert_eq!(
        (s, body["stages"].as_array().map(Vec::len)),
        (201, Some(1)),
        "{body}"
    );
    let policies = format!("/v1/tenants/{}/approval-policies", d.tid);
    assert_eq!(
        app.patch(&policies, &d.owner, json!({"uncovered": "refuse"}))
            .await
            .0,
        200
    );
    contract["id"] = json!("c-2");
    let (s, body) = app.post(&requests, &d.key, contract).await;
    assert_eq!((s, code(&body)), (422, "action_not_covered"), "{body}");
    // Another tenant's request is not found here.
    let (other, other_owner) = tenant_with(&app, &admin, "Bravo", "owner").await;
    let (_, theirs) = app
        .post(
            &format!("/v1/tenants/{other}/approvals"),
            &other_owner,
            ask("b-1"),
        )
        .await;
    let (s, body) = app
        .get(
            &format!("{requests}/{}", theirs["id"].as_str().unwrap()),
            &d.owner,
        )
        .await;
    assert_eq!((s, code(&body)), (404, "approval_not_found"), "{body}");
}

/// The ids of a list's page, in its order.
fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {page}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn lists_filter_by_status_action_agent_and_what_waits_for_the_caller() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let d = desk(&app, &admin).await;
    let requests = format!("/v1/tenants/{}/approvals", d.tid);
    let agent = uuid::Uuid::now_v7();

    // r1: a refund the key asks for; r2: an uncovered contract for an
    // agent (the default policy: one approval); r3: a payout an operator asks.
    let (_, r1) = app.post(&requests, &d.key, ask("r1")).await;
    let mut contract = ask("r2");
    contract["action"] = json!("contracts.send");
    contract["agent_id"] = json!(agent);
    let (_, r2) = app.post(&requests, &d.key, contract).await;
    let mut payout = ask("r3");
    payout["action"] = json!("payments.payout.bank");
    let (s, r3) = app.post(&requests, &d.ops[0], payout).await;
    assert_eq!(s, 201, "{r3}");
    let [r1, r2, r3] = [r1, r2, r3].map(|r| r["id"].as_str().unwrap().to_string());
    let (r1, r2, r3) = (r1.as_str(), r2.as_str(), r3.as_str());
    let list = |query: &str| format!("{requests}?{query}");

    let (s, all) = app.get(&requests, &d.owner).await;
    assert_eq!(s, 200, "{all}");
    assert_eq!(ids(&all), [r3, r2, r1], "newest first");
    assert_eq!(all["data"][1]["agent_id"], json!(agent));
    assert_eq!(all["data"][2]["requester"]["type"], "api_key");
    assert_eq!(all["data"][0]["policy"], "refunds");
    assert_eq!(all["data"][1]["policy"], "default");

    // An operator rejects the contract: it ends (the default policy).
    let (s, body) = app
        .post(
            &format!("{requests}/{r2}/decisions"),
            &d.ops[1],
            json!({"decision": "reject"}),
        )
        .await;
    assert_eq!((s, body["status"].as_str()), (200, Some("rejected")));
    let (_, page) = app.get(&list("status=rejected"), &d.owner).await;
    assert_eq!(ids(&page), [r2]);
    let (_, page) = app.get(&list("status=pending"), &d.owner).await;
    assert_eq!(ids(&page), [r3, r1]);
    let (_, page) = app.get(&list("action=payments."), &d.owner).await;
    assert_eq!(ids(&page), [r3, r1]);
    let (_, page) = app.get(&list("action=payments.refund"), &d.owner).await;
    assert_eq!(ids(&page), [r1]);
    let (_, page) = app.get(&list(&format!("agent_id={agent}")), &d.owner).await;
    assert_eq!(ids(&page), [r2]);

    // Waiting for each: never what they asked (or a key they made asked),
    // nor what they decided, nor what has ended.
    let waiting = list("waiting_for_me=true");
    let (_, page) = app.get(&waiting, &d.ops[0]).await;
    assert_eq!(ids(&page), [r1], "op0 asked r3");
    let (_, page) = app.get(&waiting, &d.ops[1]).await;
    assert_eq!(ids(&page), [r3, r1]);
    let (_, page) = app.get(&waiting, &d.owner).await;
    assert_eq!(ids(&page), [r3], "the owner made the key that asked r1");
    for op in [&d.ops[1], &d.ops[2]] {
        let (s, body) = app
            .post(
                &format!("{requests}/{r1}/decisions"),
                op,
                json!({"decision": "approve"}),
            )
            .await;
        assert_eq!(s, 200, "{body}");
    }
    // r1 is now at its owners' stage: no operator may decide it.
    let (_, page) = app.get(&waiting, &d.ops[0]).await;
    assert_eq!(ids(&page), Vec::<String>::new());
    let (_, page) = app.get(&waiting, &d.ops[1]).await;
    assert_eq!(ids(&page), [r3]);
    let (_, owner2) = app
        .member(&admin, &d.tid, "owner2@acme.test", "owner")
        .await;
    let (_, page) = app.get(&waiting, &owner2).await;
    assert_eq!(ids(&page), [r3, r1]);
    let (s, body) = app.get(&waiting, &d.key).await;
    assert_eq!((s, code(&body)), (403, "user_token_required"), "{body}");

    // Pages, newest first, and bad filters named.
    let (_, first) = app.get(&list("limit=2"), &d.owner).await;
    assert_eq!(ids(&first), [r3, r2]);
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    let (_, second) = app
        .get(&list(&format!("limit=2&cursor={cursor}")), &d.owner)
        .await;
    assert_eq!(ids(&second), [r1]);
    assert_eq!(second["next_cursor"], Value::Null);
    for (query, why) in [
        ("cursor=nonsense", "invalid_cursor"),
        ("status=waiting", "invalid_status"),
        ("limit=0", "invalid_limit"),
        ("action=Not An Action", "validation_failed"),
    ] {
        let (s, body) = app.get(&list(query), &d.owner).await;
        assert_eq!((s, code(&body)), (422, why), "{query}: {body}");
    }

    // Whoever may decide reads and lists, without approvals.request; a
    // viewer holds neither and reads nothing.
    let (s, _) = app
        .post(
            &format!("/v1/tenants/{}/roles", d.tid),
            &d.owner,
            json!({"name": "finance", "permissions": ["approvals.decide"]}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, finance) = app
        .member(&admin, &d.tid, "finance@acme.test", "finance")
        .await;
    let (s, page) = app.get(&waiting, &finance).await;
    assert_eq!((s, ids(&page)), (200, vec![r3.to_string()]), "{page}");
    let (s, one) = app.get(&format!("{requests}/{r3}"), &finance).await;
    assert_eq!((s, one["payload"]["order"].as_i64()), (200, Some(1042)));
    let (_, viewer) = app
        .member(&admin, &d.tid, "viewer@acme.test", "viewer")
        .await;
    let (s, body) = app.get(&requests, &viewer).await;
    assert_eq!((s, code(&body)), (403, "missing_permission"), "{body}");

    // Another tenant's list holds none of these.
    let (other, other_owner) = tenant_with(&app, &admin, "Bravo", "owner").await;
    let (s, page) = app
        .get(&format!("/v1/tenants/{other}/approvals"), &other_owner)
        .await;
    assert_eq!((s, ids(&page)), (200, Vec::<String>::new()));
}

#[tokio::test]
async fn an_expiring_request_reads_expired_at_once_wakes_its_waiter_and_is_recorded_once() {
    use std::sync::Arc;
    use tenantry_api::clock::ManualClock;
    let clock = Arc::new(ManualClock::default());
    let app = TestApp::spawn_with_clock(
        &[("TENANTRY_INVITATION_EXPIRY_SCAN", "100ms")],
        clock.clone(),
    )
    .await;
    let admin = app.admin_token().await;
    let d = desk(&app, &admin).await;
    let requests = format!("/v1/tenants/{}/approvals", d.tid);
    let (_, req) = app.post(&requests, &d.key, ask("late-1")).await;
    let id = req["id"].as_str().unwrap().to_string();
    let one = format!("{requests}/{id}");
    assert!(req["expires_at"].is_string(), "{req}");

    // A minute before its hour is up it is pending; the waiter sees the
    // expiry the job records once the hour has passed.
    clock.advance(chrono::Duration::minutes(59));
    let (_, now) = app.get(&one, &d.key).await;
    assert_eq!(now["status"], "pending");
    let version = now["version"].as_i64().unwrap();
    let started = std::time::Instant::now();
    let waiting = format!("{one}?wait=30&after_version={version}");
    let (waited, ()) = tokio::join!(app.get(&waiting, &d.key), async {
        clock.advance(chrono::Duration::minutes(2));
    });
    assert_eq!(waited.0, 200, "{waited:?}");
    assert_eq!(waited.1["status"], "expired", "{waited:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(25));
    // The long poll answers once the job has recorded it.
    assert!(
        waited.1["version"].as_i64().unwrap() > version,
        "{waited:?}"
    );

    let (s, body) = app
        .post(
            &format!("{one}/decisions"),
            &d.ops[0],
            json!({"decision": "approve"}),
        )
        .await;
    assert_eq!((s, code(&body)), (409, "approval_expired"), "{body}");
    let (s, body) = app.post(&format!("{one}/cancel"), &d.key, json!({})).await;
    assert_eq!((s, code(&body)), (409, "approval_expired"), "{body}");
    let (_, page) = app
        .get(&format!("{requests}?status=expired"), &d.owner)
        .await;
    assert_eq!(ids(&page), [id.as_str()]);
    let (_, page) = app
        .get(&format!("{requests}?waiting_for_me=true"), &d.ops[0])
        .await;
    assert_eq!(ids(&page), Vec::<String>::new());

    // A request that expires unrecorded still reads expired at once.
    let (_, late) = app.post(&requests, &d.key, ask("late-2")).await;
    clock.advance(chrono::Duration::minutes(61));
    let (_, page) = app
        .get(&format!("{requests}?status=expired"), &d.owner)
        .await;
    assert!(ids(&page).contains(&late["id"].as_str().unwrap().to_string()));

    // The job records each expiry once, however often it runs.
    let mut expired = 0;
    for _ in 0..100 {
        expired = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE event_type = 'ApprovalExpired'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if expired == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(expired, 2);
}

#[tokio::test]
async fn a_cancel_racing_the_deciding_approval_has_one_winner() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let d = desk(&app, &admin).await;
    let requests = format!("/v1/tenants/{}/approvals", d.tid);
    for round in 0..5 {
        // Uncovered: the default policy, whose one approval decides it.
        let mut contract = ask(&format!("race-{round}"));
        contract["action"] = json!("contracts.send");
        let (_, req) = app.post(&requests, &d.key, contract).await;
        let one = format!("{requests}/{}", req["id"].as_str().unwrap());
        let (deciding, cancelling) = (format!("{one}/decisions"), format!("{one}/cancel"));
        let (approve, cancel) = tokio::join!(
            app.post(&deciding, &d.ops[0], json!({"decision": "approve"})),
            app.post(&cancelling, &d.key, json!({})),
        );
        let (_, now) = app.get(&one, &d.key).await;
        let outcome = (approve.0, cancel.0, now["status"].as_str().unwrap());
        assert!(
            outcome == (200, 409, "approved") || outcome == (409, 200, "canceled"),
            "round {round}: {approve:?} {cancel:?} {now}"
        );
        let loser = if approve.0 == 409 {
            &approve.1
        } else {
            &cancel.1
        };
        assert_eq!(code(loser), "approval_not_pending", "{loser}");
    }
}
