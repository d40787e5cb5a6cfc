//! Tenantry's read side.
//!
//! - [`log`]: reading the event log in its global order (from `tenantry-store`).
//! - [`runtime`]: the catch-up projector runtime (checkpoints, leadership, wake-ups).
//! - [`tenants`], [`users`], [`access`] (members and custom roles), [`llm_keys`] (provider keys, redacted), [`invitations`] (and the email outbox it feeds): read models, their projections and their queries.
//!
//! Architecture invariant: a read model is written only by its projection,
//! in the same transaction as that projection's checkpoint, and only from
//! events; so a restart neither loses nor repeats an event, and a rebuild
//! from zero yields identical rows.

pub mod access;
pub mod invitations;
pub mod llm_keys;
pub mod runtime;
pub mod tenants;
pub mod users;

pub use runtime::{
    Projection, ProjectionError, ProjectorConfig, ProjectorRuntime, TableProjection,
};
pub use tenantry_store::log::{Checkpoint, StoredEvent, Written};
/// The log reader lives with the event store; re-exported for projections.
pub use tenantry_store::{log, page};

use std::sync::Arc;

/// Every projection this build maintains, by name.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(tenants::PROJECTION),
        Arc::new(users::PROJECTION),
        Arc::new(access::PROJECTION),
        Arc::new(llm_keys::PROJECTION),
        Arc::new(invitations::PROJECTION),
        Arc::new(invitations::OUTBOX),
    ]
}
