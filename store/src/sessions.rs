//! Authentication state kept beside the log: password hashes, sessions and
//! refresh-token hashes. Writers run inside a command's transaction.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

pub(crate) async fn set_password(
    tx: &mut PgConnection,
    user_id: Uuid,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO credentials (user_id, password_hash) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET password_hash = $2, updated_at = now()",
        user_id,
        hash
    )
    .execute(tx)
    .await?;
    Ok(())
}

pub(crate) async fn start_session(
    tx: &mut PgConnection,
    session_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    refresh_hash: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO sessions (id, user_id, expires_at) VALUES ($1, $2, $3)",
        session_id,
        user_id,
        expires_at
    )
    .execute(&mut *tx)
    .await?;
    add_refresh_token(tx, session_id, refresh_hash).await
}

/// An impersonation session: no refresh token, the admin recorded.
pub(crate) async fn start_impersonation(
    tx: &mut PgConnection,
    session_id: Uuid,
    user_id: Uuid,
    admin_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO sessions (id, user_id, expires_at, impersonator_id) VALUES ($1, $2, $3, $4)",
        session_id,
        user_id,
        expires_at,
        admin_id
    )
    .execute(tx)
    .await?;
    Ok(())
}

pub(crate) async fn add_refresh_token(
    tx: &mut PgConnection,
    session_id: Uuid,
    hash: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO refresh_tokens (token_hash, session_id) VALUES ($1, $2)",
        hash,
        session_id
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// Mark a refresh token used. False when it was already rotated, which
/// means another request used it first.
pub(crate) async fn rotate_refresh_token(
    tx: &mut PgConnection,
    hash: &[u8],
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1 AND rotated_at IS NULL",
        hash
    )
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn revoke_session(
    tx: &mut PgConnection,
    session_id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
"UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
session_id,
reason
)
    .execute(tx)
    .await?;
    Ok(())
}

pub(crate) async fn revoke_user_sessions(
    tx: &mut PgConnection,
    user_id: Uuid,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
"UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL",
user_id,
reason
)
    .execute(tx)
    .await?;
    Ok(done.rows_affected())
}

#[derive(Debug, FromRow)]
pub struct RefreshLookup {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub rotated: bool,
    pub revoked: bool,
    pub expired: bool,
}

/// What each authenticated request checks: the session is live, and
/// whether its user is a platform admin; on a tenant route, also the
/// caller's standing in that tenant, from the same query.
#[derive(Debug, Clone, FromRow)]
pub struct SessionAuth {
    pub is_platform_admin: bool,
    pub impersonator_id: Option<Uuid>,
    /// When the session ends (its refresh lifetime).
    pub expires_at: DateTime<Utc>,
    #[sqlx(flatten)]
    pub tenant: TenantAccess,
}

/// What the guard needs to authorize a caller in the tenant a path names.
/// The guard reads it in the same query as the caller's session or API key
/// ([`live_session`], `api_keys::find_by_secret`), so a tenant request costs one round trip to check.
#[derive(Debug, Clone, Default, FromRow)]
pub struct TenantAccess {
    /// `None`: no such tenant.
    pub tenant_status: Option<String>,
    /// `None`: not a member.
    pub role: Option<String>,
    /// The role's permissions when it is a custom role.
    pub custom_permissions: Option<Vec<String>>,
    /// The tenant's subscription status (`None`: no plan yet).
    pub billing_status: Option<String>,
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// When a failing payment made the subscription `past_due`.
    pub past_due_since: Option<DateTime<Utc>>,
}

/// Reading credentials and sessions: [`crate::Store::sessions`].
#[derive(Clone, Copy)]
pub struct Sessions<'a> {
    pub(crate) pool: &'a PgPool,
}

impl Sessions<'_> {
    pub async fn password_hash(&self, user_id: Uuid) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar!(
            "SELECT password_hash FROM credentials WHERE user_id = $1",
            user_id
        )
        .fetch_optional(self.pool)
        .await
    }

    pub async fn find_refresh_token(
        &self,
        hash: &[u8],
    ) -> Result<Option<RefreshLookup>, sqlx::Error> {
        sqlx::query_as!(
            RefreshLookup,
            "SELECT s.id AS session_id, s.user_id, rt.rotated_at IS NOT NULL AS \"rotated!\", \
                    s.revoked_at IS NOT NULL AS \"revoked!\", s.expires_at <= now() AS \"expired!\" \
               FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id \
              WHERE rt.token_hash = $1",
            hash
        )
        .fetch_optional(self.pool)
        .await
    }

    /// The session's live state and, when `tenant_id` is given, the user's
    /// standing in that tenant: one round trip for the guard.
    pub async fn live_session(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        tenant_id: Option<Uuid>,
    ) -> Result<Option<SessionAuth>, sqlx::Error> {
        let row = sqlx::query!(
            "SELECT COALESCE(u.is_platform_admin, false) AS \"is_platform_admin!\", s.impersonator_id, s.expires_at, \
                    t.status AS \"tenant_status?\", m.role AS \"role?\", r.permissions AS \"custom_permissions?\", \
                    b.status AS \"billing_status?\", b.trial_ends_at AS \"trial_ends_at?\", \
                    b.past_due_since AS \"past_due_since?\" \
               FROM sessions s \
               LEFT JOIN users_view u ON u.id = s.user_id \
               LEFT JOIN tenants_view t ON t.id = $3 \
               LEFT JOIN members_view m ON m.tenant_id = t.id AND m.user_id = s.user_id \
               LEFT JOIN roles_view r ON r.tenant_id = t.id AND r.name = m.role \
               LEFT JOIN billing_view b ON b.tenant_id = t.id \
              WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > now()",
            session_id,
            user_id,
            tenant_id
        )
        .fetch_optional(self.pool)
        .await?;
        Ok(row.map(|row| SessionAuth {
            is_platform_admin: row.is_platform_admin,
            impersonator_id: row.impersonator_id,
            expires_at: row.expires_at,
            tenant: TenantAccess {
                tenant_status: row.tenant_status,
                role: row.role,
                custom_permissions: row.custom_permissions,
                billing_status: row.billing_status,
                trial_ends_at: row.trial_ends_at,
                past_due_since: row.past_due_since,
            },
        }))
    }
}
