//! The Plan aggregate (platform scope): what a tenant can subscribe to, its
//! price and its entitlements. Plans are versioned: publishing new terms
//! makes a new version, and a subscription keeps the version it took until
//! it changes plan. Its events are the price list's history.

mod aggregate;
mod commands;
mod error;
mod events;
mod terms;

pub use aggregate::{parse_stripe_price_id, stripe_price_id, Plan};
pub use commands::PlanCommand;
pub use error::PlanError;
pub use events::PlanEvent;
pub use terms::{Entitlements, Feature, Interval, PlanTerms};

#[cfg(test)]
mod tests;

/// Terms for other aggregates' tests.
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::tests::terms;
}
