//! Usage: what agents spent, as the agent runtime reports it. Each ingested
//! batch is one aggregate (`usage_batch`, in its tenant's stream) whose one
//! event, `UsageRecorded`, carries the batch's new records, each costed at
//! the price-book version in effect when it occurred (cost and version are
//! part of the event: no later price change alters them). Each record's
//! client-chosen id is taken in the same transaction (the store's
//! `usage_ids`), so a record is counted once however often it is sent.

mod aggregate;

pub use aggregate::{
    UsageBatch, UsageBatchCommand, UsageBatchError, UsageEvent, UsageRecord, MAX_BATCH,
};

#[cfg(test)]
mod tests;
