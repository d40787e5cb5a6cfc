//! The Tenant aggregate: a customer organisation of the SaaS platform.

mod aggregate;
mod commands;
mod error;
mod events;

pub use aggregate::{Tenant, TenantStatus};
pub use commands::TenantCommand;
pub use error::TenantError;
pub use events::TenantEvent;

#[cfg(test)]
mod tests;
