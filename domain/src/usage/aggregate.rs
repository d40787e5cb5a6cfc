use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::claims::{ClaimChange, UniqueClaims};
use crate::error::{DomainError, ErrorKind};

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

#[derive(Debug, Clone, PartialEq)]
pub enum UsageBatchCommand {
    Record {
        tenant_id: Uuid,
        records: Vec<UsageRecord>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum UsageEvent {
    UsageRecorded {
        tenant_id: Uuid,
        records: Vec<UsageRecord>,
    },
}

crate::stored_event!(UsageEvent);

impl UniqueClaims for UsageEvent {
    /// Record ids are taken in the store's `usage_ids` (a side write of the
    /// same transaction), not as claims: a batch holds up to 1,000.
    fn claim_changes(&self) -> Vec<ClaimChange> {
        Vec::new()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageBatchError {
    #[error("this batch was recorded already")]
    AlreadyRecorded,
    #[error("a batch holds 1 to 1000 records")]
    Size,
}

impl DomainError for UsageBatchError {
    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyRecorded => "usage_batch_already_recorded",
            Self::Size => "invalid_batch_size",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::AlreadyRecorded => ErrorKind::Conflict,
            Self::Size => ErrorKind::Invalid,
        }
    }
}

/// At most this many records per batch.
pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageBatch {
    pub recorded: bool,
}

impl UsageBatch {
    /// In its tenant's chain.
    fn chain_of(&self, _id: crate::UsageBatchId, _actor: &crate::Actor) -> Option<Uuid> {
        None
    }

    fn decide(&self, command: UsageBatchCommand) -> Result<Vec<UsageEvent>, UsageBatchError> {
        match command {
            UsageBatchCommand::Record { tenant_id, records } => {
                if self.recorded {
                    return Err(UsageBatchError::AlreadyRecorded);
                }
                if records.is_empty() || records.len() > MAX_BATCH {
                    return Err(UsageBatchError::Size);
                }
                Ok(vec![UsageEvent::UsageRecorded { tenant_id, records }])
            }
        }
    }

    fn evolve(&mut self, event: UsageEvent) {
        match event {
            UsageEvent::UsageRecorded { .. } => self.recorded = true,
        }
    }
}

crate::aggregate!(
    UsageBatch,
    "usage_batch",
    crate::UsageBatchId,
    UsageBatchCommand,
    UsageEvent,
    UsageBatchError
);
