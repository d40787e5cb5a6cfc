use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AgentSettings;
use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum AgentEvent {
    /// Claims the tenant's slot `slot` (`{tenant}:{slot}`).
    AgentCreated {
        agent_id: Uuid,
        tenant_id: Uuid,
        slot: u32,
        #[serde(flatten)]
        settings: AgentSettings,
    },
    AgentUpdated {
        #[serde(flatten)]
        settings: AgentSettings,
    },
    AgentPaused {},
    AgentResumed {},
    /// Releases the agent's slot.
    AgentArchived {
        tenant_id: Uuid,
        slot: u32,
    },
}

crate::stored_event!(AgentEvent);

/// The claim value of a tenant's agent slot.
pub fn slot_claim(tenant_id: Uuid, slot: u32) -> String {
    format!("{tenant_id}:{slot}")
}

impl UniqueClaims for AgentEvent {
    fn claim_changes(&self) -> Vec<ClaimChange> {
        match self {
            Self::AgentCreated {
                tenant_id, slot, ..
            } => vec![ClaimChange::Claim {
                scope: ClaimScope::AgentSlot,
                value: slot_claim(*tenant_id, *slot),
            }],
            Self::AgentArchived { tenant_id, slot } => vec![ClaimChange::Release {
                scope: ClaimScope::AgentSlot,
                value: slot_claim(*tenant_id, *slot),
            }],
            _ => Vec::new(),
        }
    }
}
