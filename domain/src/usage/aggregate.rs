use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::claims::{ClaimChange, UniqueClaims};
use crate::error::{DomainError, ErrorKind};
use crate::LedgerId;

/// At most this many records per batch.
pub const MAX_BATCH: usize = 1000;

/// The month (`2026-12`) a time falls in, UTC.
pub fn month_of(at: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", at.year(), at.month())
}

/// The ledger of a tenant's month.
pub fn ledger_id(tenant_id: Uuid, month: &str) -> LedgerId {
    Uuid::new_v5(&tenant_id, format!("ledger:{month}").as_bytes()).into()
}

/// One record of usage, costed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The client's id for the record (its idempotency key).
    pub id: String,
    pub agent_id: Uuid,
    pub provider: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub requests: i64,
    pub occurred_at: DateTime<Utc>,
    /// The reservation this usage settles: its hold is replaced by the cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Value>,
    /// In micro-units of the price book's currency.
    pub cost_micros: i64,
    pub price_version: u32,
    /// No price for the provider and model: costed at zero.
    #[serde(default)]
    pub unpriced: bool,
}

/// Credit held for an agent until its usage is recorded, it is released,
/// or it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub agent_id: Uuid,
    pub amount_micros: i64,
    pub expires_at: DateTime<Utc>,
}

/// The monthly limits in force for a decision, in micro-units; `None`: no
/// limit at that scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub tenant: Option<i64>,
    pub agent: Option<i64>,
}

/// Whose budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum BudgetScope {
    Tenant,
    Agent { agent_id: Uuid },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    /// Spent plus reserved reached the warning share of the limit.
    Warning,
    /// ... reached the limit.
    Exceeded,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LedgerCommand {
    /// Record a batch's new records; holds they name are settled.
    Record {
        tenant_id: Uuid,
        records: Vec<UsageRecord>,
        limits: BTreeMap<Option<Uuid>, i64>,
        warning_percent: u8,
    },
    /// Hold `amount_micros` for the agent, within both limits. The same id
    /// again is answered with the hold it has (no event).
    Reserve {
        tenant_id: Uuid,
        id: String,
        agent_id: Uuid,
        amount_micros: i64,
        expires_at: DateTime<Utc>,
        limits: Limits,
        warning_percent: u8,
        now: DateTime<Utc>,
    },
    /// The runtime gives a hold back.
    Release { id: String },
    /// Holds past their expiry are given back (the sweeper; a reservation
    /// does it too before deciding).
    Expire { now: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum LedgerEvent {
    /// New records of a batch, costed; `settled` names the holds they
    /// replaced.
    UsageRecorded {
        tenant_id: Uuid,
        records: Vec<UsageRecord>,
        #[serde(default)]
        settled: Vec<String>,
    },
    ReservationGranted {
        id: String,
        #[serde(flatten)]
        hold: Hold,
    },
    ReservationReleased {
        id: String,
    },
    ReservationExpired {
        id: String,
    },
    /// Spent plus reserved reached a threshold of a scope's limit: once per
    /// scope, threshold and month.
    BudgetThresholdCrossed {
        #[serde(flatten)]
        scope: BudgetScope,
        threshold: Threshold,
        limit_micros: i64,
        spent_micros: i64,
        reserved_micros: i64,
    },
}

crate::stored_event!(LedgerEvent);

impl UniqueClaims for LedgerEvent {
    /// Record ids are taken in the store's `usage_ids` (a side write of the
    /// same transaction), not as claims: a batch holds up to 1,000.
    fn claim_changes(&self) -> Vec<ClaimChange> {
        Vec::new()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("a batch holds 1 to 1000 records")]
    Size,
    #[error("the {scope:?} budget does not cover this reservation")]
    BudgetExceeded {
        scope: BudgetScope,
        limit_micros: i64,
        spent_micros: i64,
        reserved_micros: i64,
    },
    #[error("this reservation id was used for another agent or amount")]
    ReservationMismatch,
}

impl DomainError for LedgerError {
    fn code(&self) -> &'static str {
        match self {
            Self::Size => "invalid_batch_size",
            Self::BudgetExceeded { .. } => "budget_exceeded",
            Self::ReservationMismatch => "reservation_id_conflict",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::Size => ErrorKind::Invalid,
            Self::BudgetExceeded { .. } | Self::ReservationMismatch => ErrorKind::Conflict,
        }
    }
}

/// A tenant's month.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub spent_tenant: i64,
    pub spent_by_agent: BTreeMap<Uuid, i64>,
    /// Live holds by reservation id (an id is known while its hold lives:
    /// the state stays the size of what is in flight).
    pub holds: BTreeMap<String, Hold>,
    /// Thresholds crossed this month.
    pub crossed: BTreeSet<(BudgetScope, Threshold)>,
}

impl Ledger {
    /// In its tenant's chain.
    fn chain_of(&self, _id: LedgerId, _actor: &crate::Actor) -> Option<Uuid> {
        None
    }

    pub fn reserved_tenant(&self) -> i64 {
        self.holds.values().map(|h| h.amount_micros).sum()
    }

    pub fn reserved_by(&self, agent_id: Uuid) -> i64 {
        self.holds
            .values()
            .filter(|h| h.agent_id == agent_id)
            .map(|h| h.amount_micros)
            .sum()
    }

    pub fn spent_by(&self, agent_id: Uuid) -> i64 {
        self.spent_by_agent.get(&agent_id).copied().unwrap_or(0)
    }

    /// Spent and reserved at a scope.
    pub fn totals(&self, scope: BudgetScope) -> (i64, i64) {
        match scope {
            BudgetScope::Tenant => (self.spent_tenant, self.reserved_tenant()),
            BudgetScope::Agent { agent_id } => {
                (self.spent_by(agent_id), self.reserved_by(agent_id))
            }
        }
    }

    /// The threshold events a state reaches that were not crossed yet.
    fn crossings(
        &self,
        scopes: &[(BudgetScope, Option<i64>)],
        warning_percent: u8,
    ) -> Vec<LedgerEvent> {
        let mut events = Vec::new();
        for (scope, limit) in scopes {
            let Some(limit) = *limit else { continue };
            let (spent, reserved) = self.totals(*scope);
            let used = i128::from(spent) + i128::from(reserved);
            let warning = i128::from(limit) * i128::from(warning_percent) / 100;
            for (threshold, at) in [
                (Threshold::Warning, warning),
                (Threshold::Exceeded, i128::from(limit)),
            ] {
                if used >= at && limit > 0 && !self.crossed.contains(&(*scope, threshold)) {
                    events.push(LedgerEvent::BudgetThresholdCrossed {
                        scope: *scope,
                        threshold,
                        limit_micros: limit,
                        spent_micros: spent,
                        reserved_micros: reserved,
                    });
                }
            }
        }
        events
    }

    fn expired(&self, now: DateTime<Utc>) -> Vec<LedgerEvent> {
        self.holds
            .iter()
            .filter(|(_, h)| h.expires_at <= now)
            .map(|(id, _)| LedgerEvent::ReservationExpired { id: id.clone() })
            .collect()
    }

    /// The state after `events` (to decide on what they lead to).
    fn after(&self, events: &[LedgerEvent]) -> Self {
        let mut next = self.clone();
        for e in events {
            next.evolve(e.clone());
        }
        next
    }

    fn decide(&self, command: LedgerCommand) -> Result<Vec<LedgerEvent>, LedgerError> {
        match command {
            LedgerCommand::Record {
                tenant_id,
                records,
                limits,
                warning_percent,
            } => {
                if records.is_empty() || records.len() > MAX_BATCH {
                    return Err(LedgerError::Size);
                }
                let mut settled: Vec<String> = records
                    .iter()
                    .filter_map(|r| r.reservation_id.clone())
                    .filter(|id| self.holds.contains_key(id))
                    .collect();
                settled.dedup();
                let agents: BTreeSet<Uuid> = records.iter().map(|r| r.agent_id).collect();
                let mut events = vec![LedgerEvent::UsageRecorded {
                    tenant_id,
                    records,
                    settled,
                }];
                let mut scopes = vec![(BudgetScope::Tenant, limits.get(&None).copied())];
                scopes.extend(agents.into_iter().map(|a| {
                    (
                        BudgetScope::Agent { agent_id: a },
                        limits.get(&Some(a)).copied(),
                    )
                }));
                let next = self.after(&events);
                events.extend(next.crossings(&scopes, warning_percent));
                Ok(events)
            }
            LedgerCommand::Reserve {
                tenant_id: _,
                id,
                agent_id,
                amount_micros,
                expires_at,
                limits,
                warning_percent,
                now,
            } => {
                if let Some(held) = self.holds.get(&id) {
                    return if held.agent_id == agent_id && held.amount_micros == amount_micros {
                        Ok(Vec::new())
                    } else {
                        Err(LedgerError::ReservationMismatch)
                    };
                }
                // Holds whose holder died give their credit back first.
                let mut events = self.expired(now);
                let current = self.after(&events);
                let scopes = [
                    (BudgetScope::Agent { agent_id }, limits.agent),
                    (BudgetScope::Tenant, limits.tenant),
                ];
                for (scope, limit) in scopes {
                    let Some(limit) = limit else { continue };
                    let (spent, reserved) = current.totals(scope);
                    if i128::from(spent) + i128::from(reserved) + i128::from(amount_micros)
                        > i128::from(limit)
                    {
                        return Err(LedgerError::BudgetExceeded {
                            scope,
                            limit_micros: limit,
                            spent_micros: spent,
                            reserved_micros: reserved,
                        });
                    }
                }
                events.push(LedgerEvent::ReservationGranted {
                    id,
                    hold: Hold {
                        agent_id,
                        amount_micros,
                        expires_at,
                    },
                });
                let next = self.after(&events);
                events.extend(next.crossings(&scopes, warning_percent));
                Ok(events)
            }
            // Nothing held under the id (settled, released or expired
            // already, or never granted): nothing to give back.
            LedgerCommand::Release { id } => Ok(if self.holds.contains_key(&id) {
                vec![LedgerEvent::ReservationReleased { id }]
            } else {
                Vec::new()
            }),
            LedgerCommand::Expire { now } => Ok(self.expired(now)),
        }
    }

    fn evolve(&mut self, event: LedgerEvent) {
        match event {
            LedgerEvent::UsageRecorded {
                records, settled, ..
            } => {
                for r in records {
                    self.spent_tenant = self.spent_tenant.saturating_add(r.cost_micros);
                    let agent = self.spent_by_agent.entry(r.agent_id).or_default();
                    *agent = agent.saturating_add(r.cost_micros);
                }
                for id in settled {
                    self.holds.remove(&id);
                }
            }
            LedgerEvent::ReservationGranted { id, hold } => {
                self.holds.insert(id, hold);
            }
            LedgerEvent::ReservationReleased { id } | LedgerEvent::ReservationExpired { id } => {
                self.holds.remove(&id);
            }
            LedgerEvent::BudgetThresholdCrossed {
                scope, threshold, ..
            } => {
                self.crossed.insert((scope, threshold));
            }
        }
    }
}

crate::aggregate!(
    Ledger,
    "ledger",
    crate::LedgerId,
    LedgerCommand,
    LedgerEvent,
    LedgerError
);
