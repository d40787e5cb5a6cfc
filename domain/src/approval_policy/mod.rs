//! The ApprovalPolicies aggregate: a tenant's approval policies (one
//! aggregate per tenant, its id the tenant's, in the tenant's stream).
//!
//! A policy names the actions it covers, each exactly (`payments.refund`)
//! or by a prefix ending in a dot (`payments.`), and its stages. An action
//! is covered by the policy that names it exactly, else by the one with
//! the longest prefix of it; no two policies name the same pattern. An
//! action no policy covers takes the tenant's default policy (one stage,
//! one approval) or is refused, as the tenant chooses.

mod aggregate;
mod commands;
mod error;
mod events;

pub use aggregate::{ActionPattern, ApprovalPolicies, Covered, Policy, Uncovered};
pub use commands::PolicyCommand;
pub use error::PolicyError;
pub use events::PolicyEvent;

#[cfg(test)]
mod tests;
