//! Usage's use cases: ingesting the agent runtime's records (validated all
//! or nothing, each id counted once, costed at the price book in effect
//! when it occurred) and publishing the price book.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};
use tenantry_domain::price_book::{PriceBook, PriceBookCommand, PriceList, PRICE_BOOK_ID};
use tenantry_domain::usage::{UsageBatch, UsageBatchCommand, UsageRecord};
use tenantry_domain::{Actor, UsageBatchId};
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::Context;
use crate::state::AppState;
use crate::store::{CommandError, Refusal, SideWrite};

/// A record as the runtime reports it, validated, not yet costed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reported {
    pub id: String,
    pub agent_id: Uuid,
    pub provider: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub requests: i64,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub reservation_id: Option<String>,
    pub attributes: Option<serde_json::Value>,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Recorded {
        cost_micros: i64,
        price_version: u32,
        unpriced: bool,
    },
    /// Its id was recorded before with the same content: counted once.
    Duplicate,
}

/// JSON with its object keys sorted, whatever order they came in.
fn canonical(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<&String, String> =
                map.iter().map(|(k, v)| (k, canonical(v))).collect();
            let inner: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::String(k.clone())))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        serde_json::Value::Array(items) => {
            format!(
                "[{}]",
                items.iter().map(canonical).collect::<Vec<_>>().join(",")
            )
        }
        other => other.to_string(),
    }
}

impl Reported {
    /// The hash of what the record says (its id aside): the same id with
    /// other content is a conflict, with the same content a duplicate.
    pub fn content_hash(&self) -> Vec<u8> {
        let content = serde_json::json!([
            self.agent_id,
            self.provider,
            self.model,
            self.input_tokens,
            self.output_tokens,
            self.cached_input_tokens,
            self.requests,
            self.occurred_at.timestamp_micros(),
            self.reservation_id,
            self.attributes.as_ref().map(canonical),
        ]);
        Sha256::digest(content.to_string().as_bytes()).to_vec()
    }
}

fn agent_paused(agent_id: Uuid, status: &str) -> ApiError {
    ApiError::conflict(
        "agent_paused",
        "the agent is paused or archived: its usage is refused",
    )
    .with_details(serde_json::json!({ "agent_id": agent_id, "status": status }))
}

/// Record a validated batch: records whose id was recorded before with the
/// same content are duplicates (counted once), with other content 409
/// `usage_id_conflict`; the rest are costed and recorded in one event, their
/// ids taken in the same transaction. A batch racing another for an id
/// looks again.
pub async fn ingest(
    state: &AppState,
    ctx: &Context,
    actor: Actor,
    tenant_id: Uuid,
    reported: Vec<Reported>,
) -> Result<Vec<(String, Outcome)>, ApiError> {
    // Agents: each must be the tenant's and running.
    let mut agents: HashMap<Uuid, String> = HashMap::new();
    for r in &reported {
        if agents.contains_key(&r.agent_id) {
            continue;
        }
        let row = state.reads.agents().get(tenant_id, r.agent_id).await?;
        let status = row.map(|a| a.status).unwrap_or_default();
        agents.insert(r.agent_id, status);
    }
    let mut unknown = crate::error::Validation::default();
    for (i, r) in reported.iter().enumerate() {
        if agents.get(&r.agent_id).is_none_or(String::is_empty) {
            unknown.check::<()>(
                &format!("records[{i}].agent_id"),
                Err(tenantry_domain::values::ValueError::new(
                    "unknown_agent",
                    "no agent of this tenant has this id",
                )),
            );
        }
    }
    unknown.finish()?;
    for r in &reported {
        match agents.get(&r.agent_id).map(String::as_str) {
            Some("active") => {}
            Some(status) => return Err(agent_paused(r.agent_id, status)),
            None => return Err(crate::service::agents::not_found()),
        }
    }
    let hashes: Vec<Vec<u8>> = reported.iter().map(Reported::content_hash).collect();
    let (book, _) = state
        .store
        .load::<PriceBook>(PRICE_BOOK_ID.into())
        .await
        .map_err(ApiError::from)?;
    let meta = ctx.metadata(tenant_id, actor);
    for _ in 0..4 {
        let ids: Vec<String> = reported.iter().map(|r| r.id.clone()).collect();
        let recorded: HashMap<String, Vec<u8>> = state
            .store
            .usage_ids()
            .recorded(tenant_id, &ids)
            .await?
            .into_iter()
            .collect();
        let conflicts: Vec<&str> = reported
            .iter()
            .zip(&hashes)
            .filter(|(r, h)| recorded.get(&r.id).is_some_and(|held| held != *h))
            .map(|(r, _)| r.id.as_str())
            .collect();
        if !conflicts.is_empty() {
            return Err(ApiError::conflict(
                "usage_id_conflict",
                "a record id was recorded before with other content",
            )
            .with_details(serde_json::json!({ "ids": conflicts })));
        }
        let mut outcomes = Vec::with_capacity(reported.len());
        let mut records = Vec::new();
        let (mut new_ids, mut new_hashes) = (Vec::new(), Vec::new());
        for (r, hash) in reported.iter().zip(&hashes) {
            if recorded.contains_key(&r.id) || new_ids.contains(&r.id) {
                outcomes.push((r.id.clone(), Outcome::Duplicate));
                continue;
            }
            let (version, list) = book.in_effect(r.occurred_at);
            let cost = list.cost(
                version,
                &r.provider,
                &r.model,
                r.input_tokens,
                r.output_tokens,
                r.cached_input_tokens,
                r.requests,
            );
            outcomes.push((
                r.id.clone(),
                Outcome::Recorded {
                    cost_micros: cost.micros,
                    price_version: cost.version,
                    unpriced: cost.unpriced,
                },
            ));
            new_ids.push(r.id.clone());
            new_hashes.push(hash.clone());
            records.push(UsageRecord {
                id: r.id.clone(),
                agent_id: r.agent_id,
                provider: r.provider.clone(),
                model: r.model.clone(),
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                cached_input_tokens: r.cached_input_tokens,
                requests: r.requests,
                occurred_at: r.occurred_at,
                reservation_id: r.reservation_id.clone(),
                attributes: r.attributes.clone(),
                cost_micros: cost.micros,
                price_version: cost.version,
                unpriced: cost.unpriced,
            });
        }
        if records.is_empty() {
            return Ok(outcomes);
        }
        let batch_id = UsageBatchId::generate();
        let side = [SideWrite::TakeUsageIds {
            tenant_id,
            batch_id: batch_id.as_uuid(),
            ids: new_ids,
            hashes: new_hashes,
        }];
        let command = UsageBatchCommand::Record { tenant_id, records };
        match state
            .store
            .execute_with::<UsageBatch>(batch_id, command, &meta, &side)
            .await
        {
            Ok(committed) => {
                state.settle(committed.written.as_ref()).await;
                return Ok(outcomes);
            }
            Err(CommandError::Refused(Refusal::UsageIdTaken)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::concurrent_update())
}

/// The next version of the price book.
pub async fn publish_prices(
    state: &AppState,
    ctx: &Context,
    actor: Actor,
    list: PriceList,
) -> Result<u32, ApiError> {
    let meta = ctx.metadata(tenantry_domain::PLATFORM_TENANT, actor);
    let committed = state
        .store
        .execute::<PriceBook>(
            PRICE_BOOK_ID.into(),
            PriceBookCommand::Publish { list },
            &meta,
        )
        .await?;
    state.settle(committed.written.as_ref()).await;
    match committed.events.first() {
        Some(tenantry_domain::price_book::PriceBookEvent::PriceBookPublished {
            version, ..
        }) => Ok(*version),
        None => Err(ApiError::internal("publishing recorded nothing")),
    }
}

/// The book's versions, newest first, version 0 (built in) last.
pub async fn price_book(state: &AppState) -> Result<PriceBook, ApiError> {
    let (book, _) = state
        .store
        .load::<PriceBook>(PRICE_BOOK_ID.into())
        .await
        .map_err(ApiError::from)?;
    Ok(book)
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn key_order_does_not_change_the_canonical_form() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"q":2,"p":3}],"x":"s"}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":"s","y":[1,{"p":3,"q":2}]},"b":1}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        let c: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":"t","y":[1,{"p":3,"q":2}]},"b":1}"#).unwrap();
        assert_ne!(canonical(&a), canonical(&c));
    }
}
