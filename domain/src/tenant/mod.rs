//! The Tenant aggregate: a customer organisation of the SaaS platform, with
//! its roster (members and their roles) and its custom roles. One aggregate
//! holds all three so the roster's invariants (a last owner, the seat limit,
//! a role in use) are decided on one consistent state.

mod aggregate;
mod commands;
mod error;
mod events;
mod invitations;
mod roster;

pub use aggregate::{Invitation, InvitationStatus, Tenant, TenantStatus};
pub use commands::{Authority, TenantCommand};
pub use error::TenantError;
pub use events::{RemovalReason, TenantEvent};

#[cfg(test)]
mod invitation_tests;
#[cfg(test)]
mod roster_tests;
#[cfg(test)]
mod tests;
