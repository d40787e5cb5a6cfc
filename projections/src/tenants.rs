//! The `tenants` read model: one row per tenant, for lists and lookups.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use tenantry_domain::tenant::{TenantEvent, TenantStatus};
use tenantry_domain::EventCodec;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::page::Page;
use crate::runtime::{Apply, ProjectionError, TableProjection};

/// The `tenants` projection. It folds each batch in memory (one read of
/// the rows the batch touches, one write of the rows it changed), so a
/// rebuild over a million events is a few statements per batch.
pub const PROJECTION: TableProjection = TableProjection {
    name: "tenants",
    tables: &["tenants_view"],
    reads: &[
        ("tenant", "TenantCreated"),
        ("tenant", "TenantRenamed"),
        ("tenant", "TenantSettingsUpdated"),
        ("tenant", "TenantSuspended"),
        ("tenant", "TenantReactivated"),
        ("tenant", "TenantArchived"),
    ],
    apply: Apply::Batch(|tx, events| apply_batch(tx, events).boxed()),
};

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct TenantRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    #[sqlx(try_from = "String")]
    pub status: TenantStatus,
    pub settings: Value,
    pub suspended_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

async fn apply_batch(
    tx: &mut PgConnection,
    events: Vec<&StoredEvent>,
) -> Result<(), ProjectionError> {
    let mut decoded = Vec::with_capacity(events.len());
    for e in events {
        let event = TenantEvent::decode(&e.event_type, e.event_version, e.payload.clone())
            .map_err(|err| ProjectionError::decode(e, err))?;
        decoded.push((e, event));
    }
    if decoded.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<Uuid> = decoded.iter().map(|(e, _)| e.tenant_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let existing: Vec<TenantRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tenants_view WHERE id = ANY($1)"
    ))
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut rows: HashMap<Uuid, TenantRow> = existing.into_iter().map(|r| (r.id, r)).collect();
    let mut changed = HashSet::new();
    for (e, event) in decoded {
        if let Some(id) = fold(&mut rows, e, event) {
            changed.insert(id);
        }
    }
    let rows: Vec<TenantRow> = changed
        .into_iter()
        .filter_map(|id| rows.remove(&id))
        .collect();
    upsert(tx, rows).await?;
    Ok(())
}

/// Apply one event to the rows in memory; the id of the row it changed.
/// A creation never overwrites an existing row, and a change to a tenant
/// the view does not hold changes nothing.
fn fold(rows: &mut HashMap<Uuid, TenantRow>, e: &StoredEvent, event: TenantEvent) -> Option<Uuid> {
    let at = e.recorded_at;
    if let TenantEvent::TenantCreated {
        tenant_id,
        name,
        slug,
        settings,
    } = event
    {
        if rows.contains_key(&tenant_id) {
            return None;
        }
        rows.insert(
            tenant_id,
            TenantRow {
                id: tenant_id,
                name: name.as_str().to_string(),
                slug: slug.as_str().to_string(),
                status: TenantStatus::Active,
                settings: Value::Object(settings.as_map().clone()),
                suspended_reason: None,
                created_at: at,
                updated_at: at,
            },
        );
        return Some(tenant_id);
    }
    let row = rows.get_mut(&e.tenant_id)?;
    match event {
        TenantEvent::TenantRenamed { name, .. } => row.name = name.as_str().to_string(),
        TenantEvent::TenantSettingsUpdated { settings } => {
            row.settings = Value::Object(settings.as_map().clone());
        }
        TenantEvent::TenantSuspended { reason } => {
            row.status = TenantStatus::Suspended;
            row.suspended_reason = Some(reason);
        }
        TenantEvent::TenantReactivated {} => {
            row.status = TenantStatus::Active;
            row.suspended_reason = None;
        }
        TenantEvent::TenantArchived {} => {
            row.status = TenantStatus::Archived;
        }
        // Not in `reads`: roster, roles and invitations have their own read models.
        _ => return None,
    }
    row.updated_at = at;
    Some(row.id)
}

/// Write whole rows in one statement, whatever their number.
async fn upsert(tx: &mut PgConnection, rows: Vec<TenantRow>) -> Result<(), sqlx::Error> {
    let mut cols = Columns::default();
    for r in rows {
        cols.id.push(r.id);
        cols.name.push(r.name);
        cols.slug.push(r.slug);
        cols.status.push(r.status.as_str());
        cols.settings.push(r.settings);
        cols.suspended_reason.push(r.suspended_reason);
        cols.created_at.push(r.created_at);
        cols.updated_at.push(r.updated_at);
    }
    sqlx::query(
        "INSERT INTO tenants_view (id, name, slug, status, settings, suspended_reason, created_at, updated_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], \
                              $7::timestamptz[], $8::timestamptz[]) \
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, slug = EXCLUDED.slug, \
             status = EXCLUDED.status, settings = EXCLUDED.settings, \
             suspended_reason = EXCLUDED.suspended_reason, updated_at = EXCLUDED.updated_at",
    )
    .bind(cols.id)
    .bind(cols.name)
    .bind(cols.slug)
    .bind(cols.status)
    .bind(cols.settings)
    .bind(cols.suspended_reason)
    .bind(cols.created_at)
    .bind(cols.updated_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// `TenantRow`s as columns, the shape `UNNEST` takes.
#[derive(Default)]
struct Columns {
    id: Vec<Uuid>,
    name: Vec<String>,
    slug: Vec<String>,
    status: Vec<&'static str>,
    settings: Vec<Value>,
    suspended_reason: Vec<Option<String>>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, slug, status, settings, suspended_reason, created_at, updated_at";

#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    /// `None`: every status but archived.
    pub status: Option<TenantStatus>,
    /// Case-insensitive substring of the name or the slug.
    pub q: Option<String>,
}

/// `%q%` with LIKE's wildcards in `q` taken literally.
pub fn like_pattern(q: &str) -> String {
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use tenantry_domain::values::{Slug, TenantName, TenantSettings};

    use super::*;

    const ACME: Uuid = Uuid::from_u128(1);

    fn stored(tenant_id: Uuid, minute: u32) -> StoredEvent {
        StoredEvent {
            position: i64::from(minute),
            tx_id: minute.to_string(),
            tenant_id,
            tenant_sequence: i64::from(minute),
            aggregate_type: "tenant".into(),
            aggregate_id: tenant_id.to_string(),
            sequence: i64::from(minute),
            event_type: String::new(),
            event_version: 1,
            payload: Value::Null,
            metadata: Value::Null,
            recorded_at: Utc.with_ymd_and_hms(2026, 11, 25, 12, minute, 0).unwrap(),
        }
    }

    fn created(name: &str) -> TenantEvent {
        TenantEvent::TenantCreated {
            tenant_id: ACME,
            name: TenantName::parse(name).unwrap(),
            slug: Slug::parse("acme").unwrap(),
            settings: TenantSettings::default(),
        }
    }

    /// Fold `events` (one a minute) into an empty view.
    fn fold_all(events: Vec<TenantEvent>) -> (HashMap<Uuid, TenantRow>, Vec<Option<Uuid>>) {
        let mut rows = HashMap::new();
        let changed = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| fold(&mut rows, &stored(ACME, i as u32), event))
            .collect();
        (rows, changed)
    }

    #[test]
    fn a_tenant_is_created_renamed_suspended_reactivated_and_archived() {
        let (rows, changed) = fold_all(vec![
            created("Acme"),
            TenantEvent::TenantRenamed {
                name: TenantName::parse("Acme Robotics").unwrap(),
                previous_name: TenantName::parse("Acme").unwrap(),
            },
            TenantEvent::TenantSuspended {
                reason: "invoice overdue".into(),
            },
            TenantEvent::TenantReactivated {},
            TenantEvent::TenantArchived {},
        ]);
        assert!(changed.iter().all(|c| *c == Some(ACME)));
        let row = &rows[&ACME];
        assert_eq!(row.name, "Acme Robotics");
        assert_eq!(row.status, TenantStatus::Archived);
        assert_eq!(row.suspended_reason, None, "reactivation clears the reason");
        assert_eq!(row.created_at.format("%M").to_string(), "00");
        assert_eq!(row.updated_at.format("%M").to_string(), "04");
    }

    #[test]
    fn a_suspension_keeps_its_reason() {
        let (rows, _) = fold_all(vec![
            created("Acme"),
            TenantEvent::TenantSuspended {
                reason: "invoice overdue".into(),
            },
        ]);
        assert_eq!(rows[&ACME].status, TenantStatus::Suspended);
        assert_eq!(
            rows[&ACME].suspended_reason.as_deref(),
            Some("invoice overdue")
        );
    }

    #[test]
    fn a_second_creation_does_not_overwrite_and_unknown_tenants_change_nothing() {
        let (rows, changed) = fold_all(vec![created("Acme"), created("Impostor")]);
        assert_eq!(changed, vec![Some(ACME), None]);
        assert_eq!(rows[&ACME].name, "Acme");

        let mut empty = HashMap::new();
        let renamed = TenantEvent::TenantRenamed {
            name: TenantName::parse("Ghost").unwrap(),
            previous_name: TenantName::parse("Nobody").unwrap(),
        };
        assert_eq!(fold(&mut empty, &stored(ACME, 0), renamed), None);
        assert!(empty.is_empty());
    }
}

/// Tenants: [`crate::ReadModels::tenants`].
#[derive(Clone, Copy)]
pub struct Tenants<'a> {
    pub(crate) pool: &'a PgPool,
}

impl Tenants<'_> {
    pub async fn get(&self, id: Uuid) -> Result<Option<TenantRow>, sqlx::Error> {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM tenants_view WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool)
            .await
    }

    /// Tenants in id (creation) order, after the cursor id.
    pub async fn list(
        &self,
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
        .fetch_all(self.pool)
        .await?;
        Ok(Page::from_rows(rows, limit, |r| r.id))
    }
}
