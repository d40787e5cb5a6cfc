//! Uniqueness across aggregates. An aggregate cannot see its siblings, so an
//! event that needs a globally unique value (an email, a slug) declares a
//! claim; the store records the claim in the same transaction as the event.

/// The namespaces in which values must be unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClaimScope {
    UserEmail,
    TenantSlug,
    /// One provider key per provider per tenant (`tenant_id:provider`).
    TenantProvider,
    /// A billing plan's key (`team`, `agency`).
    PlanKey,
    /// A Stripe event id: each is applied at most once.
    StripeEvent,
    /// A tenant's agent slot (`tenant_id:n`): an agent that is not archived
    /// holds one, so the plan's `max_agents` holds under concurrent creates.
    AgentSlot,
}

impl ClaimScope {
    /// The stable name stored in the `unique_claims` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserEmail => "user_email",
            Self::TenantSlug => "tenant_slug",
            Self::TenantProvider => "tenant_provider",
            Self::PlanKey => "plan_key",
            Self::StripeEvent => "stripe_event",
            Self::AgentSlot => "agent_slot",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user_email" => Some(Self::UserEmail),
            "tenant_slug" => Some(Self::TenantSlug),
            "tenant_provider" => Some(Self::TenantProvider),
            "plan_key" => Some(Self::PlanKey),
            "stripe_event" => Some(Self::StripeEvent),
            "agent_slot" => Some(Self::AgentSlot),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimChange {
    /// Take the value; fails if another aggregate holds it.
    Claim { scope: ClaimScope, value: String },
    /// Give the value back so another aggregate may take it.
    Release { scope: ClaimScope, value: String },
}

/// Implemented by every event type: which unique values it takes or frees.
pub trait UniqueClaims {
    fn claim_changes(&self) -> Vec<ClaimChange> {
        Vec::new()
    }
}
