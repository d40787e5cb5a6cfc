//! Approval policies over HTTP: defined, replaced and removed by holders of
//! `approvals.manage`; what they accept; one pattern per policy; what an
//! uncovered action gets; each tenant sees only its own.

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
