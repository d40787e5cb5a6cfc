//! The `usage` read models: usage and cost per tenant × day (UTC) × agent ×
//! provider × model, summed from the `UsageRecorded` events (a rebuild sums
//! the same events again: the rollups come out the same), and the holds
//! that are live (for the sweeper that expires those whose holder died);
//! and the `price_book` read model: every published version of the book.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::FutureExt;
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use tenantry_domain::price_book::PriceBookEvent;
use tenantry_domain::usage::LedgerEvent;
use tenantry_domain::EventCodec;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::runtime::{Apply, ProjectionError, TableProjection};

/// The `usage` projection.
pub const PROJECTION: TableProjection = TableProjection {
    name: "usage",
    tables: &["usage_daily", "holds_view"],
    reads: &[("ledger", "*")],
    apply: Apply::Batch(|tx, events| apply_usage(tx, events).boxed()),
};

/// The `price_book` projection.
pub const PRICE_BOOK: TableProjection = TableProjection {
    name: "price_book",
    tables: &["price_book_view"],
    reads: &[("price_book", "*")],
    apply: Apply::EachEvent(|tx, e| apply_price_book(tx, e).boxed()),
};

#[derive(Default)]
struct Sums {
    records: i64,
    requests: i64,
    input: i64,
    output: i64,
    cached: i64,
    cost: i64,
    unpriced: i64,
}

/// A hold as the batch leaves it, and whether the batch dropped it (a
/// dropped hold's row goes before the batch's rows come in: a hold given
/// back and granted again under its id in one batch ends up held).
#[derive(Default)]
struct HoldChange {
    held: Option<(Uuid, Uuid, i64, DateTime<Utc>)>,
    dropped: bool,
}

/// The whole batch folded in memory and written in three statements: the
/// holds dropped, the holds granted, and the rollups summed per tenant ×
/// day × agent × provider × model (a reserve-then-record pair used to cost
/// three statements of its own).
async fn apply_usage(
    tx: &mut PgConnection,
    events: Vec<&StoredEvent>,
) -> Result<(), ProjectionError> {
    let mut holds: BTreeMap<(Uuid, String), HoldChange> = BTreeMap::new();
    let mut groups: BTreeMap<(Uuid, NaiveDate, Uuid, String, String), Sums> = BTreeMap::new();
    for e in events {
        if e.aggregate_type != "ledger" {
            continue;
        }
        let ledger_id =
            Uuid::parse_str(&e.aggregate_id).map_err(|err| ProjectionError::decode(e, err))?;
        let event = LedgerEvent::decode(&e.event_type, e.event_version, e.payload.clone())
            .map_err(|err| ProjectionError::decode(e, err))?;
        let mut drop = |id: String| {
            let change = holds.entry((ledger_id, id)).or_default();
            change.held = None;
            change.dropped = true;
        };
        match event {
            LedgerEvent::UsageRecorded {
                tenant_id,
                records,
                settled,
            } => {
                settled.into_iter().for_each(&mut drop);
                for r in records {
                    let key = (
                        tenant_id,
                        r.occurred_at.date_naive(),
                        r.agent_id,
                        r.provider,
                        r.model,
                    );
                    let s = groups.entry(key).or_default();
                    s.records += 1;
                    s.requests += r.requests;
                    s.input += r.input_tokens;
                    s.output += r.output_tokens;
                    s.cached += r.cached_input_tokens;
                    s.cost += r.cost_micros;
                    s.unpriced += i64::from(r.unpriced);
                }
            }
            LedgerEvent::ReservationGranted { id, hold } => {
                holds.entry((ledger_id, id)).or_default().held = Some((
                    e.tenant_id,
                    hold.agent_id,
                    hold.amount_micros,
                    hold.expires_at,
                ));
            }
            LedgerEvent::ReservationReleased { id } | LedgerEvent::ReservationExpired { id } => {
                drop(id)
            }
            LedgerEvent::BudgetThresholdCrossed { .. } => {}
        }
    }
    let (dropped_ledgers, dropped_ids): (Vec<Uuid>, Vec<String>) = holds
        .iter()
        .filter(|(_, c)| c.dropped)
        .map(|((ledger, id), _)| (*ledger, id.clone()))
        .unzip();
    if !dropped_ids.is_empty() {
        sqlx::query(
            "DELETE FROM holds_view h USING UNNEST($1::uuid[], $2::text[]) AS d(ledger_id, id) \
              WHERE h.ledger_id = d.ledger_id AND h.id = d.id",
        )
        .bind(&dropped_ledgers)
        .bind(&dropped_ids)
        .execute(&mut *tx)
        .await?;
    }
    let held: Vec<_> = holds
        .into_iter()
        .filter_map(|((ledger, id), c)| c.held.map(|h| (ledger, id, h)))
        .collect();
    if !held.is_empty() {
        sqlx::query(
            "INSERT INTO holds_view (ledger_id, id, tenant_id, agent_id, amount_micros, expires_at) \
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::int8[], \
                    $6::timestamptz[]) \
             ON CONFLICT (ledger_id, id) DO NOTHING",
        )
        .bind(held.iter().map(|h| h.0).collect::<Vec<_>>())
        .bind(held.iter().map(|h| h.1.clone()).collect::<Vec<_>>())
        .bind(held.iter().map(|h| h.2 .0).collect::<Vec<_>>())
        .bind(held.iter().map(|h| h.2 .1).collect::<Vec<_>>())
        .bind(held.iter().map(|h| h.2 .2).collect::<Vec<_>>())
        .bind(held.iter().map(|h| h.2 .3).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    if groups.is_empty() {
        return Ok(());
    }
    let mut tenants = Vec::with_capacity(groups.len());
    let mut days = Vec::with_capacity(groups.len());
    let mut agents = Vec::with_capacity(groups.len());
    let mut providers = Vec::with_capacity(groups.len());
    let mut models = Vec::with_capacity(groups.len());
    let mut sums: Vec<[i64; 7]> = Vec::with_capacity(groups.len());
    for ((tenant, day, agent, provider, model), s) in groups {
        tenants.push(tenant);
        days.push(day);
        agents.push(agent);
        providers.push(provider);
        models.push(model);
        sums.push([
            s.records, s.requests, s.input, s.output, s.cached, s.cost, s.unpriced,
        ]);
    }
    let column = |i: usize| sums.iter().map(|v| v[i]).collect::<Vec<i64>>();
    sqlx::query(
        "INSERT INTO usage_daily (tenant_id, day, agent_id, provider, model, records, requests, \
                input_tokens, output_tokens, cached_input_tokens, cost_micros, unpriced_records) \
         SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::uuid[], $4::text[], $5::text[], $6::int8[], \
                $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[]) \
         ON CONFLICT (tenant_id, day, agent_id, provider, model) DO UPDATE SET \
             records = usage_daily.records + EXCLUDED.records, \
             requests = usage_daily.requests + EXCLUDED.requests, \
             input_tokens = usage_daily.input_tokens + EXCLUDED.input_tokens, \
             output_tokens = usage_daily.output_tokens + EXCLUDED.output_tokens, \
             cached_input_tokens = usage_daily.cached_input_tokens + EXCLUDED.cached_input_tokens, \
             cost_micros = usage_daily.cost_micros + EXCLUDED.cost_micros, \
             unpriced_records = usage_daily.unpriced_records + EXCLUDED.unpriced_records",
    )
    .bind(&tenants)
    .bind(&days)
    .bind(&agents)
    .bind(&providers)
    .bind(&models)
    .bind(column(0))
    .bind(column(1))
    .bind(column(2))
    .bind(column(3))
    .bind(column(4))
    .bind(column(5))
    .bind(column(6))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn apply_price_book(tx: &mut PgConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
    if e.aggregate_type != "price_book" {
        return Ok(());
    }
    let PriceBookEvent::PriceBookPublished { version, list } =
        PriceBookEvent::decode(&e.event_type, e.event_version, e.payload.clone())
            .map_err(|err| ProjectionError::decode(e, err))?;
    let prices =
        serde_json::to_value(&list.prices).map_err(|err| ProjectionError::decode(e, err))?;
    sqlx::query(
        "INSERT INTO price_book_view (version, currency, effective_from, prices, published_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version) DO NOTHING",
    )
    .bind(version as i32)
    .bind(&list.currency)
    .bind(list.effective_from)
    .bind(prices)
    .bind(e.recorded_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// How a usage series is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    Agent,
    Provider,
    Model,
}

impl GroupBy {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "day" => Self::Day,
            "agent" => Self::Agent,
            "provider" => Self::Provider,
            "model" => Self::Model,
            _ => return None,
        })
    }

    /// The SQL of the group's key, as text.
    fn key(self) -> &'static str {
        match self {
            Self::Day => "to_char(day, 'YYYY-MM-DD')",
            Self::Agent => "agent_id::text",
            Self::Provider => "provider",
            Self::Model => "provider || '/' || model",
        }
    }
}

/// One point of a usage series.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct UsagePoint {
    pub key: String,
    pub records: i64,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub cost_micros: i64,
    pub unpriced_records: i64,
}

/// A tenant's usage totals, for platform admins.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct TenantUsage {
    pub tenant_id: Uuid,
    pub records: i64,
    pub requests: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_micros: i64,
}

/// A published price-book version.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct PriceBookRow {
    pub version: i32,
    pub currency: String,
    pub effective_from: DateTime<Utc>,
    pub prices: Value,
    pub published_at: DateTime<Utc>,
}

/// [`crate::ReadModels::usage`].
#[derive(Clone, Copy)]
pub struct Usage<'a> {
    pub(crate) pool: &'a PgPool,
}

const SUMS: &str = "sum(records)::int8 AS records, sum(requests)::int8 AS requests, \
                    sum(input_tokens)::int8 AS input_tokens, sum(output_tokens)::int8 AS output_tokens, \
                    sum(cached_input_tokens)::int8 AS cached_input_tokens, \
                    sum(cost_micros)::int8 AS cost_micros, sum(unpriced_records)::int8 AS unpriced_records";

impl Usage<'_> {
    /// A tenant's usage from `from` to `to` (days, inclusive), grouped.
    pub async fn series(
        &self,
        tenant_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
        group_by: GroupBy,
        agent_id: Option<Uuid>,
    ) -> Result<Vec<UsagePoint>, sqlx::Error> {
        let key = group_by.key();
        sqlx::query_as(&format!(
            "SELECT {key} AS key, {SUMS} FROM usage_daily \
              WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 \
                AND ($4::uuid IS NULL OR agent_id = $4) \
              GROUP BY 1 ORDER BY 1"
        ))
        .bind(tenant_id)
        .bind(from)
        .bind(to)
        .bind(agent_id)
        .fetch_all(self.pool)
        .await
    }

    /// Every tenant's totals from `from` to `to`, the biggest spender first.
    pub async fn by_tenant(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<TenantUsage>, sqlx::Error> {
        sqlx::query_as(
            "SELECT tenant_id, sum(records)::int8 AS records, sum(requests)::int8 AS requests, \
                    sum(input_tokens)::int8 AS input_tokens, sum(output_tokens)::int8 AS output_tokens, \
                    sum(cost_micros)::int8 AS cost_micros \
               FROM usage_daily WHERE day BETWEEN $1 AND $2 \
              GROUP BY tenant_id ORDER BY cost_micros DESC, tenant_id LIMIT 1000",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.pool)
        .await
    }

    /// Ledgers holding reservations past their expiry, at most `limit`.
    /// The ledger that holds a tenant's hold, when it is still held.
    pub async fn ledger_of_hold(
        &self,
        tenant_id: Uuid,
        id: &str,
    ) -> Result<Option<Uuid>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT ledger_id FROM holds_view WHERE tenant_id = $1 AND id = $2 LIMIT 1",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(self.pool)
        .await
    }

    pub async fn ledgers_with_expired_holds(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT DISTINCT ledger_id, tenant_id FROM holds_view WHERE expires_at <= $1 LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool)
        .await
    }

    /// Every published price-book version, newest first.
    pub async fn price_book(&self) -> Result<Vec<PriceBookRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT version, currency, effective_from, prices, published_at \
               FROM price_book_view ORDER BY version DESC",
        )
        .fetch_all(self.pool)
        .await
    }
}
