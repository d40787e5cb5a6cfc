//! The `users` read model: one row per user, for admin lists and `/v1/me`.
//! It holds the person's email and name opened (`crate::personal`) until
//! they are erased, then neither; and the email's keyed hash.

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use sqlx::{FromRow, PgConnection, PgPool};
use tenantry_domain::user::{UserEvent, UserStatus};
use tenantry_domain::EventCodec;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::page::Page;
use crate::personal::{self, Opener, PersonalProjection};
use crate::runtime::ProjectionError;
use crate::tenants::like_pattern;

/// The `users` projection.
pub const PROJECTION: PersonalProjection = PersonalProjection {
    name: "users",
    tables: &["users_view"],
    reads: &[("user", "*")],
    apply: |tx, e, opener| apply(tx, e, opener).boxed(),
};

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct UserRow {
    pub id: Uuid,
    /// `None` once the person is erased.
    pub email: Option<String>,
    pub name: Option<String>,
    pub status: String,
    pub is_platform_admin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

async fn apply(
    tx: &mut PgConnection,
    e: &StoredEvent,
    opener: &dyn Opener,
) -> Result<(), ProjectionError> {
    if e.aggregate_type != "user" {
        return Ok(());
    }
    let event = UserEvent::decode(&e.event_type, e.event_version, e.payload.clone())
        .map_err(|err| ProjectionError::decode(e, err))?;
    let at = e.recorded_at;
    let id = Uuid::parse_str(&e.aggregate_id).map_err(|err| ProjectionError::decode(e, err))?;
    let update = |sql: &'static str| sqlx::query(sql).bind(id).bind(at);
    let q = match event {
        UserEvent::UserRegistered {
            user_id,
            email,
            email_hash,
            name,
            platform_admin,
        } => {
            let email = personal::open(tx, opener, e, "email", &email).await?;
            let name = personal::open(tx, opener, e, "name", &name).await?;
            // Erased before this was projected: the account is closed too.
            let status = if email.is_some() { "active" } else { "erased" };
            sqlx::query(
                "INSERT INTO users_view (id, email, email_hash, name, status, is_platform_admin, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (id) DO NOTHING",
            )
            .bind(user_id)
            .bind(email)
            .bind(email_hash.as_str().to_string())
            .bind(name)
            .bind(status)
            .bind(platform_admin)
            .bind(at)
        }
        UserEvent::UserRenamed { name } => {
            let name = personal::open(tx, opener, e, "name", &name).await?;
            update("UPDATE users_view SET name = $3, updated_at = $2 WHERE id = $1").bind(name)
        }
        UserEvent::UserErased { .. } => update(
            "UPDATE users_view SET email = NULL, name = NULL, status = 'erased', \
                    is_platform_admin = false, updated_at = $2 WHERE id = $1",
        ),
        UserEvent::UserPasswordChanged {} => {
            update("UPDATE users_view SET updated_at = $2 WHERE id = $1")
        }
        UserEvent::UserDeactivated {} => {
            update("UPDATE users_view SET status = 'deactivated', updated_at = $2 WHERE id = $1")
        }
        UserEvent::UserReactivated {} => {
            update("UPDATE users_view SET status = 'active', updated_at = $2 WHERE id = $1")
        }
        UserEvent::PlatformAdminGranted {} => {
            update("UPDATE users_view SET is_platform_admin = true, updated_at = $2 WHERE id = $1")
        }
        UserEvent::PlatformAdminRevoked {} => {
            update("UPDATE users_view SET is_platform_admin = false, updated_at = $2 WHERE id = $1")
        }
    };
    q.execute(&mut *tx).await?;
    Ok(())
}

const COLUMNS: &str = "id, email, name, status, is_platform_admin, created_at, updated_at";

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub status: Option<UserStatus>,
    /// Case-insensitive substring of the email or the name.
    pub q: Option<String>,
    /// Members of this tenant only.
    pub tenant_id: Option<Uuid>,
    /// Holding this role (in `tenant_id`, or in any tenant).
    pub role: Option<String>,
}

/// Users: [`crate::ReadModels::users`].
#[derive(Clone, Copy)]
pub struct Users<'a> {
    pub(crate) pool: &'a PgPool,
}

impl Users<'_> {
    pub async fn get(&self, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users_view WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool)
            .await
    }

    pub async fn list(
        &self,
        filter: &UserFilter,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Page<UserRow>, sqlx::Error> {
        let rows: Vec<UserRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM users_view \
              WHERE ($1::text IS NULL OR status = $1) \
                AND ($2::text IS NULL OR email ILIKE $2 OR name ILIKE $2) \
                AND ($3::uuid IS NULL OR id > $3) \
                AND ($5::uuid IS NULL AND $6::text IS NULL OR EXISTS ( \
                    SELECT 1 FROM members_view m WHERE m.user_id = users_view.id \
                       AND ($5::uuid IS NULL OR m.tenant_id = $5) \
                       AND ($6::text IS NULL OR m.role = $6))) \
              ORDER BY id LIMIT $4"
        ))
        .bind(filter.status.map(UserStatus::as_str))
        .bind(filter.q.as_deref().map(like_pattern))
        .bind(after)
        .bind(limit + 1)
        .bind(filter.tenant_id)
        .bind(filter.role.as_deref())
        .fetch_all(self.pool)
        .await?;
        Ok(Page::from_rows(rows, limit, |r| r.id))
    }
}
