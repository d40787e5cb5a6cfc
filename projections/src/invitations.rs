//! The `invitations` read model, and the `outbox` projection that turns
//! invitation events into emails to send. Both open the invitee's sealed
//! address (`crate::personal`); both forget it when the person with that
//! address is erased.

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use sqlx::{FromRow, PgConnection, PgPool};
use tenantry_domain::tenant::TenantEvent;
use tenantry_domain::user::UserEvent;
use tenantry_domain::EventCodec;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::page::Page;
use crate::personal::{self, Opener, PersonalProjection};
use crate::runtime::ProjectionError;

/// The `invitations` projection.
pub const PROJECTION: PersonalProjection = PersonalProjection {
    name: "invitations",
    tables: &["invitations_view"],
    reads: &[
        ("tenant", "InvitationCreated"),
        ("tenant", "InvitationResent"),
        ("tenant", "InvitationRevoked"),
        ("tenant", "InvitationExpired"),
        ("tenant", "InvitationAccepted"),
        ("user", "UserErased"),
    ],
    apply: |tx, e, opener| apply(tx, e, opener).boxed(),
};

/// The address of an erased person, by its hash.
fn erased(e: &StoredEvent) -> Result<Option<String>, ProjectionError> {
    if e.aggregate_type != "user" {
        return Ok(None);
    }
    match UserEvent::decode(&e.event_type, e.event_version, e.payload.clone()) {
        Ok(UserEvent::UserErased { email_hash, .. }) => Ok(Some(email_hash.as_str().to_string())),
        Ok(_) => Ok(None),
        Err(err) => Err(ProjectionError::decode(e, err)),
    }
}

fn tenant_event(e: &StoredEvent) -> Result<Option<TenantEvent>, ProjectionError> {
    if e.aggregate_type != "tenant" {
        return Ok(None);
    }
    TenantEvent::decode(&e.event_type, e.event_version, e.payload.clone())
        .map(Some)
        .map_err(|err| ProjectionError::decode(e, err))
}

async fn apply(
    tx: &mut PgConnection,
    e: &StoredEvent,
    opener: &dyn Opener,
) -> Result<(), ProjectionError> {
    if let Some(email_hash) = erased(e)? {
        sqlx::query("UPDATE invitations_view SET email = NULL WHERE email_hash = $1")
            .bind(email_hash)
            .execute(&mut *tx)
            .await?;
        return Ok(());
    }
    let Some(event) = tenant_event(e)? else {
        return Ok(());
    };
    let at = e.recorded_at;
    let status = |id: Uuid, status: &'static str| {
        sqlx::query("UPDATE invitations_view SET status = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(at)
    };
    let q = match event {
        TenantEvent::InvitationCreated {
            invitation_id,
            email,
            email_hash,
            role,
            invited_by,
            expires_at,
        } => sqlx::query(
            "INSERT INTO invitations_view (id, tenant_id, email, email_hash, role, status, invited_by, created_at, updated_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(invitation_id)
        .bind(e.tenant_id)
        .bind(personal::open(tx, opener, e, "email", &email).await?)
        .bind(email_hash.as_str().to_string())
        .bind(role.as_str().to_string())
        .bind(invited_by)
        .bind(at)
        .bind(expires_at),
        TenantEvent::InvitationResent {
            invitation_id,
            expires_at,
            ..
        } => sqlx::query(
            "UPDATE invitations_view SET expires_at = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(invitation_id)
        .bind(expires_at)
        .bind(at),
        TenantEvent::InvitationRevoked { invitation_id } => status(invitation_id, "revoked"),
        TenantEvent::InvitationExpired { invitation_id } => status(invitation_id, "expired"),
        TenantEvent::InvitationAccepted {
            invitation_id,
            user_id,
        } => sqlx::query(
            "UPDATE invitations_view SET status = 'accepted', accepted_by = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(invitation_id)
        .bind(user_id)
        .bind(at),
        _ => return Ok(()),
    };
    q.execute(&mut *tx).await?;
    Ok(())
}

/// The `outbox` projection: one email per InvitationCreated and
/// InvitationResent. It owns no table a rebuild may empty (emails already
/// sent must not go out again), and the event's position is unique in the
/// outbox, so a replay inserts nothing twice.
pub const OUTBOX: PersonalProjection = PersonalProjection {
    name: "outbox",
    tables: &[],
    reads: &[
        ("tenant", "InvitationCreated"),
        ("tenant", "InvitationResent"),
    ],
    apply: |tx, e, opener| apply_outbox(tx, e, opener).boxed(),
};

/// A resend goes to the first email's address; an address that no longer
/// opens (its person erased) queues a row that is not sent (`erased`).
async fn apply_outbox(
    tx: &mut PgConnection,
    e: &StoredEvent,
    opener: &dyn Opener,
) -> Result<(), ProjectionError> {
    let (invitation_id, token_version, sealed) = match tenant_event(e)? {
        Some(TenantEvent::InvitationCreated {
            invitation_id,
            email,
            email_hash,
            ..
        }) => (invitation_id, 1, Some((email, email_hash))),
        Some(TenantEvent::InvitationResent {
            invitation_id,
            token_version,
            ..
        }) => (invitation_id, token_version as i32, None),
        _ => return Ok(()),
    };
    let (recipient, recipient_hash) = match sealed {
        Some((email, hash)) => (
            personal::open(tx, opener, e, "email", &email).await?,
            Some(hash.as_str().to_string()),
        ),
        None => (None, None),
    };
    sqlx::query(
        "WITH first AS (SELECT recipient, recipient_hash FROM email_outbox \
                         WHERE invitation_id = $4 ORDER BY created_at LIMIT 1), \
              row AS (SELECT COALESCE($6, (SELECT recipient FROM first)) AS recipient, \
                             COALESCE($7, (SELECT recipient_hash FROM first), '') AS recipient_hash) \
         INSERT INTO email_outbox (id, event_position, tenant_id, invitation_id, token_version, recipient, recipient_hash, status) \
         SELECT $1, $2, $3, $4, $5, row.recipient, row.recipient_hash, \
                CASE WHEN row.recipient IS NULL THEN 'erased' ELSE 'pending' END FROM row \
         ON CONFLICT (event_position) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(e.position)
    .bind(e.tenant_id)
    .bind(invitation_id)
    .bind(token_version)
    .bind(recipient)
    .bind(recipient_hash)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// An invitation as lists show it; `status` is `expired` as soon as a
/// pending invitation passes its expiry, and `email_status` is the latest
/// email's delivery state.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct InvitationRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// `None` once the person with this address is erased.
    pub email: Option<String>,
    pub email_hash: String,
    pub role: String,
    pub status: String,
    pub invited_by: Option<Uuid>,
    pub invited_by_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub email_status: Option<String>,
    pub email_attempts: Option<i32>,
}

/// The invitations as their readers see them: a pending one whose expiry
/// has passed at `now` (the parameter named by `now`) reads `expired` at
/// once, before the expiry job records it. `now` comes from the caller's
/// clock, never the database's, so a test clock governs expiry too.
fn select(now: &str) -> String {
    format!(
        "SELECT * FROM (SELECT i.id, i.tenant_id, i.email, i.email_hash, i.role, \
            CASE WHEN i.status = 'pending' AND i.expires_at <= {now}::timestamptz THEN 'expired' ELSE i.status END AS status, \
            i.invited_by, u.name AS invited_by_name, i.created_at, i.expires_at, \
            o.status AS email_status, o.attempts AS email_attempts \
       FROM invitations_view i \
       LEFT JOIN users_view u ON u.id = i.invited_by \
       LEFT JOIN LATERAL (SELECT status, attempts FROM email_outbox \
                           WHERE invitation_id = i.id ORDER BY created_at DESC LIMIT 1) o ON true) v"
    )
}

/// Invitations: [`crate::ReadModels::invitations`].
#[derive(Clone, Copy)]
pub struct Invitations<'a> {
    pub(crate) pool: &'a PgPool,
}

impl Invitations<'_> {
    pub async fn list(
        &self,
        tenant_id: Uuid,
        status: Option<&str>,
        after: Option<Uuid>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Page<InvitationRow>, sqlx::Error> {
        let rows: Vec<InvitationRow> = sqlx::query_as(&format!(
            "{} WHERE v.tenant_id = $1 AND ($2::text IS NULL OR v.status = $2) \
                AND ($3::uuid IS NULL OR v.id > $3) ORDER BY v.id LIMIT $4",
            select("$5")
        ))
        .bind(tenant_id)
        .bind(status)
        .bind(after)
        .bind(limit + 1)
        .bind(now)
        .fetch_all(self.pool)
        .await?;
        Ok(Page::from_rows(rows, limit, |r| r.id))
    }

    pub async fn get(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<InvitationRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "{} WHERE v.tenant_id = $1 AND v.id = $2",
            select("$3")
        ))
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .fetch_optional(self.pool)
        .await
    }

    /// Pending invitations past their expiry, for the expiry job.
    pub async fn due_for_expiry(
        &self,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT tenant_id, id FROM invitations_view \
              WHERE status = 'pending' AND expires_at <= $2 ORDER BY expires_at LIMIT $1",
        )
        .bind(limit)
        .bind(now)
        .fetch_all(self.pool)
        .await
    }
}
