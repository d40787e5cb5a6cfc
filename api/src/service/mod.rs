//! The application layer: the use cases more than one caller needs (route
//! modules, the workers, the CLI), as functions over the shared state.
//! Architecture invariant: a route module imports services, never another
//! route module, and nothing outside `routes` imports a route module.

pub mod agents;
pub mod api_keys;
pub mod approvals;
pub mod audit;
pub mod billing;
pub mod billing_reconcile;
pub mod event_stream;
pub mod invitations;
pub mod llm_keys;
pub mod memberships;
pub mod sessions;
pub mod stripe_sync;
pub mod stripe_webhooks;
pub mod tenants;
pub mod usage;
pub mod users;

use tenantry_domain::{AggregateRoot, DomainError, EventCodec, UniqueClaims};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Run a command as one of this process's jobs (actor `system:{job}`), and
/// wait until the projections show it: what the expiry jobs and the
/// reservation sweeper do with each item they find due.
pub async fn run_as_system<A>(
    state: &AppState,
    job: &'static str,
    tenant_id: Uuid,
    id: A::Id,
    command: A::Command,
) -> Result<(), ApiError>
where
    A: AggregateRoot<Services = ()> + Clone + 'static,
    A::Command: Clone + Send + Sync,
    A::Error: DomainError + Send,
    A::Event: EventCodec + UniqueClaims,
{
    let meta = tenantry_domain::EventMetadata::new(
        tenant_id,
        tenantry_domain::Actor::system(job),
        None,
        state.now(),
    );
    let committed = state.store.execute::<A>(id, command, &meta).await?;
    state.settle(committed.written.as_ref()).await;
    Ok(())
}
