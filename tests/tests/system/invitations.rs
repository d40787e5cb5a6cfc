//! Invitations through HTTP: every endpoint and status, the double-accept
//! race, expiry, rate limits, and delivery through a real SMTP server.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tenantry_api::clock::{Clock, ManualClock, SystemClock};
use tenantry_tests::smtp::{closed_port, SmtpSink};
use tenantry_tests::{code, TestApp};

struct Acme {
    app: TestApp,
    admin: String,
    tid: String,
    owner_id: String,
    owner: String,
}

async fn acme(extra: &[(&str, &str)]) -> Acme {
    acme_on(extra, Arc::new(SystemClock)).await
}

async fn acme_on(extra: &[(&str, &str)], clock: Arc<dyn Clock>) -> Acme {
    let app = TestApp::spawn_with_clock(extra, clock).await;
    let admin = app.admin_token().await;
    let tenant = app.create_tenant(&admin, "Acme Robotics").await;
    let tid = tenant["id"].as_str().unwrap().to_string();
    let (owner_id, owner) = app.member(&admin, &tid, "owner@acme.io", "owner").await;
    Acme {
        app,
        admin,
        tid,
        owner_id,
        owner,
    }
}

impl Acme {
    fn invitations(&self) -> String {
        format!("/v1/tenants/{}/invitations", self.tid)
    }

    async fn invite(&self, email: &str, role: &str) -> (u16, Value) {
        self.app
            .post(
                &self.invitations(),
                &self.owner,
                json!({ "email": email, "role": role }),
            )
            .await
    }

    async fn public(
        &self,
        method: Method,
        token: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let path = match method {
            Method::GET => format!("/v1/invitations/{token}"),
            _ => format!("/v1/invitations/{token}/accept"),
        };
        self.app.send(method, &path, bearer, body).await
    }

    async fn accept(&self, token: &str, bearer: Option<&str>, body: Option<Value>) -> (u16, Value) {
        self.public(Method::POST, token, bearer, body).await
    }

    async fn invitation(&self, id: &str) -> Value {
        let (s, b) = self
            .app
            .get(&format!("{}/{id}", self.invitations()), &self.owner)
            .await;
        assert_eq!(s, 200, "{b}");
        b
    }

    /// Poll an invitation until `check` holds.
    async fn until(&self, id: &str, check: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            let inv = self.invitation(id).await;
            if check(&inv) {
                return inv;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "invitation {id} never reached the expected state: {}",
            self.invitation(id).await
        );
    }
}

#[tokio::test]
async fn invitations_are_created_listed_refused_and_revoked() {
    let a = acme(&[("TENANTRY_PUBLIC_URL", "https://portal.acme.test/")]).await;
    let (s, created) = a.invite("New.Person@Example.com", "operator").await;
    assert_eq!(s, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.len() >= 43, "at least 32 bytes, URL-safe");
    assert_eq!(
        created["accept_url"],
        format!("https://portal.acme.test/invite/{token}")
    );
    assert_eq!(created["status"], "pending");
    assert_eq!(created["role"], "operator");
    assert_eq!(created["invited_by"], json!(a.owner_id));
    let id = created["id"].as_str().unwrap().to_string();

    // The token is shown once: lists and reads never carry it.
    let (s, list) = a.app.get(&a.invitations(), &a.owner).await;
    assert_eq!(s, 200);
    assert_eq!(list["data"][0]["id"], json!(id));
    assert!(!list.to_string().contains(&token));
    assert!(!a.invitation(&id).await.to_string().contains(&token));
    // The log sender delivers (writes) the email; its status is visible.
    a.until(&id, |i| i["email_status"] == "sent").await;

    let (s, b) = a.invite("new.person@example.COM", "viewer").await;
    assert_eq!((s, code(&b)), (409, "invitation_pending"));
    let (s, b) = a.invite("owner@acme.io", "viewer").await;
    assert_eq!((s, code(&b)), (409, "already_member"));
    let (s, b) = a.invite("not-an-email", "viewer").await;
    assert_eq!((s, code(&b)), (422, "validation_failed"));
    let (s, b) = a.invite("x@y.io", "ghost").await;
    assert_eq!((s, code(&b)), (422, "unknown_role"));

    // Nobody invites above their permissions.
    a.app
        .post(
            &format!("/v1/tenants/{}/roles", a.tid),
            &a.owner,
            json!({ "name": "recruiter", "permissions": ["invitations.manage", "tenant.read"] }),
        )
        .await;
    let (_, recruiter) = a
        .app
        .member(&a.admin, &a.tid, "recruiter@acme.io", "recruiter")
        .await;
    let (s, b) = a
        .app
        .post(
            &a.invitations(),
            &recruiter,
            json!({ "email": "friend@x.io", "role": "viewer" }),
        )
        .await;
    assert_eq!((s, code(&b)), (403, "role_escalation"));

    // Pending invitations hold seats: owner, recruiter and one invitation fill 3.
    a.app
        .patch(
            &format!("/v1/tenants/{}", a.tid),
            &a.admin,
            json!({ "settings": { "max_seats": 3 } }),
        )
        .await;
    let (s, b) = a.invite("fourth@x.io", "viewer").await;
    assert_eq!((s, code(&b)), (409, "seat_limit_reached"));

    // The admin's "users" page: members with pending invitations beside them.
    let members = format!("/v1/tenants/{}/members", a.tid);
    let (s, page) = a
        .app
        .get(&format!("{members}?include=invitations"), &a.owner)
        .await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["invitations"][0]["id"], json!(id));
    assert!(!page.to_string().contains(&token));
    let (_, plain) = a.app.get(&members, &a.owner).await;
    assert!(plain.get("invitations").is_none());
    let (s, b) = a
        .app
        .get(&format!("{members}?include=invitations"), &recruiter)
        .await;
    assert_eq!(
        (s, code(&b)),
        (403, "missing_permission"),
        "recruiter lacks members.read"
    );
    let (s, b) = a
        .app
        .get(&format!("{members}?include=everything"), &a.owner)
        .await;
    assert_eq!((s, code(&b)), (422, "invalid_include"));

    // Revoke: once, then it is no longer pending; the link is dead.
    let one = format!("{}/{id}", a.invitations());
    let (s, _) = a.app.delete(&one, &a.owner).await;
    assert_eq!(s, 204);
    let (s, b) = a.app.delete(&one, &a.owner).await;
    assert_eq!((s, code(&b)), (409, "invitation_not_pending"));
    let (s, b) = a.public(Method::GET, &token, None, None).await;
    assert_eq!((s, code(&b)), (410, "invitation_revoked"));
    let (s, b) = a
        .accept(
            &token,
            None,
            Some(json!({ "name": "N", "password": "password-123" })),
        )
        .await;
    assert_eq!((s, code(&b)), (410, "invitation_revoked"));
    let (_, revoked) = a
        .app
        .get(&format!("{}?status=revoked", a.invitations()), &a.owner)
        .await;
    assert_eq!(revoked["data"].as_array().unwrap().len(), 1);
    let (s, b) = a
        .app
        .get(&format!("{}?status=maybe", a.invitations()), &a.owner)
        .await;
    assert_eq!((s, code(&b)), (422, "invalid_status"));
    let (s, b) = a.public(Method::GET, "no-such-token", None, None).await;
    assert_eq!((s, code(&b)), (404, "invitation_not_found"));
    let (s, b) = a
        .app
        .get(
            &format!("{}/{}", a.invitations(), uuid::Uuid::now_v7()),
            &a.owner,
        )
        .await;
    assert_eq!((s, code(&b)), (404, "invitation_not_found"));
}

#[tokio::test]
async fn an_invitee_signs_up_or_signs_in_and_a_forwarded_link_is_useless() {
    let a = acme(&[]).await;
    // A newcomer: sees the invitation, signs up while accepting, lands in the tenant.
    let (_, created) = a.invite("newcomer@x.io", "operator").await;
    let token = created["token"].as_str().unwrap().to_string();
    let (s, seen) = a.public(Method::GET, &token, None, None).await;
    assert_eq!(s, 200, "{seen}");
    assert_eq!(
        seen["tenant"],
        json!({ "id": a.tid, "name": "Acme Robotics" })
    );
    assert_eq!(seen["email"], "newcomer@x.io");
    assert_eq!(seen["role"], "operator");
    assert_eq!(seen["invited_by_name"], "Test User");
    let (s, b) = a.accept(&token, None, None).await;
    assert_eq!((s, code(&b)), (422, "validation_failed"));
    let (s, joined) = a
        .accept(
            &token,
            None,
            Some(json!({ "name": "Nia Newcomer", "password": "password-123" })),
        )
        .await;
    assert_eq!(s, 200, "{joined}");
    assert_eq!(joined["tenant_id"], json!(a.tid));
    assert_eq!(joined["role"], "operator");
    let access = joined["access_token"].as_str().unwrap();
    let (_, me) = a.app.get("/v1/me", access).await;
    assert_eq!(me["tenants"][0]["tenant_id"], json!(a.tid));
    assert_eq!(me["tenants"][0]["role"], "operator");
    let (s, b) = a.accept(&token, Some(access), None).await;
    assert_eq!((s, code(&b)), (410, "invitation_used"));
    let (s, b) = a.public(Method::GET, &token, None, None).await;
    assert_eq!((s, code(&b)), (410, "invitation_used"));

    // An existing user: must sign in, as the invited email, not someone else.
    a.app
        .create_user(&a.admin, "existing@x.io", "password-123")
        .await;
    let (_, created) = a.invite("Existing@X.io", "viewer").await;
    let token = created["token"].as_str().unwrap().to_string();
    let (s, b) = a
        .accept(
            &token,
            None,
            Some(json!({ "name": "Imposter", "password": "password-123" })),
        )
        .await;
    assert_eq!((s, code(&b)), (401, "sign_in_required"));
    let (s, b) = a.accept(&token, Some(&a.owner), None).await;
    assert_eq!((s, code(&b)), (403, "invitation_email_mismatch"));
    let existing = a.app.token_for("existing@x.io", "password-123").await;
    let (s, joined) = a.accept(&token, Some(&existing), None).await;
    assert_eq!(s, 200, "{joined}");
    assert_eq!(joined, json!({ "tenant_id": a.tid, "role": "viewer" }));
    let (s, b) = a.accept(&token, Some("not-a-token"), None).await;
    assert_eq!((s, code(&b)), (410, "invitation_used"));

    // The whole lifecycle is in the audit trail, with actors and no tokens.
    let events: Vec<(String, Value, String)> = sqlx::query_as(
        "SELECT event_type, metadata->'actor', payload::text || metadata::text FROM events \
          WHERE event_type LIKE 'Invitation%' ORDER BY position",
    )
    .fetch_all(&a.app.pool)
    .await
    .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "InvitationCreated",
            "InvitationAccepted",
            "InvitationCreated",
            "InvitationAccepted"
        ]
    );
    assert_eq!(events[0].1, json!({ "type": "user", "id": a.owner_id }));
    for (_, _, text) in &events {
        assert!(!text.contains(&token));
    }
}

#[tokio::test]
async fn two_simultaneous_accepts_make_one_membership() {
    let a = acme(&[]).await;
    let invitee = a
        .app
        .create_user(&a.admin, "racer@x.io", "password-123")
        .await;
    let invitee_id = invitee["id"].as_str().unwrap().to_string();
    let bearer = a.app.token_for("racer@x.io", "password-123").await;
    for round in 0..3 {
        let (_, created) = a.invite("racer@x.io", "viewer").await;
        let token = created["token"].as_str().unwrap().to_string();
        let (x, y) = tokio::join!(
            a.accept(&token, Some(&bearer), None),
            a.accept(&token, Some(&bearer), None)
        );
        let mut statuses = [x.0, y.0];
        statuses.sort();
        assert_eq!(statuses, [200, 410], "round {round}: {x:?} {y:?}");
        let loser = if x.0 == 410 { &x.1 } else { &y.1 };
        assert_eq!(code(loser), "invitation_used");
        let members: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE event_type = 'MemberAdded' AND payload->>'user_id' = $1",
        )
        .bind(&invitee_id)
        .fetch_one(&a.app.pool)
        .await
        .unwrap();
        assert_eq!(
            members,
            round + 1,
            "exactly one membership per accepted invitation"
        );
        // Leave again so the next round can invite them anew.
        let (s, _) = a
            .app
            .delete(
                &format!("/v1/tenants/{}/members/{invitee_id}", a.tid),
                &bearer,
            )
            .await;
        assert_eq!(s, 204);
    }
}

#[tokio::test]
async fn a_resend_kills_the_old_link() {
    let a = acme(&[]).await;
    let (_, created) = a.invite("late@x.io", "viewer").await;
    let (old, id) = (
        created["token"].as_str().unwrap().to_string(),
        created["id"].as_str().unwrap().to_string(),
    );
    let (s, resent) = a
        .app
        .post(
            &format!("{}/{id}/resend", a.invitations()),
            &a.owner,
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{resent}");
    let new = resent["token"].as_str().unwrap();
    assert_ne!(new, old);
    assert!(resent["accept_url"].as_str().unwrap().ends_with(new));
    let (s, b) = a.public(Method::GET, &old, None, None).await;
    assert_eq!((s, code(&b)), (404, "invitation_not_found"));
    let (s, _) = a.public(Method::GET, new, None, None).await;
    assert_eq!(s, 200);
    let resent_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'InvitationResent'")
            .fetch_one(&a.app.pool)
            .await
            .unwrap();
    assert_eq!(resent_events, 1);
}

#[tokio::test]
async fn a_lapsed_invitation_is_expired_at_once_and_recorded_soon_after() {
    let clock = Arc::new(ManualClock::default());
    let a = acme_on(
        &[
            ("TENANTRY_INVITATION_TTL", "1h"),
            ("TENANTRY_INVITATION_EXPIRY_SCAN", "200ms"),
        ],
        clock.clone(),
    )
    .await;
    let (_, created) = a.invite("slow@x.io", "viewer").await;
    let token = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    // Still pending a minute before its expiry; expired a moment after it.
    clock.advance(chrono::Duration::minutes(59));
    assert_eq!(a.invitation(&id).await["status"], "pending");
    clock.advance(chrono::Duration::minutes(2));
    let (s, b) = a.public(Method::GET, &token, None, None).await;
    assert_eq!((s, code(&b)), (410, "invitation_expired"));
    assert_eq!(a.invitation(&id).await["status"], "expired");
    let mut recorded = 0;
    for _ in 0..100 {
        recorded = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE event_type = 'InvitationExpired'",
        )
        .fetch_one(&a.app.pool)
        .await
        .unwrap();
        if recorded > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recorded, 1);
    let (s, b) = a
        .app
        .post(
            &format!("{}/{id}/resend", a.invitations()),
            &a.owner,
            json!({}),
        )
        .await;
    assert_eq!((s, code(&b)), (409, "invitation_not_pending"));
}

#[tokio::test]
async fn public_invitation_routes_are_rate_limited_per_address() {
    let a = acme(&[("TENANTRY_PUBLIC_RATE_LIMIT", "3")]).await;
    for _ in 0..3 {
        let (s, _) = a.public(Method::GET, "guess", None, None).await;
        assert_eq!(s, 404);
    }
    let r = a
        .app
        .client
        .get(a.app.url("/v1/invitations/guess"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(code(&body), "rate_limited");
}

#[tokio::test]
async fn the_invitation_email_is_delivered_over_smtp_with_text_and_html() {
    let sink = SmtpSink::start().await;
    let a = acme(&[
        ("TENANTRY_SMTP_URL", &sink.url()),
        ("TENANTRY_EMAIL_FROM", "Acme Portal <portal@acme.test>"),
        ("TENANTRY_PUBLIC_URL", "https://portal.acme.test"),
    ])
    .await;
    let (_, created) = a.invite("mail.me@x.io", "operator").await;
    let token = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    let messages = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 1);
    let raw = &messages[0];
    // Quoted-printable may fold long lines; compare the unfolded text.
    let unfolded = raw
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    assert!(unfolded.contains("To: mail.me@x.io"), "{raw}");
    assert!(
        unfolded.contains("From: \"Acme Portal\" <portal@acme.test>")
            || unfolded.contains("From: Acme Portal <portal@acme.test>"),
        "{raw}"
    );
    assert!(unfolded.contains("multipart/alternative"));
    assert!(unfolded.contains("text/plain") && unfolded.contains("text/html"));
    assert!(unfolded.contains("Acme Robotics"), "names the tenant");
    assert!(unfolded.contains("Test User"), "names the inviter");
    assert!(unfolded.contains(&format!("https://portal.acme.test/invite/{token}")));
    a.until(&id, |i| i["email_status"] == "sent").await;

    // A resend sends the new link, once.
    let (_, resent) = a
        .app
        .post(
            &format!("{}/{id}/resend", a.invitations()),
            &a.owner,
            json!({}),
        )
        .await;
    let new = resent["token"].as_str().unwrap();
    let messages = sink.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 2);
    let second = messages
        .iter()
        .map(|m| m.replace("=\r\n", "").replace("=\n", ""))
        .filter(|m| m.contains(new))
        .count();
    assert_eq!(second, 1);
}

#[tokio::test]
async fn a_restart_between_the_event_and_the_send_still_sends_exactly_one_email() {
    let port = closed_port();
    let smtp = format!("smtp://127.0.0.1:{port}");
    let settings = [
        ("TENANTRY_SMTP_URL", smtp.as_str()),
        ("TENANTRY_EMAIL_RETRY_BASE", "100ms"),
    ];
    let a = acme(&settings).await;
    let (_, created) = a.invite("after.restart@x.io", "viewer").await;
    let id = created["id"].as_str().unwrap().to_string();
    // The event is committed; the first send fails (no server yet).
    a.until(&id, |i| i["email_attempts"].as_i64().unwrap_or(0) >= 1)
        .await;
    assert_eq!(a.invitation(&id).await["email_status"], "pending");
    let db = a.app.stop().await;

    let sink = SmtpSink::start_on(port).await;
    let app = TestApp::spawn_on(db, &settings).await;
    let messages = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(messages.len(), 1);
    // Exactly one email, by construction rather than by waiting: the event
    // made one outbox row (the restart's projector did not add another),
    // the worker only sends pending rows, and that row is now sent.
    // (The SMTP server has the message a moment before the worker records it.)
    let id = uuid::Uuid::parse_str(&id).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let rows: Vec<(String, i32)> =
            sqlx::query_as("SELECT status, attempts FROM email_outbox WHERE invitation_id = $1")
                .bind(id)
                .fetch_all(&app.pool)
                .await
                .unwrap();
        if rows.iter().all(|(status, _)| status != "pending") {
            break rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never recorded: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rows.len(), 1, "one outbox row for one event");
    let (status, attempts) = &rows[0];
    assert_eq!(status, "sent");
    assert!(*attempts >= 2);
    assert_eq!(sink.messages().len(), 1, "exactly one email");
}

#[tokio::test]
async fn failed_sends_are_retried_with_backoff_and_given_up() {
    let smtp = format!("smtp://127.0.0.1:{}", closed_port());
    let a = acme(&[
        ("TENANTRY_SMTP_URL", smtp.as_str()),
        ("TENANTRY_EMAIL_RETRY_BASE", "50ms"),
        ("TENANTRY_EMAIL_MAX_ATTEMPTS", "3"),
    ])
    .await;
    let (_, created) = a.invite("unreachable@x.io", "viewer").await;
    let id = created["id"].as_str().unwrap().to_string();
    let failed = a.until(&id, |i| i["email_status"] == "failed").await;
    assert_eq!(failed["email_attempts"], 3);
    let error: Option<String> = sqlx::query_scalar("SELECT last_error FROM email_outbox")
        .fetch_one(&a.app.pool)
        .await
        .unwrap();
    assert!(error.is_some_and(|e| !e.is_empty()));
}
