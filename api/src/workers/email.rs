//! Outbound email: the worker that drains `email_outbox` and the senders.
//!
//! The `outbox` projection inserts one row per InvitationCreated and
//! InvitationResent event, in the projector's transaction, so an event
//! yields exactly one row and nothing is lost when the process dies. The
//! worker locks due rows (`FOR UPDATE SKIP LOCKED`, so several instances
//! share the work), sends, and records the outcome in the same transaction:
//! a row is sent once in normal operation; a crash after the SMTP server
//! accepted but before the commit sends it again (at least once). Failures
//! are retried with exponential backoff and given up after
//! `TENANTRY_EMAIL_MAX_ATTEMPTS`, recorded as `failed`.

use std::time::Duration;

use chrono::Utc;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use tenantry_domain::tenant::{InvitationStatus, Tenant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::credentials::invitation_token;
use crate::service::invitations::accept_url;
use crate::state::AppState;
use crate::store::outbox::{OutboxRow, Outcome};

/// Where emails go.
pub enum Sender {
    /// No SMTP configured: each email, link included, is written to the log
    /// (target `tenantry::email`). For development only.
    Log,
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Sender {
    pub fn from_config(config: &crate::config::Config) -> Result<Self, String> {
        match &config.smtp_url {
            None => Ok(Self::Log),
            Some(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                .map(|b| Self::Smtp(b.timeout(Some(Duration::from_secs(20))).build()))
                .map_err(|e| format!("TENANTRY_SMTP_URL: {e}")),
        }
    }

    async fn send(&self, email: &Email, message: Message) -> Result<(), String> {
        match self {
            Self::Log => {
                tracing::info!(
                    target: "tenantry::email",
                    to = %email.to,
                    subject = %email.subject,
                    body = %email.text,
                    "email (no TENANTRY_SMTP_URL configured: logged instead of sent)"
                );
                Ok(())
            }
            Self::Smtp(transport) => transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }
}

/// An invitation email's content.
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn escape_html(raw: &str) -> String {
    raw.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The invitation email: names the tenant and the inviter, links to accept.
pub fn invitation_email(
    to: &str,
    tenant: &str,
    inviter: Option<&str>,
    role: &str,
    link: &str,
    expires: chrono::DateTime<Utc>,
) -> Email {
    let who = inviter.unwrap_or("An administrator");
    let expires = expires.format("%Y-%m-%d %H:%M UTC");
    let subject = format!("{who} invited you to {tenant}");
    let text = format!(
        "{who} invited you to join {tenant} as {role}.\n\n\
         Accept the invitation:\n{link}\n\n\
         The link works once and expires on {expires}. \
         If you did not expect this email, ignore it.\n"
    );
    let html = format!(
        "<!doctype html><html><body>\
         <p><strong>{who}</strong> invited you to join <strong>{tenant}</strong> as {role}.</p>\
         <p><a href=\"{link}\">Accept the invitation</a></p>\
         <p>The link works once and expires on {expires}. If you did not expect this email, ignore it.</p>\
         </body></html>",
        who = escape_html(who),
        tenant = escape_html(tenant),
        role = escape_html(role),
        link = escape_html(link),
    );
    Email {
        to: to.to_string(),
        subject,
        text,
        html,
    }
}

fn message(from: &str, email: &Email) -> Result<Message, String> {
    let from: Mailbox = from.parse().map_err(|e| format!("from address: {e}"))?;
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|e| format!("recipient address: {e}"))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| e.to_string())
}

/// Start the outbox worker; it stops when `shutdown` turns true.
pub fn start(
    state: AppState,
    sender: Sender,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match drain(&state, &sender).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "email outbox batch failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return;
            }
        }
    })
}

/// Work off due outbox rows; returns how many were handled.
pub async fn drain(state: &AppState, sender: &Sender) -> Result<usize, sqlx::Error> {
    let mut batch = state.store.outbox().claim_due(10).await?;
    let rows = std::mem::take(&mut batch.rows);
    for row in &rows {
        let attempts = row.attempts + 1;
        let outcome = match deliver(state, sender, row).await {
            Delivery::Sent => Outcome::Sent,
            Delivery::Superseded => Outcome::Superseded,
            Delivery::Failed(e) if attempts as u32 >= state.config.email_max_attempts => {
                Outcome::Failed(e)
            }
            Delivery::Failed(error) => {
                let factor = 2u32.saturating_pow((attempts - 1).max(0) as u32);
                Outcome::Retry {
                    error,
                    after: state.config.email_retry_base * factor,
                }
            }
        };
        crate::metrics::record_email(match &outcome {
            Outcome::Sent => "sent",
            Outcome::Superseded => "superseded",
            Outcome::Retry { .. } => "retry",
            Outcome::Failed(_) => "failed",
        });
        if let Outcome::Failed(e) | Outcome::Retry { error: e, .. } = &outcome {
            let status = if matches!(outcome, Outcome::Failed(_)) {
                "failed"
            } else {
                "pending"
            };
            tracing::warn!(outbox_id = %row.id, attempts, status, error = %e, "sending an email failed");
        }
        batch.record(row, &outcome).await?;
    }
    batch.finish().await?;
    Ok(rows.len())
}

enum Delivery {
    Sent,
    /// Revoked, accepted, expired or resent since: nothing to send.
    Superseded,
    Failed(String),
}

async fn deliver(state: &AppState, sender: &Sender, row: &OutboxRow) -> Delivery {
    let (tenant_id, invitation_id) = (row.tenant_id, row.invitation_id);
    let tenant = match state.store.load::<Tenant>(tenant_id.into()).await {
        Ok((tenant, _)) => tenant,
        Err(e) => return Delivery::Failed(format!("loading the tenant: {e:?}")),
    };
    let Some(invitation) = tenant.invitations.get(&invitation_id) else {
        return Delivery::Superseded;
    };
    if invitation.status_at(state.now()) != InvitationStatus::Pending
        || invitation.token_version as i32 != row.token_version
    {
        return Delivery::Superseded;
    }
    let token = match invitation_token(
        state.config.jwt_secret_bytes(),
        invitation_id,
        invitation.token_version,
    ) {
        Ok(t) => t,
        Err(e) => return Delivery::Failed(e.to_string()),
    };
    let inviter = match invitation_inviter(state, invitation.invited_by).await {
        Ok(name) => name,
        Err(e) => return Delivery::Failed(e.to_string()),
    };
    let tenant_name = tenant.name.as_ref().map_or("", |n| n.as_str());
    let email = invitation_email(
        &row.recipient,
        tenant_name,
        inviter.as_deref(),
        invitation.role.as_str(),
        &accept_url(state, &token),
        invitation.expires_at,
    );
    let message = match message(&state.config.email_from, &email) {
        Ok(m) => m,
        Err(e) => return Delivery::Failed(e),
    };
    match sender.send(&email, message).await {
        Ok(()) => Delivery::Sent,
        Err(e) => Delivery::Failed(e),
    }
}

/// The inviter's name, from the log's invitation (the invitations read
/// model may not show the invitation yet when its email goes out).
async fn invitation_inviter(
    state: &AppState,
    invited_by: Option<Uuid>,
) -> Result<Option<String>, sqlx::Error> {
    let Some(id) = invited_by else {
        return Ok(None);
    };
    Ok(state.reads.users().get(id).await?.and_then(|u| u.name))
}
