//! Usage's use cases: ingesting the agent runtime's records (validated all
//! or nothing, each id counted once, costed at the price book in effect
//! when it occurred), credit reservations against the monthly budgets, the
//! budgets' standing, the sweeper's expiry, and publishing the price book.
//! Everything about a tenant's month is decided on its ledger aggregate
//! (`tenantry_domain::usage`).

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};
use tenantry_domain::agent::{Agent, AgentStatus};
use tenantry_domain::price_book::{PriceBook, PriceBookCommand, PriceList, PRICE_BOOK_ID};
use tenantry_domain::usage::{
    ledger_id, month_of, BudgetScope, Ledger, LedgerCommand, LedgerError, Limits, UsageRecord,
};
use tenantry_domain::values::BudgetPeriod;
use tenantry_domain::Actor;
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

/// The tenant's agent, as this process last knew it when nothing changed
/// it since (`Store::load_recent`); `None` when the tenant has no such
/// agent.
async fn agent_of(
    state: &AppState,
    tenant_id: Uuid,
    agent_id: Uuid,
) -> Result<Option<Agent>, ApiError> {
    let (agent, _) = state
        .store
        .load_recent::<Agent>(agent_id.into())
        .await
        .map_err(ApiError::from)?;
    Ok((agent.id.is_some() && agent.tenant_id == Some(tenant_id)).then_some(agent))
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
    let mut budgets: Vec<(Uuid, Option<i64>)> = Vec::new();
    for r in &reported {
        if agents.contains_key(&r.agent_id) {
            continue;
        }
        let agent = agent_of(state, tenant_id, r.agent_id).await?;
        budgets.push((
            r.agent_id,
            agent
                .as_ref()
                .and_then(|a| a.settings.as_ref())
                .and_then(|s| s.monthly_budget_minor),
        ));
        let status = agent.map_or(String::new(), |a| a.status.as_str().to_string());
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
        .load_recent::<PriceBook>(PRICE_BOOK_ID.into())
        .await
        .map_err(ApiError::from)?;
    let meta = ctx.metadata(tenant_id, actor);
    for attempt in 0..4 {
        // First as if every id were new (the runtime's usual case): taking
        // the ids refuses the append if one was recorded, and then the
        // recorded ones are looked up.
        let recorded: HashMap<String, Vec<u8>> = if attempt == 0 {
            HashMap::new()
        } else {
            let ids: Vec<String> = reported.iter().map(|r| r.id.clone()).collect();
            state
                .store
                .usage_ids()
                .recorded(tenant_id, &ids)
                .await?
                .into_iter()
                .collect()
        };
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
        let mut taken: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for (r, hash) in reported.iter().zip(&hashes) {
            if recorded.contains_key(&r.id) || !taken.insert(r.id.as_str()) {
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
        let batch_id = Uuid::now_v7();
        let side = [SideWrite::TakeUsageIds {
            tenant_id,
            batch_id,
            ids: new_ids,
            hashes: new_hashes,
        }];
        let limits = limits_of(state, tenant_id, budgets.iter().copied(), state.now()).await?;
        let mut by_scope = BTreeMap::new();
        if let Some(t) = limits.tenant {
            by_scope.insert(None, t);
        }
        for (agent, limit) in limits.agents {
            by_scope.insert(Some(agent), limit);
        }
        let command = LedgerCommand::Record {
            tenant_id,
            records,
            limits: by_scope,
            warning_percent: WARNING_PERCENT,
        };
        let ledger = ledger_id(tenant_id, &limits.period.key);
        match state
            .store
            .execute_with::<Ledger>(ledger, command, &meta, &side)
            .await
        {
            // Acknowledged once the records are in the log (nothing
            // acknowledged is lost); the rollups follow within the usage
            // projection's lag rather than the runtime waiting for them:
            // budgets read the ledger itself, and a runtime records on every
            // call (ADR 0006).
            Ok(_) => return Ok(outcomes),
            Err(CommandError::Refused(Refusal::UsageIdTaken)) => continue,
            Err(CommandError::Domain(LedgerError::BudgetExceeded { .. })) => {
                return Err(ApiError::internal("recording usage is never refused"))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::concurrent_update())
}

/// The share of a limit at which a budget warns.
pub const WARNING_PERCENT: u8 = 80;

/// Micro-units per minor unit (a cent): budgets and plan credits are in
/// minor units, costs in micro-units of the same currency.
pub const MICROS_PER_MINOR: i64 = 10_000;

/// The limits of a tenant and of some of its agents for the budget period,
/// in micro-units, and the period.
pub struct AllLimits {
    pub tenant: Option<i64>,
    pub agents: Vec<(Uuid, i64)>,
    pub period: Period,
}

/// The budget period usage counts in: its name (the key of the tenant's
/// ledger for it) and when its budgets reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// `2026-12` (a calendar month), or `until-<end>` (a billing period).
    pub key: String,
    pub resets_at: chrono::DateTime<chrono::Utc>,
}

/// The tenant's limit is its `monthly_budget_minor` setting, else its
/// plan's included credit (a plan including none sets no limit); an
/// agent's is its own `monthly_budget_minor`, given with its id (from the
/// agent the caller has read). The period is the calendar month (UTC) by
/// default; with the tenant setting `budget_period: billing_period`, its
/// subscription's current billing period (named by its end) while one
/// runs. The tenant and its billing are each read once (from memory while
/// nobody changed them).
pub async fn limits_of(
    state: &AppState,
    tenant_id: Uuid,
    agent_budgets: impl IntoIterator<Item = (Uuid, Option<i64>)>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<AllLimits, ApiError> {
    let (tenant, _) = state
        .store
        .load_recent::<tenantry_domain::tenant::Tenant>(tenant_id.into())
        .await
        .map_err(ApiError::from)?;
    let from_setting = tenant
        .settings
        .monthly_budget_minor()
        .map(|m| i64::try_from(m).unwrap_or(i64::MAX));
    let by_billing_period = tenant.settings.budget_period() == BudgetPeriod::BillingPeriod;
    let billing = if from_setting.is_none() || by_billing_period {
        let (billing, _) = state
            .store
            .load_recent::<tenantry_domain::billing::Billing>(tenant_id.into())
            .await
            .map_err(ApiError::from)?;
        Some(billing)
    } else {
        None
    };
    let tenant_minor = from_setting.or_else(|| {
        billing
            .as_ref()
            .and_then(|b| b.terms.as_ref())
            .map(|t| t.entitlements.monthly_credit_minor)
            .filter(|c| *c > 0)
    });
    let mut agents: Vec<(Uuid, i64)> = Vec::new();
    for (id, budget) in agent_budgets {
        if let Some(budget) = budget {
            if !agents.iter().any(|(a, _)| *a == id) {
                agents.push((id, budget.saturating_mul(MICROS_PER_MINOR)));
            }
        }
    }
    let period_end = billing
        .and_then(|b| b.current_period_end)
        .filter(|end| by_billing_period && *end > now);
    let period = match period_end {
        Some(end) => Period {
            key: format!("until-{}", end.format("%Y-%m-%dT%H:%M:%SZ")),
            resets_at: end,
        },
        None => Period {
            key: month_of(now),
            resets_at: resets_at(now),
        },
    };
    Ok(AllLimits {
        tenant: tenant_minor.map(|m| m.saturating_mul(MICROS_PER_MINOR)),
        agents,
        period,
    })
}

/// The first instant of the next month (UTC): when budgets reset.
pub fn resets_at(now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::{Datelike, TimeZone};
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    chrono::Utc
        .with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
}

/// What a reservation asks for.
pub struct ReservationAsk {
    pub id: String,
    pub agent_id: Uuid,
    pub amount: Amount,
    pub ttl: chrono::Duration,
}

/// An amount, or what the call is expected to use.
pub enum Amount {
    Micros(i64),
    Estimate {
        provider: String,
        model: String,
        input_tokens: i64,
        output_tokens: i64,
    },
}

/// A hold as granted.
pub struct Granted {
    pub id: String,
    pub agent_id: Uuid,
    pub amount_micros: i64,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

fn allowed(list: &[String], provider: &str, model: &str) -> bool {
    list.is_empty()
        || list
            .iter()
            .any(|e| e == provider || *e == format!("{provider}/{model}"))
}

/// Hold credit for an agent's call, within the agent's and the tenant's
/// budgets for the month, or 402 `budget_exceeded` naming the scope.
pub async fn reserve(
    state: &AppState,
    ctx: &Context,
    actor: Actor,
    tenant_id: Uuid,
    ask: ReservationAsk,
) -> Result<Granted, ApiError> {
    let agent = agent_of(state, tenant_id, ask.agent_id)
        .await?
        .ok_or_else(crate::service::agents::not_found)?;
    if agent.status != AgentStatus::Active {
        return Err(agent_paused(ask.agent_id, agent.status.as_str()));
    }
    let (budget_minor, allow) = agent
        .settings
        .map_or((None, Vec::new()), |s| (s.monthly_budget_minor, s.allow));
    let now = state.now();
    let amount_micros = match ask.amount {
        Amount::Micros(m) => m,
        Amount::Estimate {
            provider,
            model,
            input_tokens,
            output_tokens,
        } => {
            if !allowed(&allow, &provider, &model) {
                return Err(ApiError::conflict(
                    "model_not_allowed",
                    "the agent's allow-list does not include this provider and model",
                )
                .with_details(serde_json::json!({ "provider": provider, "model": model })));
            }
            let (book, _) = state
                .store
                .load_recent::<PriceBook>(PRICE_BOOK_ID.into())
                .await
                .map_err(ApiError::from)?;
            let (version, list) = book.in_effect(now);
            list.cost(
                version,
                &provider,
                &model,
                input_tokens,
                output_tokens,
                0,
                1,
            )
            .micros
        }
    };
    let limits = limits_of(state, tenant_id, [(ask.agent_id, budget_minor)], now).await?;
    let period = limits.period;
    let expires_at = now + ask.ttl;
    let command = LedgerCommand::Reserve {
        tenant_id,
        id: ask.id.clone(),
        agent_id: ask.agent_id,
        amount_micros,
        expires_at,
        limits: Limits {
            tenant: limits.tenant,
            agent: limits.agents.first().map(|(_, l)| *l),
        },
        warning_percent: WARNING_PERCENT,
        now,
    };
    let ledger = ledger_id(tenant_id, &period.key);
    let meta = ctx.metadata(tenant_id, actor);
    match state.store.execute::<Ledger>(ledger, command, &meta).await {
        // No read model answers for a hold (budgets read the ledger
        // itself), so the answer does not wait for the projections.
        Ok(committed) => {
            let granted = committed.events.iter().find_map(|e| match e {
                tenantry_domain::usage::LedgerEvent::ReservationGranted { id, hold }
                    if *id == ask.id =>
                {
                    Some(hold.clone())
                }
                _ => None,
            });
            let hold = match granted {
                Some(hold) => hold,
                // Granted before under this id: the hold it is.
                None => {
                    let (held, _) = state
                        .store
                        .load::<Ledger>(ledger)
                        .await
                        .map_err(ApiError::from)?;
                    held.holds
                        .get(&ask.id)
                        .cloned()
                        .ok_or_else(|| ApiError::internal("a granted hold is not held"))?
                }
            };
            Ok(Granted {
                id: ask.id,
                agent_id: hold.agent_id,
                amount_micros: hold.amount_micros,
                expires_at: hold.expires_at,
            })
        }
        Err(CommandError::Domain(LedgerError::BudgetExceeded {
            scope,
            limit_micros,
            spent_micros,
            reserved_micros,
        })) => {
            let resets = period.resets_at;
            let scope_json = match scope {
                BudgetScope::Tenant => serde_json::json!("tenant"),
                BudgetScope::Agent { .. } => serde_json::json!("agent"),
            };
            let agent_id = match scope {
                BudgetScope::Agent { agent_id } => Some(agent_id),
                BudgetScope::Tenant => None,
            };
            Err(ApiError::new(
                axum::http::StatusCode::PAYMENT_REQUIRED,
                "budget_exceeded",
                "the budget does not cover this reservation until it resets",
            )
            .with_details(serde_json::json!({
                "scope": scope_json,
                "agent_id": agent_id,
                "limit_micros": limit_micros,
                "spent_micros": spent_micros,
                "reserved_micros": reserved_micros,
                "requested_micros": amount_micros,
                "resets_at": resets,
                "retry_after_seconds": (resets - now).num_seconds().max(1),
            })))
        }
        Err(e) => Err(e.into()),
    }
}

/// Give a hold back (from the ledger holding it: the current period's, the
/// one the read model names, else last month's); nothing held under the id
/// is not an error.
pub async fn release(
    state: &AppState,
    ctx: &Context,
    actor: Actor,
    tenant_id: Uuid,
    id: &str,
) -> Result<(), ApiError> {
    let now = state.now();
    let last_month =
        chrono::Datelike::with_day0(&now, 0).unwrap_or(now) - chrono::Duration::days(1);
    let meta = ctx.metadata(tenant_id, actor);
    let period = limits_of(state, tenant_id, [], now).await?.period;
    let current = ledger_id(tenant_id, &period.key);
    let named = state.reads.usage().ledger_of_hold(tenant_id, id).await?;
    let mut ledgers = vec![current];
    ledgers.extend(named.map(tenantry_domain::LedgerId::from));
    ledgers.push(ledger_id(tenant_id, &month_of(last_month)));
    ledgers.dedup();
    for ledger in ledgers {
        let committed = state
            .store
            .execute::<Ledger>(ledger, LedgerCommand::Release { id: id.to_string() }, &meta)
            .await?;
        if committed.written.is_some() {
            return Ok(());
        }
    }
    Ok(())
}

/// Give back the holds past their expiry (the sweeper); how many ledgers
/// it looked at.
pub async fn sweep(state: &AppState) -> Result<usize, ApiError> {
    let now = state.now();
    let due = state
        .reads
        .usage()
        .ledgers_with_expired_holds(now, 100)
        .await?;
    for (ledger, tenant_id) in &due {
        let command = LedgerCommand::Expire { now };
        super::run_as_system::<Ledger>(
            state,
            "reservation-sweeper",
            *tenant_id,
            (*ledger).into(),
            command,
        )
        .await?;
    }
    Ok(due.len())
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
