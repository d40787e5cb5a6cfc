//! The `access` read model: each tenant's roster (`members_view`) and custom
//! roles (`roles_view`), and the queries the API's guards and lists run.

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use sqlx::{FromRow, PgConnection, PgPool};
use tenantry_domain::tenant::TenantEvent;
use tenantry_domain::tenant::TenantStatus;
use tenantry_domain::EventCodec;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::page::Page;
use crate::runtime::{Apply, ProjectionError, TableProjection};

/// The `access` projection.
pub const PROJECTION: TableProjection = TableProjection {
    name: "access",
    tables: &["members_view", "roles_view"],
    reads: &[
        ("tenant", "MemberAdded"),
        ("tenant", "MemberRoleChanged"),
        ("tenant", "MemberRemoved"),
        ("tenant", "RoleDefined"),
        ("tenant", "RoleUpdated"),
        ("tenant", "RoleDeleted"),
    ],
    apply: Apply::EachEvent(|tx, e| apply(tx, e).boxed()),
};

async fn apply(tx: &mut PgConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
    if e.aggregate_type != "tenant" {
        return Ok(());
    }
    let event = TenantEvent::decode(&e.event_type, e.event_version, e.payload.clone())
        .map_err(|err| ProjectionError::decode(e, err))?;
    let (tenant, at) = (e.tenant_id, e.recorded_at);
    let q = match event {
        TenantEvent::MemberAdded { user_id, role } => sqlx::query(
            "INSERT INTO members_view (tenant_id, user_id, role, joined_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, user_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(user_id)
        .bind(role.as_str().to_string())
        .bind(at),
        TenantEvent::MemberRoleChanged { user_id, role, .. } => sqlx::query(
            "UPDATE members_view SET role = $3, updated_at = $4 WHERE tenant_id = $1 AND user_id = $2",
        )
        .bind(tenant)
        .bind(user_id)
        .bind(role.as_str().to_string())
        .bind(at),
        TenantEvent::MemberRemoved { user_id, .. } => {
            sqlx::query("DELETE FROM members_view WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant)
                .bind(user_id)
        }
        TenantEvent::RoleDefined { name, permissions } => sqlx::query(
            "INSERT INTO roles_view (tenant_id, name, permissions, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, name) DO NOTHING",
        )
        .bind(tenant)
        .bind(name.as_str().to_string())
        .bind(permissions.names())
        .bind(at),
        TenantEvent::RoleUpdated {
            name, permissions, ..
        } => sqlx::query(
            "UPDATE roles_view SET permissions = $3, updated_at = $4 WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant)
        .bind(name.as_str().to_string())
        .bind(permissions.names())
        .bind(at),
        TenantEvent::RoleDeleted { name } => {
            sqlx::query("DELETE FROM roles_view WHERE tenant_id = $1 AND name = $2")
                .bind(tenant)
                .bind(name.as_str().to_string())
        }
        _ => return Ok(()),
    };
    q.execute(&mut *tx).await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct MemberRow {
    pub user_id: Uuid,
    /// `None` once the person is erased.
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

const MEMBER_SELECT: &str = "SELECT m.user_id, u.email, u.name, m.role, m.joined_at \
       FROM members_view m JOIN users_view u ON u.id = m.user_id";

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct RoleRow {
    pub name: String,
    pub permissions: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One membership of a user, with its tenant.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct MembershipRow {
    pub tenant_id: Uuid,
    pub tenant_name: String,
    pub tenant_slug: String,
    #[sqlx(try_from = "String")]
    pub tenant_status: TenantStatus,
    pub role: String,
    pub custom_permissions: Option<Vec<String>>,
    pub joined_at: DateTime<Utc>,
}

/// Members, roles and memberships: [`crate::ReadModels::access`].
#[derive(Clone, Copy)]
pub struct Access<'a> {
    pub(crate) pool: &'a PgPool,
}

impl Access<'_> {
    /// A tenant's members in user-id order, optionally of one role.
    pub async fn members(
        &self,
        tenant_id: Uuid,
        role: Option<&str>,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Page<MemberRow>, sqlx::Error> {
        let rows: Vec<MemberRow> = sqlx::query_as(&format!(
            "{MEMBER_SELECT} WHERE m.tenant_id = $1 AND ($2::text IS NULL OR m.role = $2) \
                AND ($3::uuid IS NULL OR m.user_id > $3) ORDER BY m.user_id LIMIT $4"
        ))
        .bind(tenant_id)
        .bind(role)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(self.pool)
        .await?;
        Ok(Page::from_rows(rows, limit, |r| r.user_id))
    }

    pub async fn member(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<MemberRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "{MEMBER_SELECT} WHERE m.tenant_id = $1 AND m.user_id = $2"
        ))
        .bind(tenant_id)
        .bind(user_id)
        .fetch_optional(self.pool)
        .await
    }

    /// A tenant's custom roles by name.
    pub async fn custom_roles(&self, tenant_id: Uuid) -> Result<Vec<RoleRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT name, permissions, created_at, updated_at FROM roles_view \
              WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant_id)
        .fetch_all(self.pool)
        .await
    }

    /// The tenants a user belongs to, archived ones left out, by name.
    pub async fn memberships(&self, user_id: Uuid) -> Result<Vec<MembershipRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT t.id AS tenant_id, t.name AS tenant_name, t.slug AS tenant_slug, \
                    t.status AS tenant_status, m.role, r.permissions AS custom_permissions, m.joined_at \
               FROM members_view m \
               JOIN tenants_view t ON t.id = m.tenant_id AND t.status <> 'archived' \
               LEFT JOIN roles_view r ON r.tenant_id = m.tenant_id AND r.name = m.role \
              WHERE m.user_id = $1 ORDER BY t.name, t.id",
        )
        .bind(user_id)
        .fetch_all(self.pool)
        .await
    }

    /// Tenants where `user_id` is an owner and no other active user is: the
    /// tenants a deactivation of this user would leave without an owner.
    pub async fn sole_owner_of(&self, user_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT m.tenant_id FROM members_view m \
               JOIN tenants_view t ON t.id = m.tenant_id AND t.status <> 'archived' \
              WHERE m.user_id = $1 AND m.role = 'owner' \
                AND NOT EXISTS ( \
                    SELECT 1 FROM members_view o JOIN users_view u ON u.id = o.user_id \
                     WHERE o.tenant_id = m.tenant_id AND o.role = 'owner' \
                       AND o.user_id <> $1 AND u.status = 'active')",
        )
        .bind(user_id)
        .fetch_all(self.pool)
        .await
    }
}
