//! Tenantry's read side.
//!
//! - [`log`]: reading the event log in its global order (from `tenantry-store`).
//! - [`ReadModels`]: the queries the application asks, one handle per read model.
//! - [`runtime`]: the catch-up projector runtime (checkpoints, leadership, wake-ups).
//! - [`tenants`], [`users`], [`access`] (members and custom roles), [`llm_keys`] (provider keys, redacted), [`invitations`] (and the email outbox it feeds), [`billing`], [`agents`], [`usage`], [`approvals`]: read models, their projections and their queries.
//!
//! Architecture invariant: a read model is written only by its projection,
//! in the same transaction as that projection's checkpoint, and only from
//! events; so a restart neither loses nor repeats an event, and a rebuild
//! from zero yields identical rows.

pub mod access;
pub mod agents;
pub mod approvals;
pub mod billing;
pub mod invitations;
pub mod llm_keys;
pub mod personal;
pub mod runtime;
pub mod tenants;
pub mod usage;
pub mod users;

pub use personal::PersonalProjection;
pub use runtime::{
    Projection, ProjectionError, ProjectorConfig, ProjectorRuntime, TableProjection,
};
pub use tenantry_store::log::{Checkpoint, StoredEvent, Written};
/// The log reader lives with the event store; re-exported for projections.
pub use tenantry_store::{log, page};

use std::sync::Arc;

use sqlx::PgPool;

/// The read models as the application queries them, behind one value: the
/// same seam as `tenantry_store::Store` (a second backend becomes a private
/// enum here), so no handler holds a pool.
#[derive(Clone)]
pub struct ReadModels {
    pool: PgPool,
}

impl ReadModels {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn tenants(&self) -> tenants::Tenants<'_> {
        tenants::Tenants { pool: &self.pool }
    }

    pub fn users(&self) -> users::Users<'_> {
        users::Users { pool: &self.pool }
    }

    /// Members, custom roles and memberships.
    pub fn access(&self) -> access::Access<'_> {
        access::Access { pool: &self.pool }
    }

    pub fn invitations(&self) -> invitations::Invitations<'_> {
        invitations::Invitations { pool: &self.pool }
    }

    /// Plans and tenants' billing.
    pub fn billing(&self) -> billing::BillingModels<'_> {
        billing::BillingModels { pool: &self.pool }
    }

    /// Usage rollups and the price book's versions.
    pub fn usage(&self) -> usage::Usage<'_> {
        usage::Usage { pool: &self.pool }
    }

    /// Tenants' agents.
    pub fn agents(&self) -> agents::Agents<'_> {
        agents::Agents { pool: &self.pool }
    }

    /// Tenants' approval requests.
    pub fn approvals(&self) -> approvals::Approvals<'_> {
        approvals::Approvals { pool: &self.pool }
    }

    pub fn llm_keys(&self) -> llm_keys::LlmKeys<'_> {
        llm_keys::LlmKeys { pool: &self.pool }
    }
}

/// Every projection this build maintains, by name.
pub fn all(opener: Arc<dyn personal::Opener>) -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(tenants::PROJECTION),
        Arc::new(users::PROJECTION.opening(opener.clone())),
        Arc::new(access::PROJECTION),
        Arc::new(llm_keys::PROJECTION),
        Arc::new(invitations::PROJECTION.opening(opener.clone())),
        Arc::new(invitations::OUTBOX.opening(opener)),
        Arc::new(billing::PROJECTION),
        Arc::new(agents::PROJECTION),
        Arc::new(usage::PROJECTION),
        Arc::new(usage::PRICE_BOOK),
        Arc::new(approvals::PROJECTION),
    ]
}

#[cfg(test)]
mod tests {
    use tenantry_domain::agent::{Agent, AgentEvent};
    use tenantry_domain::api_key::{ApiKey, ApiKeyEvent};
    use tenantry_domain::approval::{Approval, ApprovalEvent};
    use tenantry_domain::billing::{Billing, BillingEvent};
    use tenantry_domain::llm_key::{LlmKey, LlmKeyEvent};
    use tenantry_domain::plan::{Plan, PlanEvent};
    use tenantry_domain::price_book::{PriceBook, PriceBookEvent};
    use tenantry_domain::session::{Session, SessionEvent};
    use tenantry_domain::tenant::{Tenant, TenantEvent};
    use tenantry_domain::usage::{Ledger, LedgerEvent};
    use tenantry_domain::user::{User, UserEvent};
    use tenantry_domain::{CodecError, EventCodec};

    use super::*;

    /// An opener that opens nothing (these tests project no personal data).
    struct Closed;

    impl personal::Opener for Closed {
        fn open(
            &self,
            _: uuid::Uuid,
            _: &[u8],
            _: &str,
            _: &tenantry_domain::values::Sealed,
        ) -> Result<String, String> {
            Err("closed".into())
        }
    }

    /// Whether `event_type` names a variant of `E` (an empty payload then
    /// fails for a missing field, never for an unknown variant).
    fn is_variant<E: EventCodec>(event_type: &str) -> bool {
        let version = E::current_version(event_type);
        match E::decode(event_type, version, serde_json::json!({})) {
            Ok(_) => true,
            Err(CodecError::Malformed { reason, .. }) => !reason.contains("unknown variant"),
            Err(CodecError::UnknownVersion { .. }) => false,
        }
    }

    /// A typo in a projection's `reads` would silently stop its read model
    /// updating for that event: every pair must name a real aggregate type
    /// and one of its event types.
    #[test]
    fn every_read_names_an_event_that_exists() {
        use cqrs_es::Aggregate;
        let reads = [
            tenants::PROJECTION.reads,
            users::PROJECTION.reads,
            access::PROJECTION.reads,
            llm_keys::PROJECTION.reads,
            invitations::PROJECTION.reads,
            invitations::OUTBOX.reads,
            billing::PROJECTION.reads,
            agents::PROJECTION.reads,
            usage::PROJECTION.reads,
            usage::PRICE_BOOK.reads,
            approvals::PROJECTION.reads,
        ];
        assert_eq!(
            reads.len(),
            all(Arc::new(Closed)).len(),
            "every projection is listed here"
        );
        for projection_reads in reads {
            for (aggregate_type, event_type) in projection_reads {
                let known = match *aggregate_type {
                    t if t == Tenant::TYPE => {
                        *event_type == "*" || is_variant::<TenantEvent>(event_type)
                    }
                    t if t == User::TYPE => {
                        *event_type == "*" || is_variant::<UserEvent>(event_type)
                    }
                    t if t == Session::TYPE => {
                        *event_type == "*" || is_variant::<SessionEvent>(event_type)
                    }
                    t if t == ApiKey::TYPE => {
                        *event_type == "*" || is_variant::<ApiKeyEvent>(event_type)
                    }
                    t if t == LlmKey::TYPE => {
                        *event_type == "*" || is_variant::<LlmKeyEvent>(event_type)
                    }
                    t if t == Plan::TYPE => {
                        *event_type == "*" || is_variant::<PlanEvent>(event_type)
                    }
                    t if t == Billing::TYPE => {
                        *event_type == "*" || is_variant::<BillingEvent>(event_type)
                    }
                    t if t == Agent::TYPE => {
                        *event_type == "*" || is_variant::<AgentEvent>(event_type)
                    }
                    t if t == Ledger::TYPE => {
                        *event_type == "*" || is_variant::<LedgerEvent>(event_type)
                    }
                    t if t == Approval::TYPE => {
                        *event_type == "*" || is_variant::<ApprovalEvent>(event_type)
                    }
                    t if t == PriceBook::TYPE => {
                        *event_type == "*" || is_variant::<PriceBookEvent>(event_type)
                    }
                    _ => false,
                };
                assert!(
                    known,
                    "a projection reads ({aggregate_type}, {event_type}), which no aggregate emits"
                );
            }
        }
        assert!(is_variant::<TenantEvent>("MemberAdded"));
        assert!(
            !is_variant::<TenantEvent>("MemberAddded"),
            "the check can fail"
        );
    }
}
