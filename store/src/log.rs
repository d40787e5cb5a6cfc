//! Reading the event log in global order.
//!
//! The order is `(tx_id, position)`, and only events of transactions older
//! than every transaction still running (`tx_id < pg_snapshot_xmin(...)`)
//! are read. A transaction that committed late therefore cannot be skipped:
//! until it ends, nothing numbered after it is handed out either.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

/// A point in the global order. Ordered by transaction id, then position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checkpoint {
    pub tx_id: u64,
    pub position: i64,
}

impl Checkpoint {
    pub const ZERO: Checkpoint = Checkpoint {
        tx_id: 0,
        position: 0,
    };

    /// From the text form Postgres gives an `xid8`.
    pub fn from_parts(tx_id: &str, position: i64) -> Result<Self, sqlx::Error> {
        let tx_id = tx_id
            .parse()
            .map_err(|e| sqlx::Error::Decode(format!("bad xid8 {tx_id:?}: {e}").into()))?;
        Ok(Self { tx_id, position })
    }
}

/// One stored event with everything the log holds about it.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct StoredEvent {
    pub position: i64,
    pub tx_id: String,
    pub tenant_id: Uuid,
    pub tenant_sequence: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: i32,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    pub fn checkpoint(&self) -> Result<Checkpoint, sqlx::Error> {
        Checkpoint::from_parts(&self.tx_id, self.position)
    }
}

// Reading after a checkpoint: the rows after `($1, $2)` in global order,
// from finished transactions only, at most `$3`.
//
// The `ORDER BY` names `events.tx_id`: a bare `tx_id` would mean the
// `tx_id::text` output column, sort transaction 10 before 9, and let a
// batch's checkpoint jump past events it never read. Ordered by the `xid8`
// column, the query also walks the `(tx_id, position)` index and stops
// after `limit` rows instead of sorting everything after `after`.

/// The newest committed event's place in the global order, `None` for an
/// empty log. It may still be behind the read horizon (`pg_snapshot_xmin`)
/// while an older transaction runs.
pub async fn head(pool: &sqlx::PgPool) -> Result<Option<Checkpoint>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT tx_id::text AS \"tx_id!\", position FROM events \
          ORDER BY events.tx_id DESC, events.position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    row.map(|row| Checkpoint::from_parts(&row.tx_id, row.position))
        .transpose()
}

/// Up to `limit` events after `after` in global order, from finished transactions only.
pub async fn read_after(
    conn: &mut PgConnection,
    after: Checkpoint,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as!(
        StoredEvent,
        "SELECT position, tx_id::text AS \"tx_id!\", tenant_id, tenant_sequence, aggregate_type, \
                aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at \
           FROM events \
          WHERE (tx_id, position) > ($1::text::xid8, $2) \
            AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
          ORDER BY events.tx_id, events.position LIMIT $3",
        after.tx_id.to_string(),
        after.position,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Where an event is in the log and what it is, without its contents.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct EventHeader {
    pub tx_id: String,
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
}

impl EventHeader {
    pub fn checkpoint(&self) -> Result<Checkpoint, sqlx::Error> {
        Checkpoint::from_parts(&self.tx_id, self.position)
    }
}

/// As [`read_after`], headers only: enough to tell whether a projection
/// reads any of the next events, without shipping their payloads.
pub async fn headers_after(
    conn: &mut PgConnection,
    after: Checkpoint,
    limit: i64,
) -> Result<Vec<EventHeader>, sqlx::Error> {
    sqlx::query_as!(
        EventHeader,
        "SELECT tx_id::text AS \"tx_id!\", position, aggregate_type, aggregate_id, event_type, recorded_at \
           FROM events \
          WHERE (tx_id, position) > ($1::text::xid8, $2) \
            AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
          ORDER BY events.tx_id, events.position LIMIT $3",
        after.tx_id.to_string(),
        after.position,
        limit
    )
    .fetch_all(conn)
    .await
}

/// What a command appended, for read-your-writes: the position of its
/// last event and the types of its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub checkpoint: Checkpoint,
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub event_types: Vec<String>,
}
