//! Tenant API-key credentials beside the log: the SHA-256 of each secret
//! and what a request needs to authorize it. Writers run inside the ApiKey
//! command's transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub secret_hash: Vec<u8>,
    pub prefix: String,
    pub name: String,
    pub permissions: Vec<&'static str>,
    pub created_by: Value,
    pub expires_at: Option<DateTime<Utc>>,
}

pub(crate) async fn insert(tx: &mut PgConnection, key: &NewKey) -> Result<(), sqlx::Error> {
    sqlx::query!(
"INSERT INTO api_keys (id, tenant_id, secret_hash, prefix, name, permissions, created_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
key.id,
key.tenant_id,
&key.secret_hash,
&key.prefix,
&key.name,
&key.permissions as &[&str],
&key.created_by,
key.expires_at
)
    .execute(tx)
    .await?;
    Ok(())
}

pub(crate) async fn revoke(tx: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        id
    )
    .execute(tx)
    .await?;
    Ok(())
}

/// A key as a request sees it.
#[derive(Debug, Clone, FromRow)]
pub struct KeyAuth {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub permissions: Vec<String>,
    pub revoked: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The key's tenant's status (`None` if the tenant is unknown).
    pub tenant_status: Option<String>,
    /// The tenant's subscription status (`None`: no plan yet).
    pub billing_status: Option<String>,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub past_due_since: Option<DateTime<Utc>>,
}

impl KeyAuth {
    /// Neither revoked nor expired at `now`.
    pub fn usable_at(&self, now: DateTime<Utc>) -> bool {
        !self.revoked && self.expires_at.is_none_or(|at| at > now)
    }
}

#[derive(Debug, FromRow)]
pub struct KeyRow {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    pub permissions: Vec<String>,
    pub created_by: Value,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Reading and touching API-key credentials: [`crate::Store::api_keys`].
#[derive(Clone, Copy)]
pub struct ApiKeys<'a> {
    pub(crate) pool: &'a PgPool,
}

impl ApiKeys<'_> {
    pub async fn find_by_secret(&self, hash: &[u8]) -> Result<Option<KeyAuth>, sqlx::Error> {
        sqlx::query_as!(
            KeyAuth,
            "SELECT k.id, k.tenant_id, k.permissions, k.last_used_at, t.status AS \"tenant_status?\", \
                    k.revoked_at IS NOT NULL AS \"revoked!\", k.expires_at, \
                    b.status AS \"billing_status?\", b.trial_ends_at AS \"trial_ends_at?\", \
                    b.past_due_since AS \"past_due_since?\" \
               FROM api_keys k LEFT JOIN tenants_view t ON t.id = k.tenant_id \
               LEFT JOIN billing_view b ON b.tenant_id = k.tenant_id \
              WHERE k.secret_hash = $1",
            hash
        )
        .fetch_optional(self.pool)
        .await
    }

    /// Record a use, at most once per `resolution`: no write on most requests.
    pub async fn touch(&self, id: Uuid, resolution: Duration) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "UPDATE api_keys SET last_used_at = now() \
              WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - $2::float8 * interval '1 second')",
            id,
            resolution.as_secs_f64()
        )
        .execute(self.pool)
        .await?;
        Ok(())
    }

    /// A tenant's live (unrevoked) keys in id order, after the cursor.
    pub async fn list(
        &self,
        tenant_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<crate::page::Page<KeyRow>, sqlx::Error> {
        let rows = sqlx::query_as!(
            KeyRow,
            "SELECT id, name, prefix, permissions, created_by, created_at, expires_at, last_used_at \
               FROM api_keys \
              WHERE tenant_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id > $2) \
              ORDER BY id LIMIT $3",
            tenant_id,
            after,
            limit + 1
        )
        .fetch_all(self.pool)
        .await?;
        Ok(crate::page::Page::from_rows(rows, limit, |r| r.id))
    }

    /// A live key of this tenant (another tenant's id is simply not found).
    pub async fn get(&self, tenant_id: Uuid, id: Uuid) -> Result<Option<KeyRow>, sqlx::Error> {
        sqlx::query_as!(
            KeyRow,
            "SELECT id, name, prefix, permissions, created_by, created_at, expires_at, last_used_at \
               FROM api_keys WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
            tenant_id,
            id
        )
        .fetch_optional(self.pool)
        .await
    }
}
