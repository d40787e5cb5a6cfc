//! Reading the chains for auditors: pages of a chain's events with their
//! hashes (filtered), the platform's own events, and the stored chain
//! verified event by event with the same verifier an export gets
//! (`crate::chain`).

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::chain::{Anchor, ChainCheckpoint, ChainEvent, Legacy, Verdict, Verifier};

/// Which events a page holds.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// `user`, `api_key`, `system` or `anonymous`, and the actor's id (or
    /// a system job's name).
    pub actor: Option<(String, Option<String>)>,
    pub event_type: Option<String>,
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    /// `recorded_at` from (inclusive) and to (exclusive).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only events done while impersonating (true) or not (false).
    pub impersonated: Option<bool>,
}

/// An event as auditors read it: its chain fields, hashes and place in
/// the global order.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditedEvent {
    pub position: i64,
    pub event: ChainEvent,
}

struct Row {
    position: i64,
    tenant_id: Uuid,
    chain_id: Option<Uuid>,
    tenant_sequence: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: i32,
    payload: Value,
    metadata: Value,
    recorded_at: DateTime<Utc>,
    content_hash: Option<Vec<u8>>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl From<Row> for AuditedEvent {
    fn from(r: Row) -> Self {
        Self {
            position: r.position,
            event: ChainEvent {
                tenant_id: r.tenant_id,
                chain_id: r.chain_id,
                tenant_sequence: r.tenant_sequence,
                aggregate_type: r.aggregate_type,
                aggregate_id: r.aggregate_id,
                sequence: r.sequence,
                event_type: r.event_type,
                event_version: r.event_version,
                payload: r.payload,
                metadata: r.metadata,
                recorded_at: r.recorded_at,
                content_hash: r.content_hash.map(hex::encode),
                prev_hash: hex::encode(r.prev_hash),
                hash: hex::encode(r.hash),
            },
        }
    }
}

/// [`crate::Store::audit`].
#[derive(Clone, Copy)]
pub struct Audit<'a> {
    pub(crate) pool: &'a PgPool,
}

impl Audit<'_> {
    /// Up to `limit` events of a chain (a tenant's, or a person's) after
    /// `after_sequence`, in chain order, that pass `filter`.
    pub async fn chain_page(
        &self,
        chain: Uuid,
        filter: &EventFilter,
        after_sequence: i64,
        to_sequence: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditedEvent>, sqlx::Error> {
        let (actor_type, actor_ref) = actor_parts(filter);
        let rows = sqlx::query_as!(
            Row,
            "SELECT position, tenant_id, chain_id, tenant_sequence, aggregate_type, aggregate_id, \
                sequence, event_type, event_version, payload, metadata, recorded_at, \
                content_hash, prev_hash, hash \
           FROM events \
          WHERE COALESCE(chain_id, tenant_id) = $1 AND tenant_sequence > $2 \
            AND ($3::bigint IS NULL OR tenant_sequence <= $3) \
            AND ($4::text IS NULL OR metadata -> 'actor' ->> 'type' = $4) \
            AND ($5::text IS NULL OR metadata -> 'actor' ->> 'id' = $5 \
                 OR metadata -> 'actor' ->> 'name' = $5) \
            AND ($6::text IS NULL OR event_type = $6) \
            AND ($7::text IS NULL OR aggregate_type = $7) \
            AND ($8::text IS NULL OR aggregate_id = $8) \
            AND ($9::timestamptz IS NULL OR recorded_at >= $9) \
            AND ($10::timestamptz IS NULL OR recorded_at < $10) \
            AND ($11::boolean IS NULL \
                 OR (jsonb_typeof(metadata -> 'impersonator') = 'object') = $11) \
          ORDER BY tenant_sequence LIMIT $12",
            chain,
            after_sequence,
            to_sequence,
            actor_type,
            actor_ref,
            filter.event_type,
            filter.aggregate_type,
            filter.aggregate_id,
            filter.from,
            filter.to,
            filter.impersonated,
            limit
        )
        .fetch_all(self.pool)
        .await?;
        Ok(rows.into_iter().map(AuditedEvent::from).collect())
    }

    /// Up to `limit` of the platform's own events (people's chains: users,
    /// sign-ins, sessions) after global position `after_position`, in the
    /// global order, that pass `filter`.
    pub async fn platform_page(
        &self,
        filter: &EventFilter,
        after_position: i64,
        limit: i64,
    ) -> Result<Vec<AuditedEvent>, sqlx::Error> {
        let (actor_type, actor_ref) = actor_parts(filter);
        let rows = sqlx::query_as!(
            Row,
            "SELECT position, tenant_id, chain_id, tenant_sequence, aggregate_type, aggregate_id, \
                sequence, event_type, event_version, payload, metadata, recorded_at, \
                content_hash, prev_hash, hash \
           FROM events \
          WHERE tenant_id = '00000000-0000-0000-0000-000000000000' AND position > $1 \
            AND ($2::text IS NULL OR metadata -> 'actor' ->> 'type' = $2) \
            AND ($3::text IS NULL OR metadata -> 'actor' ->> 'id' = $3 \
                 OR metadata -> 'actor' ->> 'name' = $3) \
            AND ($4::text IS NULL OR event_type = $4) \
            AND ($5::text IS NULL OR aggregate_type = $5) \
            AND ($6::text IS NULL OR aggregate_id = $6) \
            AND ($7::timestamptz IS NULL OR recorded_at >= $7) \
            AND ($8::timestamptz IS NULL OR recorded_at < $8) \
            AND ($9::boolean IS NULL \
                 OR (jsonb_typeof(metadata -> 'impersonator') = 'object') = $9) \
          ORDER BY position LIMIT $10",
            after_position,
            actor_type,
            actor_ref,
            filter.event_type,
            filter.aggregate_type,
            filter.aggregate_id,
            filter.from,
            filter.to,
            filter.impersonated,
            limit
        )
        .fetch_all(self.pool)
        .await?;
        Ok(rows.into_iter().map(AuditedEvent::from).collect())
    }

    /// The `prev_hash` of the event at `sequence` of a chain, when there is one
    /// (where a range starting mid-chain picks up the chain).
    pub async fn prev_hash_at(
        &self,
        chain: Uuid,
        sequence: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let prev = sqlx::query_scalar!(
            "SELECT prev_hash FROM events \
          WHERE COALESCE(chain_id, tenant_id) = $1 AND tenant_sequence = $2",
            chain,
            sequence
        )
        .fetch_optional(self.pool)
        .await?;
        Ok(prev.map(hex::encode))
    }

    /// Keep a signed checkpoint; one already kept at that sequence stays
    /// (another process signed the same head): false then.
    pub async fn keep_checkpoint(&self, cp: &ChainCheckpoint) -> Result<bool, sqlx::Error> {
        let hash = hex::decode(&cp.hash).unwrap_or_default();
        let signature = hex::decode(&cp.signature).unwrap_or_default();
        let kept = sqlx::query!(
        "INSERT INTO audit_checkpoints (chain_id, sequence, hash, signed_at, key_id, signature) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (chain_id, sequence) DO NOTHING",
        cp.chain_id,
        cp.sequence,
        hash,
        cp.signed_at,
        cp.key_id,
        signature
    )
        .execute(self.pool)
        .await?;
        Ok(kept.rows_affected() == 1)
    }

    /// A chain's checkpoints after `after_sequence`, oldest first.
    pub async fn checkpoints(
        &self,
        chain: Uuid,
        after_sequence: i64,
        limit: i64,
    ) -> Result<Vec<ChainCheckpoint>, sqlx::Error> {
        let rows = sqlx::query!(
            "SELECT chain_id, sequence, hash, signed_at, key_id, signature FROM audit_checkpoints \
          WHERE chain_id = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
            chain,
            after_sequence,
            limit
        )
        .fetch_all(self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ChainCheckpoint {
                chain_id: r.chain_id,
                sequence: r.sequence,
                hash: hex::encode(r.hash),
                signed_at: r.signed_at,
                key_id: r.key_id,
                signature: hex::encode(r.signature),
            })
            .collect())
    }

    /// The chain's last checkpoint at or before `sequence`.
    pub async fn checkpoint_at_or_before(
        &self,
        chain: Uuid,
        sequence: i64,
    ) -> Result<Option<ChainCheckpoint>, sqlx::Error> {
        let row = sqlx::query!(
            "SELECT chain_id, sequence, hash, signed_at, key_id, signature FROM audit_checkpoints \
          WHERE chain_id = $1 AND sequence <= $2 ORDER BY sequence DESC LIMIT 1",
            chain,
            sequence
        )
        .fetch_optional(self.pool)
        .await?;
        Ok(row.map(|r| ChainCheckpoint {
            chain_id: r.chain_id,
            sequence: r.sequence,
            hash: hex::encode(r.hash),
            signed_at: r.signed_at,
            key_id: r.key_id,
            signature: hex::encode(r.signature),
        }))
    }

    /// Tenants' chains due a checkpoint: the head moved on since the last one
    /// by `every_events` or more, or at all when the last was signed before
    /// `signed_before` (or never). `(tenant, head sequence, head hash)`, the
    /// furthest behind first.
    pub async fn heads_due(
        &self,
        every_events: i64,
        signed_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(Uuid, i64, String)>, sqlx::Error> {
        let rows = sqlx::query!(
        "SELECT h.chain_id, h.last_sequence, h.last_hash \
           FROM chain_heads h \
           LEFT JOIN LATERAL (SELECT sequence, signed_at FROM audit_checkpoints \
                               WHERE chain_id = h.chain_id ORDER BY sequence DESC LIMIT 1) c ON true \
          WHERE h.last_sequence > COALESCE(c.sequence, 0) \
            AND (h.last_sequence - COALESCE(c.sequence, 0) >= $1 \
                 OR c.signed_at IS NULL OR c.signed_at <= $2) \
            AND h.chain_id <> '00000000-0000-0000-0000-000000000000' \
            AND EXISTS (SELECT 1 FROM events e WHERE e.tenant_id = h.chain_id \
                          AND e.tenant_sequence = h.last_sequence AND e.chain_id IS NULL) \
          ORDER BY h.last_sequence - COALESCE(c.sequence, 0) DESC LIMIT $3",
        every_events,
        signed_before,
        limit
    )
    .fetch_all(self.pool)
    .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.chain_id, r.last_sequence, hex::encode(r.last_hash)))
            .collect())
    }

    /// The chain's head: its last sequence and hash.
    pub async fn head(&self, chain: Uuid) -> Result<Option<(i64, String)>, sqlx::Error> {
        let head = sqlx::query!(
            "SELECT last_sequence, last_hash FROM chain_heads WHERE chain_id = $1",
            chain
        )
        .fetch_optional(self.pool)
        .await?;
        Ok(head.map(|h| (h.last_sequence, hex::encode(h.last_hash))))
    }

    /// Verify a stored chain from its start: every event's content hash
    /// recomputed from its content (format 2) or its hash recomputed by the
    /// database (format 1), every link, the sequence gapless, and the hash at
    /// each anchor (saved checkpoints) the one it signed. Reads the chain as
    /// a stream: memory stays flat for any length.
    pub async fn verify_chain(
        &self,
        chain: Uuid,
        anchors: Vec<Anchor>,
    ) -> Result<Verdict, sqlx::Error> {
        let mut verifier = Verifier::new(None, anchors);
        let mut rows = sqlx::query!(
            "SELECT position, tenant_id, chain_id, tenant_sequence, aggregate_type, aggregate_id, \
                sequence, event_type, event_version, payload, metadata, recorded_at, \
                content_hash, prev_hash, hash, \
                CASE WHEN content_hash IS NULL \
                     THEN hash = tenantry_event_hash(prev_hash, e) END AS legacy_ok \
           FROM events e WHERE COALESCE(chain_id, tenant_id) = $1 ORDER BY tenant_sequence",
            chain
        )
        .fetch(self.pool);
        while let Some(r) = rows.try_next().await? {
            let legacy = r.legacy_ok.map_or(Legacy::Unknown, Legacy::Checked);
            let event = AuditedEvent::from(Row {
                position: r.position,
                tenant_id: r.tenant_id,
                chain_id: r.chain_id,
                tenant_sequence: r.tenant_sequence,
                aggregate_type: r.aggregate_type,
                aggregate_id: r.aggregate_id,
                sequence: r.sequence,
                event_type: r.event_type,
                event_version: r.event_version,
                payload: r.payload,
                metadata: r.metadata,
                recorded_at: r.recorded_at,
                content_hash: r.content_hash,
                prev_hash: r.prev_hash,
                hash: r.hash,
            });
            if !verifier.push(&event.event, legacy) {
                break;
            }
        }
        Ok(verifier.finish())
    }
}

fn actor_parts(filter: &EventFilter) -> (Option<String>, Option<String>) {
    match &filter.actor {
        Some((t, r)) => (Some(t.clone()), r.clone()),
        None => (None, None),
    }
}
