use serde::{Deserialize, Serialize};

use super::{Policy, Uncovered};
use crate::claims::{ClaimChange, UniqueClaims};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PolicyEvent {
    /// The policy, all of it, from now on (new or replacing its rules).
    ApprovalPolicyDefined {
        #[serde(flatten)]
        policy: Policy,
    },
    ApprovalPolicyRemoved {
        name: String,
    },
    UncoveredActionsSet {
        uncovered: Uncovered,
    },
}

crate::stored_event!(PolicyEvent);

impl UniqueClaims for PolicyEvent {
    fn claim_changes(&self) -> Vec<ClaimChange> {
        Vec::new()
    }
}
