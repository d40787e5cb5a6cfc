//! The `llm_keys` read model: each tenant's provider keys, redacted (no
//! sealed secret, no data key), for lists and for finding a tenant's key
//! by provider.

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use tenantry_domain::llm_key::LlmKeyEvent;
use tenantry_domain::EventCodec;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::runtime::{Apply, ProjectionError, TableProjection};

/// The `llm_keys` projection.
pub const PROJECTION: TableProjection = TableProjection {
    name: "llm_keys",
    tables: &["llm_keys_view"],
    reads: &[("llm_key", "*")],
    apply: Apply::EachEvent(|tx, e| apply(tx, e).boxed()),
};

async fn apply(tx: &mut PgConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
    if e.aggregate_type != "llm_key" {
        return Ok(());
    }
    let event = LlmKeyEvent::decode(&e.event_type, e.event_version, e.payload.clone())
        .map_err(|err| ProjectionError::decode(e, err))?;
    let id = Uuid::parse_str(&e.aggregate_id).map_err(|err| ProjectionError::decode(e, err))?;
    let q = match event {
        LlmKeyEvent::LlmKeyAdded {
            provider,
            label,
            key_hint,
            ..
        } => sqlx::query(
            "INSERT INTO llm_keys_view (id, tenant_id, provider, label, key_hint, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(e.tenant_id)
        .bind(provider.as_str())
        .bind(label.map(|l| l.as_str().to_string()))
        .bind(key_hint)
        .bind(e.metadata.get("actor").cloned().unwrap_or(Value::Null))
        .bind(e.recorded_at),
        LlmKeyEvent::LlmKeyReplaced { key_hint, .. } => {
            sqlx::query("UPDATE llm_keys_view SET key_hint = $2, rotated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(key_hint)
                .bind(e.recorded_at)
        }
        LlmKeyEvent::LlmKeyDeleted { .. } => {
            sqlx::query("DELETE FROM llm_keys_view WHERE id = $1").bind(id)
        }
    };
    q.execute(&mut *tx).await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct LlmKeyRow {
    pub id: Uuid,
    pub provider: String,
    pub label: Option<String>,
    pub key_hint: String,
    pub created_by: Value,
    pub created_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    /// The latest resolve, from the access log.
    pub last_used_at: Option<DateTime<Utc>>,
}

const SELECT: &str = "SELECT k.id, k.provider, k.label, k.key_hint, k.created_by, k.created_at, \
            k.rotated_at, (SELECT max(a.accessed_at) FROM llm_key_accesses a WHERE a.key_id = k.id) AS last_used_at \
       FROM llm_keys_view k";

/// Provider keys' metadata: [`crate::ReadModels::llm_keys`].
#[derive(Clone, Copy)]
pub struct LlmKeys<'a> {
    pub(crate) pool: &'a PgPool,
}

impl LlmKeys<'_> {
    /// A tenant's keys by provider.
    pub async fn list(&self, tenant_id: Uuid) -> Result<Vec<LlmKeyRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "{SELECT} WHERE k.tenant_id = $1 ORDER BY k.provider"
        ))
        .bind(tenant_id)
        .fetch_all(self.pool)
        .await
    }

    pub async fn get(&self, tenant_id: Uuid, id: Uuid) -> Result<Option<LlmKeyRow>, sqlx::Error> {
        sqlx::query_as(&format!("{SELECT} WHERE k.tenant_id = $1 AND k.id = $2"))
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(self.pool)
            .await
    }

    /// The id of a tenant's key for a provider.
    pub async fn id_for_provider(
        &self,
        tenant_id: Uuid,
        provider: &str,
    ) -> Result<Option<Uuid>, sqlx::Error> {
        sqlx::query_scalar("SELECT id FROM llm_keys_view WHERE tenant_id = $1 AND provider = $2")
            .bind(tenant_id)
            .bind(provider)
            .fetch_optional(self.pool)
            .await
    }
}
