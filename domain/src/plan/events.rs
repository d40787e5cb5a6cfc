use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::PlanTerms;
use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
use crate::values::{Label, Slug};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PlanEvent {
    PlanCreated {
        plan_id: Uuid,
        key: Slug,
        name: Label,
        terms: PlanTerms,
    },
    PlanVersionPublished {
        version: u32,
        terms: PlanTerms,
    },
    PlanRetired {},
}

crate::stored_event!(PlanEvent);

impl UniqueClaims for PlanEvent {
    fn claim_changes(&self) -> Vec<ClaimChange> {
        match self {
            Self::PlanCreated { key, .. } => vec![ClaimChange::Claim {
                scope: ClaimScope::PlanKey,
                value: key.as_str().to_string(),
            }],
            _ => Vec::new(),
        }
    }
}
