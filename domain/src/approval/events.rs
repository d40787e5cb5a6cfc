use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Decision, Requester, Stage};
use crate::claims::{ClaimChange, UniqueClaims};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ApprovalEvent {
    ApprovalRequested {
        approval_id: Uuid,
        tenant_id: Uuid,
        action: String,
        summary: String,
        payload: serde_json::Value,
        agent_id: Option<Uuid>,
        requester: Requester,
        policy: String,
        stages: Vec<Stage>,
        expires_at: Option<DateTime<Utc>>,
    },
    /// A member's decision at `stage`. `counted`: it counted toward the
    /// stage (false for a decision made at a stage the request had left).
    DecisionRecorded {
        by: Uuid,
        stage: usize,
        decision: Decision,
        comment: Option<String>,
        counted: bool,
    },
    /// The request moved on to `stage` (its previous one had its approvals).
    StageAdvanced {
        stage: usize,
    },
    ApprovalGranted {},
    ApprovalRejected {
        stage: usize,
    },
    ApprovalExpired {},
    ApprovalCanceled {
        by: Requester,
    },
    CommentAdded {
        by: Uuid,
        comment: String,
    },
}

crate::stored_event!(ApprovalEvent);

impl UniqueClaims for ApprovalEvent {
    fn claim_changes(&self) -> Vec<ClaimChange> {
        Vec::new()
    }
}
