//! The `tenants` read model: one row per tenant, for lists and lookups.

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use tenantry_domain::tenant::{TenantEvent, TenantStatus};
use tenantry_domain::EventCodec;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::page::Page;
use crate::runtime::{ProjectionError, TableProjection};

/// The `tenants` projection.
pub const PROJECTION: TableProjection = TableProjection {
    name: "tenants",
    tables: &["tenants_view"],
    apply: |tx, e| apply(tx, e).boxed(),
};

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct TenantRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub status: String,
    pub settings: Value,
    pub suspended_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

async fn apply(tx: &mut PgConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
    if e.aggregate_type != "tenant" {
        return Ok(());
    }
    let event = TenantEvent::decode(&e.event_type, e.event_version, e.payload.clone())
        .map_err(|err| ProjectionError::decode(e, err))?;
    let id = e.tenant_id;
    let at = e.recorded_at;
    let q = match event {
        TenantEvent::TenantCreated {
            tenant_id,
            name,
            slug,
            settings,
        } => sqlx::query(
            "INSERT INTO tenants_view (id, name, slug, status, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, 'active', $4, $5, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(name.as_str().to_string())
        .bind(slug.as_str().to_string())
        .bind(Value::Object(settings.as_map().clone()))
        .bind(at),
        TenantEvent::TenantRenamed { name, .. } => {
            sqlx::query("UPDATE tenants_view SET name = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(name.as_str().to_string())
                .bind(at)
        }
        TenantEvent::TenantSettingsUpdated { settings } => {
            sqlx::query("UPDATE tenants_view SET settings = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(Value::Object(settings.as_map().clone()))
                .bind(at)
        }
        TenantEvent::TenantSuspended { reason } => sqlx::query(
            "UPDATE tenants_view SET status = 'suspended', suspended_reason = $2, updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(reason)
        .bind(at),
        TenantEvent::TenantReactivated {} => sqlx::query(
            "UPDATE tenants_view SET status = 'active', suspended_reason = NULL, updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(at),
        TenantEvent::TenantArchived {} => sqlx::query(
            "UPDATE tenants_view SET status = 'archived', updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(at),
        // Roster, roles and invitations have their own read models.
        TenantEvent::MemberAdded { .. }
        | TenantEvent::MemberRoleChanged { .. }
        | TenantEvent::MemberRemoved { .. }
        | TenantEvent::RoleDefined { .. }
        | TenantEvent::RoleUpdated { .. }
        | TenantEvent::RoleDeleted { .. }
        | TenantEvent::InvitationCreated { .. }
        | TenantEvent::InvitationResent { .. }
        | TenantEvent::InvitationRevoked { .. }
        | TenantEvent::InvitationAccepted { .. }
        | TenantEvent::InvitationExpired { .. } => return Ok(()),
    };
    q.execute(&mut *tx).await?;
    Ok(())
}

const COLUMNS: &str = "id, name, slug, status, settings, suspended_reason, created_at, updated_at";

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<TenantRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants_view WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    /// `None`: every status but archived.
    pub status: Option<TenantStatus>,
    /// Case-insensitive substring of the name or the slug.
    pub q: Option<String>,
}

/// Tenants in id (creation) order, after the cursor id.
pub async fn list(
    pool: &PgPool,
    filter: &TenantFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Page<TenantRow>, sqlx::Error> {
    let pattern = filter.q.as_deref().map(like_pattern);
    let rows: Vec<TenantRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenants_view \
          WHERE ($1::text IS NULL AND status <> 'archived' OR status = $1) \
            AND ($2::text IS NULL OR name ILIKE $2 OR slug ILIKE $2) \
            AND ($3::uuid IS NULL OR id > $3) \
          ORDER BY id LIMIT $4"
    ))
    .bind(filter.status.map(TenantStatus::as_str))
    .bind(pattern)
    .bind(after)
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::from_rows(rows, limit, |r| r.id))
}

/// `%q%` with LIKE's wildcards in `q` taken literally.
pub fn like_pattern(q: &str) -> String {
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}
