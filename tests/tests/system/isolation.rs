//! Proof of tenant isolation. Every route of the router's own table is
//! called by every kind of caller against tenant A's resources, and the
//! status must match this file's independent access specification. A route
//! added to the table without a line in `SPEC` fails the test; so does any
//! response to a caller outside A that mentions one of A's ids or names.
//!
//! The observed matrix must equal the one in `docs/PERMISSIONS.md`; run with
//! `TENANTRY_BLESS=1` to rewrite it there after a deliberate change.

use std::collections::BTreeSet;

use jsonwebtoken::{EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};
use tenantry_api::credentials::{AccessClaims, JwtKeys};
use tenantry_tests::{code, TestApp, JWT_SECRET};

/// What a route demands, as this test understands the product.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    Public,
    /// Public, but a bearer sent along must be a person's live token
    /// (accepting an invitation while signed in).
    PublicOrPerson,
    User,
    Admin,
    Perm(&'static str),
    PermOrSelf(&'static str),
    /// Any one of these permissions.
    AnyOf(&'static [&'static str]),
    /// Only the metrics token: every caller here is refused.
    MetricsToken,
}

use Need::*;

/// Approval requests are read by whoever may ask for approval or decide.
const APPROVAL_READERS: &[&str] = &["approvals.request", "approvals.decide"];

const SPEC: &[(&str, &str, Need)] = &[
    ("GET", "/healthz", Public),
    ("GET", "/readyz", Public),
    ("GET", "/openapi.json", Public),
    ("GET", "/docs", Public),
    ("GET", "/docs/{file}", Public),
    ("GET", "/metrics", MetricsToken),
    ("POST", "/v1/auth/login", Public),
    ("POST", "/v1/auth/refresh", Public),
    ("POST", "/v1/auth/logout", User),
    ("GET", "/v1/me", User),
    ("PATCH", "/v1/me", User),
    ("POST", "/v1/me/password", User),
    ("POST", "/v1/tenants", Admin),
    ("GET", "/v1/tenants", Admin),
    ("GET", "/v1/tenants/{tid}", Perm("tenant.read")),
    ("PATCH", "/v1/tenants/{tid}", Perm("tenant.manage")),
    ("DELETE", "/v1/tenants/{tid}", Admin),
    ("POST", "/v1/tenants/{tid}/suspend", Admin),
    ("POST", "/v1/tenants/{tid}/reactivate", Admin),
    ("GET", "/v1/tenants/{tid}/events", Perm("audit.read")),
    ("GET", "/v1/tenants/{tid}/events/stream", Perm("audit.read")),
    ("GET", "/v1/admin/events", Admin),
    ("GET", "/v1/tenants/{tid}/audit/export", Perm("audit.read")),
    ("GET", "/v1/tenants/{tid}/audit/verify", Perm("audit.read")),
    (
        "GET",
        "/v1/tenants/{tid}/audit/checkpoints",
        Perm("audit.read"),
    ),
    (
        "POST",
        "/v1/tenants/{tid}/audit/checkpoints",
        Perm("audit.read"),
    ),
    ("GET", "/v1/audit/keys", Public),
    ("GET", "/v1/tenants/{tid}/members", Perm("members.read")),
    ("POST", "/v1/tenants/{tid}/members", Admin),
    (
        "PUT",
        "/v1/tenants/{tid}/members/{user_id}",
        Perm("members.manage"),
    ),
    (
        "DELETE",
        "/v1/tenants/{tid}/members/{user_id}",
        PermOrSelf("members.manage"),
    ),
    ("GET", "/v1/tenants/{tid}/roles", Perm("members.read")),
    ("POST", "/v1/tenants/{tid}/roles", Perm("roles.manage")),
    (
        "PUT",
        "/v1/tenants/{tid}/roles/{role}",
        Perm("roles.manage"),
    ),
    (
        "DELETE",
        "/v1/tenants/{tid}/roles/{role}",
        Perm("roles.manage"),
    ),
    ("POST", "/v1/tenants/{tid}/api-keys", Perm("apikeys.manage")),
    ("GET", "/v1/tenants/{tid}/api-keys", Perm("apikeys.manage")),
    (
        "DELETE",
        "/v1/tenants/{tid}/api-keys/{key_id}",
        Perm("apikeys.manage"),
    ),
    (
        "GET",
        "/v1/tenants/{tid}/approval-policies",
        Perm("approvals.manage"),
    ),
    (
        "PATCH",
        "/v1/tenants/{tid}/approval-policies",
        Perm("approvals.manage"),
    ),
    (
        "PUT",
        "/v1/tenants/{tid}/approval-policies/{policy}",
        Perm("approvals.manage"),
    ),
    (
        "DELETE",
        "/v1/tenants/{tid}/approval-policies/{policy}",
        Perm("approvals.manage"),
    ),
    (
        "POST",
        "/v1/tenants/{tid}/approvals",
        Perm("approvals.request"),
    ),
    (
        "GET",
        "/v1/tenants/{tid}/approvals",
        AnyOf(APPROVAL_READERS),
    ),
    (
        "GET",
        "/v1/tenants/{tid}/approvals/{approval_id}",
        AnyOf(APPROVAL_READERS),
    ),
    (
        "POST",
        "/v1/tenants/{tid}/approvals/{approval_id}/decisions",
        Perm("approvals.decide"),
    ),
    (
        "POST",
        "/v1/tenants/{tid}/approvals/{approval_id}/cancel",
        Perm("approvals.request"),
    ),
    (
        "POST",
        "/v1/tenants/{tid}/approvals/{approval_id}/comments",
        AnyOf(APPROVAL_READERS),
    ),
    ("GET", "/v1/tenants/{tid}/agents", Perm("agents.read")),
    ("POST", "/v1/tenants/{tid}/agents", Perm("agents.manage")),
    (
        "GET",
        "/v1/tenants/{tid}/agents/{agent_id}",
        Perm("agents.read"),
    ),
    (
        "PUT",
        "/v1/tenants/{tid}/agents/{agent_id}",
        Perm("agents.manage"),
    ),
    (
        "POST",
        "/v1/tenants/{tid}/agents/{agent_id}/pause",
        Perm("agents.manage"),
    ),
    (
        "POST",
        "/v1/tenants/{tid}/agents/{agent_id}/resume",
        Perm("agents.manage"),
    ),
    (
        "POST",
        "/v1/tenants/{tid}/agents/{agent_id}/archive",
        Perm("agents.manage"),
    ),
    ("POST", "/v1/tenants/{tid}/usage", Perm("usage.write")),
    ("GET", "/v1/tenants/{tid}/usage", Perm("usage.read")),
    ("GET", "/v1/admin/usage", Admin),
    (
        "POST",
        "/v1/tenants/{tid}/reservations",
        Perm("usage.write"),
    ),
    (
        "DELETE",
        "/v1/tenants/{tid}/reservations/{reservation_id}",
        Perm("usage.write"),
    ),
    ("GET", "/v1/tenants/{tid}/budgets", Perm("usage.read")),
    ("GET", "/v1/admin/price-book", Admin),
    ("POST", "/v1/admin/price-book", Admin),
    ("GET", "/v1/tenants/{tid}/llm-keys", Perm("llm_keys.read")),
    (
        "POST",
        "/v1/tenants/{tid}/llm-keys",
        Perm("llm_keys.manage"),
    ),
    (
        "PUT",
        "/v1/tenants/{tid}/llm-keys/{key}",
        Perm("llm_keys.manage"),
    ),
    (
        "DELETE",
        "/v1/tenants/{tid}/llm-keys/{key}",
        Perm("llm_keys.manage"),
    ),
    (
        "POST",
        "/v1/tenants/{tid}/llm-keys/{provider}/resolve",
        Perm("llm_keys.use"),
    ),
    (
        "GET",
        "/v1/tenants/{tid}/llm-keys/{key}/accesses",
        Perm("audit.read"),
    ),
    (
        "POST",
        "/v1/tenants/{tid}/invitations",
        Perm("invitations.manage"),
    ),
    (
        "GET",
        "/v1/tenants/{tid}/invitations",
        Perm("invitations.manage"),
    ),
    (
        "GET",
        "/v1/tenants/{tid}/invitations/{invitation_id}",
        Perm("invitations.manage"),
    ),
    (
        "DELETE",
        "/v1/tenants/{tid}/invitations/{invitation_id}",
        Perm("invitations.manage"),
    ),
    (
        "POST",
        "/v1/tenants/{tid}/invitations/{invitation_id}/resend",
        Perm("invitations.manage"),
    ),
    ("GET", "/v1/invitations/{token}", Public),
    ("POST", "/v1/invitations/{token}/accept", PublicOrPerson),
    ("POST", "/v1/admin/users", Admin),
    ("GET", "/v1/admin/users", Admin),
    ("GET", "/v1/admin/users/{id}", Admin),
    ("POST", "/v1/admin/users/{id}/deactivate", Admin),
    ("POST", "/v1/admin/users/{id}/erase", Admin),
    ("POST", "/v1/admin/users/{id}/reactivate", Admin),
    ("POST", "/v1/admin/users/{id}/grant-platform-admin", Admin),
    ("POST", "/v1/admin/users/{id}/revoke-platform-admin", Admin),
    ("POST", "/v1/admin/impersonate", Admin),
    ("POST", "/v1/admin/stop-impersonation", User),
    ("POST", "/v1/admin/plans", Admin),
    ("GET", "/v1/admin/plans", Admin),
    ("GET", "/v1/admin/billing/reconciliation", Admin),
    ("POST", "/v1/admin/plans/{plan}/versions", Admin),
    ("POST", "/v1/admin/plans/{plan}/retire", Admin),
    ("GET", "/v1/tenants/{tid}/billing", Perm("billing.read")),
    (
        "GET",
        "/v1/tenants/{tid}/billing/invoices",
        Perm("billing.read"),
    ),
    ("PUT", "/v1/tenants/{tid}/billing/plan", Admin),
    (
        "POST",
        "/v1/tenants/{tid}/billing/checkout",
        Perm("billing.manage"),
    ),
    (
        "POST",
        "/v1/tenants/{tid}/billing/portal",
        Perm("billing.manage"),
    ),
    ("POST", "/v1/webhooks/stripe", Public),
];

/// Routes that end the caller's session or the tenant: probed last, in this order.
const LAST: &[(&str, &str)] = &[
    ("DELETE", "/v1/tenants/{tid}"),
    ("POST", "/v1/admin/stop-impersonation"),
    ("POST", "/v1/auth/logout"),
];

#[derive(Debug, Clone)]
enum Kind {
    /// A person in tenant A holding these permissions.
    MemberOfA(Vec<&'static str>),
    /// A person with no standing in A.
    Outsider,
    PlatformAdmin,
    /// A key of A with every permission.
    KeyAWith,
    /// A key of A with every permission but the one the route needs.
    KeyAWithout,
    KeyB,
    Anonymous,
    /// A token that can no longer authenticate.
    Dead,
}

struct Caller {
    name: &'static str,
    kind: Kind,
    token: Option<String>,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Allowed,
    Status(u16, &'static str),
}

impl Outcome {
    fn cell(&self) -> String {
        match self {
            Self::Allowed => "✓".into(),
            Self::Status(s, _) => s.to_string(),
        }
    }
}

fn expect(need: Need, kind: &Kind) -> Outcome {
    let forbidden_admin = Outcome::Status(403, "platform_admin_required");
    let hidden = Outcome::Status(404, "tenant_not_found");
    match (need, kind) {
        (Public, _) => Outcome::Allowed,
        (PublicOrPerson, Kind::KeyAWith | Kind::KeyAWithout | Kind::KeyB) => {
            Outcome::Status(403, "user_token_required")
        }
        (PublicOrPerson, Kind::Dead) => Outcome::Status(401, "invalid_token"),
        (PublicOrPerson, _) => Outcome::Allowed,
        (_, Kind::Anonymous) => Outcome::Status(401, "missing_token"),
        (MetricsToken, _) => Outcome::Status(401, "invalid_token"),
        (_, Kind::Dead) => Outcome::Status(401, "invalid_token"),
        (User, Kind::KeyAWith | Kind::KeyAWithout | Kind::KeyB) => {
            Outcome::Status(403, "user_token_required")
        }
        (User, _) => Outcome::Allowed,
        (Admin, Kind::PlatformAdmin) => Outcome::Allowed,
        (Admin, _) => forbidden_admin,
        // Nobody but an API key ever reads a provider key's plaintext.
        (Perm("llm_keys.use"), Kind::PlatformAdmin) => Outcome::Status(403, "missing_permission"),
        (Perm(_) | PermOrSelf(_) | AnyOf(_), Kind::PlatformAdmin | Kind::KeyAWith) => {
            Outcome::Allowed
        }
        (Perm(_) | PermOrSelf(_) | AnyOf(_), Kind::Outsider | Kind::KeyB) => hidden,
        (Perm(_) | PermOrSelf(_) | AnyOf(_), Kind::KeyAWithout) => {
            Outcome::Status(403, "missing_permission")
        }
        (AnyOf(ps), Kind::MemberOfA(held)) => {
            if ps.iter().any(|p| held.contains(p)) {
                Outcome::Allowed
            } else {
                Outcome::Status(403, "missing_permission")
            }
        }
        (Perm(p) | PermOrSelf(p), Kind::MemberOfA(held)) => {
            if held.contains(&p) {
                Outcome::Allowed
            } else {
                Outcome::Status(403, "missing_permission")
            }
        }
    }
}

/// What the guard answered, read off a response.
fn observe(status: u16, body: &Value) -> Outcome {
    let guard_codes = [
        "missing_token",
        "invalid_token",
        "user_token_required",
        "platform_admin_required",
        "missing_permission",
        "tenant_not_found",
    ];
    match guard_codes.iter().find(|c| **c == code(body)) {
        Some(c) if status == 401 || status == 403 || status == 404 => Outcome::Status(status, c),
        _ => Outcome::Allowed,
    }
}

fn permissions_of(role: &str) -> Vec<&'static str> {
    // Owners and admins hold the whole catalogue but `llm_keys.use`.
    let all: Vec<&'static str> = ALL_PERMISSIONS
        .iter()
        .copied()
        .filter(|p| *p != "llm_keys.use")
        .collect();
    match role {
        "owner" | "admin" => all,
        "operator" => vec![
            "tenant.read",
            "members.read",
            "llm_keys.read",
            "billing.read",
            "usage.read",
            "usage.write",
            "agents.read",
            "approvals.request",
            "approvals.decide",
        ],
        "viewer" => vec![
            "tenant.read",
            "members.read",
            "llm_keys.read",
            "billing.read",
            "usage.read",
            "agents.read",
        ],
        "auditor" => vec![
            "tenant.read",
            "members.read",
            "billing.read",
            "usage.read",
            "audit.read",
        ],
        "desk-support" => CUSTOM_ROLE.to_vec(),
        other => panic!("no permissions known for {other}"),
    }
}

const CUSTOM_ROLE: &[&str] = &["tenant.read", "members.read", "audit.read"];

const ALL_PERMISSIONS: &[&str] = &[
    "tenant.read",
    "tenant.manage",
    "members.read",
    "members.manage",
    "roles.manage",
    "invitations.manage",
    "apikeys.manage",
    "llm_keys.read",
    "llm_keys.manage",
    "llm_keys.use",
    "billing.read",
    "billing.manage",
    "usage.read",
    "usage.write",
    "agents.read",
    "agents.manage",
    "approvals.request",
    "approvals.decide",
    "audit.read",
    "webhooks.manage",
    "approvals.manage",
];

/// A token for a live session that expired an hour ago.
fn expired_copy_of(token: &str) -> String {
    let keys = JwtKeys::new(JWT_SECRET.as_bytes(), std::time::Duration::from_secs(60));
    let claims = keys.verify(token).expect("a valid token to copy");
    let now = chrono::Utc::now().timestamp() as u64;
    let expired = AccessClaims {
        iat: now - 7200,
        exp: now - 3600,
        ..claims
    };
    jsonwebtoken::encode(
        &Header::default(),
        &expired,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("encode")
}

#[tokio::test]
async fn every_route_refuses_every_caller_outside_its_access() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;

    // Tenant A with one member per role, a custom role, and tenant B.
    let a = app.create_tenant(&admin, "Alpha Industries").await;
    let tid = a["id"].as_str().unwrap().to_string();
    let (owner_a, owner_a_token) = app.member(&admin, &tid, "owner@alpha.io", "owner").await;
    let (s, b) = app
        .post(
            &format!("/v1/tenants/{tid}/roles"),
            &owner_a_token,
            json!({ "name": "desk-support", "permissions": CUSTOM_ROLE }),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let mut a_secrets: Vec<String> = vec![
        tid.clone(),
        "Alpha Industries".into(),
        "alpha-industries".into(),
        "desk-support".into(),
        owner_a.clone(),
        "alpha.io".into(),
    ];
    let mut callers = vec![Caller {
        name: "owner A",
        kind: Kind::MemberOfA(permissions_of("owner")),
        token: Some(owner_a_token.clone()),
    }];
    let mut viewer_id = String::new();
    for (name, role) in [
        ("admin A", "admin"),
        ("operator A", "operator"),
        ("viewer A", "viewer"),
        ("auditor A", "auditor"),
        ("custom A", "desk-support"),
    ] {
        let (id, token) = app
            .member(&admin, &tid, &format!("{role}@alpha.io"), role)
            .await;
        if role == "viewer" {
            viewer_id = id.clone();
        }
        a_secrets.push(id);
        callers.push(Caller {
            name,
            kind: Kind::MemberOfA(permissions_of(role)),
            token: Some(token),
        });
    }
    let b = app.create_tenant(&admin, "Bravo Labs").await;
    let tid_b = b["id"].as_str().unwrap().to_string();
    let (_, owner_b) = app.member(&admin, &tid_b, "owner@bravo.io", "owner").await;
    callers.push(Caller {
        name: "owner B",
        kind: Kind::Outsider,
        token: Some(owner_b.clone()),
    });

    let (key_with_id, key_with) = app.api_key(&owner_a_token, &tid, ALL_PERMISSIONS).await;
    a_secrets.push(key_with_id);
    callers.push(Caller {
        name: "key A (with)",
        kind: Kind::KeyAWith,
        token: Some(key_with),
    });
    // One key per permission, lacking exactly that one.
    let mut keys_without = std::collections::HashMap::new();
    for p in ALL_PERMISSIONS {
        let rest: Vec<&str> = ALL_PERMISSIONS.iter().copied().filter(|q| q != p).collect();
        let (id, key) = app.api_key(&owner_a_token, &tid, &rest).await;
        a_secrets.push(id);
        keys_without.insert(p.to_string(), key);
    }
    // And one lacking both of the approval readers' permissions.
    let rest: Vec<&str> = ALL_PERMISSIONS
        .iter()
        .copied()
        .filter(|q| !APPROVAL_READERS.contains(q))
        .collect();
    let (id, key) = app.api_key(&owner_a_token, &tid, &rest).await;
    a_secrets.push(id);
    keys_without.insert(APPROVAL_READERS.join("+"), key);
    callers.push(Caller {
        name: "key A (without)",
        kind: Kind::KeyAWithout,
        token: None,
    });
    let (_, key_b) = app.api_key(&owner_b, &tid_b, ALL_PERMISSIONS).await;
    callers.push(Caller {
        name: "key B",
        kind: Kind::KeyB,
        token: Some(key_b),
    });
    callers.push(Caller {
        name: "no credentials",
        kind: Kind::Anonymous,
        token: None,
    });
    callers.push(Caller {
        name: "expired token",
        kind: Kind::Dead,
        token: Some(expired_copy_of(&owner_a_token)),
    });
    let (gone_id, gone_token) = app.member(&admin, &tid, "gone@alpha.io", "viewer").await;
    a_secrets.push(gone_id.clone());
    let (s, _) = app
        .post(
            &format!("/v1/admin/users/{gone_id}/deactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    callers.push(Caller {
        name: "deactivated user",
        kind: Kind::Dead,
        token: Some(gone_token),
    });
    let impersonating = callers.len();
    callers.push(Caller {
        name: "impersonating viewer A",
        kind: Kind::MemberOfA(permissions_of("viewer")),
        token: Some(app.impersonate(&admin, &viewer_id).await),
    });
    callers.push(Caller {
        name: "platform admin",
        kind: Kind::PlatformAdmin,
        token: Some(admin.clone()),
    });
    let outsiders: BTreeSet<&str> = [
        "owner B",
        "key B",
        "no credentials",
        "expired token",
        "deactivated user",
    ]
    .into();

    // The router's table and this file's spec list the same routes.
    let table = tenantry_api::routes::table();
    let routes: BTreeSet<(String, String)> = table
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let spec: BTreeSet<(String, String)> = SPEC
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        routes.difference(&spec).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes without an access spec in this test"
    );
    assert_eq!(
        spec.difference(&routes).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "spec lines for routes that do not exist"
    );

    let mut order: Vec<usize> = (0..table.len()).collect();
    order.sort_by_key(|i| {
        let (m, p, _) = &table[*i];
        LAST.iter()
            .position(|(lm, lp)| m.as_str() == *lm && p == lp)
            .map_or(0, |pos| pos + 1)
    });
    // A live invitation (to an address nobody here signs in as), so the
    // public routes answer what they answer to a real link.
    let (s, invitation) = app
        .post(
            &format!("/v1/tenants/{tid}/invitations"),
            &owner_a_token,
            json!({ "email": "invitee@alpha.io", "role": "viewer" }),
        )
        .await;
    assert_eq!(s, 201, "{invitation}");
    let invitation_token = invitation["token"].as_str().unwrap().to_string();
    let fill = |path: &str| {
        path.replace("{tid}", &tid)
            .replace("{user_id}", &uuid::Uuid::now_v7().to_string())
            .replace("{role}", "desk-support")
            .replace("{key_id}", &uuid::Uuid::now_v7().to_string())
            .replace("{key}", &uuid::Uuid::now_v7().to_string())
            .replace("{invitation_id}", &uuid::Uuid::now_v7().to_string())
            .replace("{agent_id}", &uuid::Uuid::now_v7().to_string())
            .replace("{reservation_id}", "res-1")
            .replace("{token}", &invitation_token)
            .replace("{provider}", "openai")
            .replace("{file}", "swagger-ui.css")
            .replace("{plan}", "no-such-plan")
            .replace("{policy}", "no-such-policy")
            .replace("{approval_id}", &uuid::Uuid::now_v7().to_string())
            .replace("{id}", &uuid::Uuid::now_v7().to_string())
    };

    let mut failures = Vec::new();
    let mut matrix = Vec::new();
    for i in order {
        let (method, template, access) = &table[i];
        let need = SPEC
            .iter()
            .find(|(m, p, _)| method.as_str() == *m && template == p)
            .map(|(_, _, n)| *n)
            .expect("checked above");
        if LAST.iter().any(|(_, p)| p == template) && *template != "/v1/tenants/{tid}" {
            // Each session-ending probe gets a fresh impersonation token.
            callers[impersonating].token = Some(app.impersonate(&admin, &viewer_id).await);
        }
        let mut cells = Vec::new();
        for caller in &callers {
            let token = match (&caller.kind, need) {
                (Kind::KeyAWithout, Perm(p) | PermOrSelf(p)) => keys_without.get(p).cloned(),
                (Kind::KeyAWithout, AnyOf(ps)) => keys_without.get(&ps.join("+")).cloned(),
                (Kind::KeyAWithout, _) => keys_without.get("tenant.read").cloned(),
                _ => caller.token.clone(),
            };
            let body =
                matches!(*method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));
            let (status, response) = app
                .send(method.clone(), &fill(template), token.as_deref(), body)
                .await;
            let expected = expect(need, &caller.kind);
            let observed = observe(status, &response);
            if observed != expected || status >= 500 {
                failures.push(format!(
                    "{method} {template} as {}: expected {expected:?}, got {status} {response}",
                    caller.name
                ));
            }
            // Whoever holds an invitation link is its intended reader: the
            // public view names the tenant to anyone with the token.
            let capability = template.contains("{token}");
            if outsiders.contains(caller.name) && !capability {
                let text = response.to_string();
                for secret in &a_secrets {
                    if text.contains(secret.as_str()) {
                        failures.push(format!(
                            "{method} {template} as {} revealed {secret}: {text}",
                            caller.name
                        ));
                    }
                }
            }
            cells.push(observed.cell());
        }
        matrix.push(format!(
            "| `{method} {template}` | {} | {} |",
            access.describe(),
            cells.join(" | ")
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let header = format!(
        "| Route | Needs | {} |\n|---|---|{}",
        callers
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(callers.len())
    );
    let rendered = format!("{header}\n{}\n", matrix.join("\n"));
    check_docs(&rendered);
}

const START: &str = "<!-- isolation-matrix:start -->\n";
const END: &str = "<!-- isolation-matrix:end -->";

/// `docs/PERMISSIONS.md` shows exactly the matrix this test observed.
fn check_docs(rendered: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/PERMISSIONS.md");
    let doc = std::fs::read_to_string(&path).expect("docs/PERMISSIONS.md exists");
    let (Some(start), Some(end)) = (doc.find(START), doc.find(END)) else {
        panic!("docs/PERMISSIONS.md lacks the isolation-matrix markers");
    };
    let current = &doc[start + START.len()..end];
    if current == rendered {
        return;
    }
    if std::env::var("TENANTRY_BLESS").is_ok_and(|v| v == "1") {
        let updated = format!("{}{START}{rendered}{}", &doc[..start], &doc[end..]);
        std::fs::write(&path, updated).expect("write docs/PERMISSIONS.md");
        return;
    }
    panic!(
        "docs/PERMISSIONS.md's matrix differs from the observed one; \
         rerun with TENANTRY_BLESS=1 after checking the change:\n{rendered}"
    );
}

#[tokio::test]
async fn another_tenants_child_ids_are_not_found_under_this_tenants_path() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let a = app.create_tenant(&admin, "Alpha").await;
    let b = app.create_tenant(&admin, "Bravo").await;
    let (ta, tb) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let (_, owner_a) = app.member(&admin, ta, "owner@alpha.io", "owner").await;
    let (member_b, owner_b) = app.member(&admin, tb, "owner@bravo.io", "owner").await;
    app.post(
        &format!("/v1/tenants/{tb}/roles"),
        &owner_b,
        json!({ "name": "bravo-only", "permissions": ["tenant.read"] }),
    )
    .await;
    let (key_b, _) = app.api_key(&owner_b, tb, &["tenant.read"]).await;

    let (s, body) = app
        .put(
            &format!("/v1/tenants/{ta}/members/{member_b}"),
            &owner_a,
            json!({ "role": "viewer" }),
        )
        .await;
    assert_eq!((s, code(&body)), (404, "member_not_found"));
    let (s, body) = app
        .delete(&format!("/v1/tenants/{ta}/members/{member_b}"), &owner_a)
        .await;
    assert_eq!((s, code(&body)), (404, "member_not_found"));
    let (s, body) = app
        .put(
            &format!("/v1/tenants/{ta}/roles/bravo-only"),
            &owner_a,
            json!({ "permissions": ["tenant.read", "members.read"] }),
        )
        .await;
    assert_eq!((s, code(&body)), (404, "role_not_found"));
    let (s, body) = app
        .delete(&format!("/v1/tenants/{ta}/api-keys/{key_b}"), &owner_a)
        .await;
    assert_eq!((s, code(&body)), (404, "api_key_not_found"));

    // B is untouched.
    let (_, members) = app
        .get(&format!("/v1/tenants/{tb}/members"), &owner_b)
        .await;
    assert_eq!(members["data"][0]["role"], "owner");
    let (_, roles) = app.get(&format!("/v1/tenants/{tb}/roles"), &owner_b).await;
    assert_eq!(roles["data"][5]["permissions"], json!(["tenant.read"]));
    let (_, keys) = app
        .get(&format!("/v1/tenants/{tb}/api-keys"), &owner_b)
        .await;
    assert_eq!(keys["data"][0]["id"], json!(key_b));
}
