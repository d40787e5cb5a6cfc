use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Decision, Requester, Stage};
use crate::{ApprovalId, TenantId};

#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalCommand {
    /// A new request. The same id with the same action, summary and
    /// payload again is a no-op (a retried request); with other content,
    /// refused.
    Request {
        approval_id: ApprovalId,
        tenant_id: TenantId,
        action: String,
        summary: String,
        payload: serde_json::Value,
        agent_id: Option<Uuid>,
        requester: Requester,
        /// The policy that covers the action (`default` for the tenant's
        /// default), and its stages as they are now.
        policy: String,
        stages: Vec<Stage>,
        expires_at: Option<DateTime<Utc>>,
    },
    /// A member's decision. `role` is the member's role in the tenant
    /// (the caller checked they hold `approvals.decide`); `at_stage` the
    /// stage they decided at, when they say (else the current one).
    Decide {
        by: Uuid,
        role: String,
        decision: Decision,
        comment: Option<String>,
        at_stage: Option<usize>,
        now: DateTime<Utc>,
    },
    /// A comment without a decision, by anyone who may read the request.
    Comment { by: Uuid, comment: String },
    /// The requester withdraws a pending request.
    Cancel { by: Requester, now: DateTime<Utc> },
    /// A pending request past its expiry becomes `expired`; otherwise
    /// nothing happens.
    Expire { now: DateTime<Utc> },
}
