//! The Billing aggregate (one per tenant, in the tenant's stream): the
//! tenant's plan, the version of its terms it holds, and its subscription's
//! status. Its events are the tenant's billing history.

mod aggregate;
mod commands;
mod error;
mod events;

pub use aggregate::{Billing, BillingStatus, Invoice, SubscribedPlan, SubscriptionState};
pub use commands::BillingCommand;
pub use error::BillingError;
pub use events::BillingEvent;

#[cfg(test)]
mod tests;
