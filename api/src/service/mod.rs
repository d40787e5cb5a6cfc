//! The application layer: the use cases more than one caller needs (route
//! modules, the workers, the CLI), as functions over the shared state.
//! Architecture invariant: a route module imports services, never another
//! route module, and nothing outside `routes` imports a route module.

pub mod agents;
pub mod api_keys;
pub mod approvals;
pub mod billing;
pub mod billing_reconcile;
pub mod invitations;
pub mod llm_keys;
pub mod memberships;
pub mod sessions;
pub mod stripe_sync;
pub mod stripe_webhooks;
pub mod tenants;
pub mod usage;
pub mod users;
