//! The ledger of a tenant's spending, one aggregate per tenant and calendar
//! month (UTC), in the tenant's stream: the usage recorded that month (each
//! record costed at the price-book version in effect when it occurred, cost
//! and version in the event), the credit reservations held against the
//! tenant's and each agent's monthly budget, and the budget thresholds
//! crossed. Every decision about one tenant's month is taken on one state,
//! in order, so at the moment any reservation is granted, spent plus
//! reserved is within every limit, whatever the concurrency and however
//! many processes (the store serializes an aggregate's commands, and groups
//! the queued ones into one append).
//!
//! Usage counts toward the month it is recorded in. Record ids are taken in
//! the store's `usage_ids` in the same transaction as the event.

mod aggregate;

pub use aggregate::{
    ledger_id, month_of, BudgetScope, Hold, Ledger, LedgerCommand, LedgerError, LedgerEvent,
    Limits, Threshold, UsageRecord, MAX_BATCH,
};

#[cfg(test)]
mod tests;
