//! The `agents` read model: each tenant's agents with their settings and
//! status.

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use tenantry_domain::agent::{AgentEvent, AgentSettings};
use tenantry_domain::EventCodec;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::runtime::{Apply, ProjectionError, TableProjection};

/// The `agents` projection.
pub const PROJECTION: TableProjection = TableProjection {
    name: "agents",
    tables: &["agents_view"],
    reads: &[("agent", "*")],
    apply: Apply::EachEvent(|tx, e| apply(tx, e).boxed()),
};

async fn apply(tx: &mut PgConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
    if e.aggregate_type != "agent" {
        return Ok(());
    }
    let event = AgentEvent::decode(&e.event_type, e.event_version, e.payload.clone())
        .map_err(|err| ProjectionError::decode(e, err))?;
    let id = Uuid::parse_str(&e.aggregate_id).map_err(|err| ProjectionError::decode(e, err))?;
    let allow = |s: &AgentSettings| serde_json::to_value(&s.allow).unwrap_or(Value::Null);
    match event {
        AgentEvent::AgentCreated {
            tenant_id,
            settings,
            ..
        } => {
            sqlx::query(
                "INSERT INTO agents_view (id, tenant_id, name, description, monthly_budget_minor, \
                        allow, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $7) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(tenant_id)
            .bind(settings.name.as_str())
            .bind(&settings.description)
            .bind(settings.monthly_budget_minor)
            .bind(allow(&settings))
            .bind(e.recorded_at)
            .execute(&mut *tx)
            .await?;
        }
        AgentEvent::AgentUpdated { settings } => {
            sqlx::query(
                "UPDATE agents_view SET name = $2, description = $3, monthly_budget_minor = $4, \
                        allow = $5, updated_at = $6 WHERE id = $1",
            )
            .bind(id)
            .bind(settings.name.as_str())
            .bind(&settings.description)
            .bind(settings.monthly_budget_minor)
            .bind(allow(&settings))
            .bind(e.recorded_at)
            .execute(&mut *tx)
            .await?;
        }
        AgentEvent::AgentPaused {}
        | AgentEvent::AgentResumed {}
        | AgentEvent::AgentArchived { .. } => {
            let status = match event {
                AgentEvent::AgentPaused {} => "paused",
                AgentEvent::AgentResumed {} => "active",
                _ => "archived",
            };
            sqlx::query("UPDATE agents_view SET status = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(status)
                .bind(e.recorded_at)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// An agent as lists show it.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct AgentRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub description: String,
    pub monthly_budget_minor: Option<i64>,
    pub allow: Value,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// [`crate::ReadModels::agents`].
#[derive(Clone, Copy)]
pub struct Agents<'a> {
    pub(crate) pool: &'a PgPool,
}

const COLUMNS: &str = "id, tenant_id, name, description, monthly_budget_minor, allow, status, \
                       created_at, updated_at";

impl Agents<'_> {
    /// A tenant's agents, oldest first; archived ones only when asked.
    pub async fn list(
        &self,
        tenant_id: Uuid,
        include_archived: bool,
    ) -> Result<Vec<AgentRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM agents_view WHERE tenant_id = $1 \
               AND ($2 OR status <> 'archived') ORDER BY created_at, id LIMIT 1000"
        ))
        .bind(tenant_id)
        .bind(include_archived)
        .fetch_all(self.pool)
        .await
    }

    pub async fn get(&self, tenant_id: Uuid, id: Uuid) -> Result<Option<AgentRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM agents_view WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(self.pool)
        .await
    }
}
