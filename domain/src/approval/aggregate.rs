use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApprovalCommand, ApprovalError, ApprovalEvent};

/// One stage of a request: `approvals` approvals from members allowed at
/// it (any member holding `approvals.decide`, or only those of `role`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub approvals: u32,
    pub role: Option<String>,
    /// A rejection at this stage ends the request (`rejected`); otherwise
    /// it is recorded and the stage still waits for its approvals.
    pub rejection_ends: bool,
}

/// Who asked: a member, or an API key (and the member who created it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Requester {
    Member {
        user_id: Uuid,
    },
    ApiKey {
        key_id: Uuid,
        created_by: Option<Uuid>,
    },
}

impl Requester {
    /// `user_id` is the requester, or created the key that asked.
    fn is_or_made_by(&self, user_id: Uuid) -> bool {
        match self {
            Self::Member { user_id: u } => *u == user_id,
            Self::ApiKey { created_by, .. } => *created_by == Some(user_id),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    #[default]
    Pending,
    Approved,
    Rejected,
    Expired,
    Canceled,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Canceled => "canceled",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    pub action: String,
    pub summary: String,
    pub payload: serde_json::Value,
    pub requester: Option<Requester>,
    pub stages: Vec<Stage>,
    /// The stage waiting for decisions (index into `stages`).
    pub stage: usize,
    pub expires_at: Option<DateTime<Utc>>,
    pub status: ApprovalStatus,
    /// Each member's decision and the stage they made it at.
    pub decided: BTreeMap<Uuid, (usize, Decision)>,
    /// Counted approvals at the current stage.
    pub approvals_here: u32,
}

impl Approval {
    /// In its tenant's chain.
    fn chain_of(&self, _id: crate::ApprovalId, _actor: &crate::Actor) -> Option<Uuid> {
        None
    }

    /// The status as of `now`: a pending request past its expiry reads as
    /// expired before the job records it.
    pub fn status_at(&self, now: DateTime<Utc>) -> ApprovalStatus {
        match (self.status, self.expires_at) {
            (ApprovalStatus::Pending, Some(at)) if now >= at => ApprovalStatus::Expired,
            (status, _) => status,
        }
    }

    fn existing(&self) -> Result<(), ApprovalError> {
        self.id.map(|_| ()).ok_or(ApprovalError::NotFound)
    }

    fn decide(&self, command: ApprovalCommand) -> Result<Vec<ApprovalEvent>, ApprovalError> {
        match command {
            ApprovalCommand::Request {
                approval_id,
                tenant_id,
                action,
                summary,
                payload,
                agent_id,
                requester,
                policy,
                stages,
                expires_at,
            } => {
                if self.id.is_some() {
                    let same =
                        self.action == action && self.summary == summary && self.payload == payload;
                    return if same {
                        Ok(Vec::new())
                    } else {
                        Err(ApprovalError::IdConflict)
                    };
                }
                if stages.is_empty() || stages.iter().any(|s| s.approvals == 0) {
                    return Err(ApprovalError::NoStages);
                }
                Ok(vec![ApprovalEvent::ApprovalRequested {
                    approval_id: approval_id.as_uuid(),
                    tenant_id: tenant_id.as_uuid(),
                    action,
                    summary,
                    payload,
                    agent_id,
                    requester,
                    policy,
                    stages,
                    expires_at,
                }])
            }
            ApprovalCommand::Decide {
                by,
                role,
                decision,
                comment,
                at_stage,
                now,
            } => {
                self.existing()?;
                match self.status_at(now) {
                    ApprovalStatus::Pending => {}
                    ApprovalStatus::Expired => return Err(ApprovalError::Expired),
                    _ => return Err(ApprovalError::NotPending),
                }
                if self.requester.as_ref().is_some_and(|r| r.is_or_made_by(by)) {
                    return Err(ApprovalError::SelfDecision);
                }
                if self.decided.contains_key(&by) {
                    return Err(ApprovalError::AlreadyDecided);
                }
                let stage = at_stage.unwrap_or(self.stage);
                if stage > self.stage {
                    return Err(ApprovalError::StageNotReached);
                }
                let rules = &self.stages[stage];
                if rules.role.as_ref().is_some_and(|r| *r != role) {
                    return Err(ApprovalError::NotAllowedAtStage);
                }
                let counted = stage == self.stage;
                let mut events = vec![ApprovalEvent::DecisionRecorded {
                    by,
                    stage,
                    decision,
                    comment,
                    counted,
                }];
                if !counted {
                    return Ok(events);
                }
                match decision {
                    Decision::Approve if self.approvals_here + 1 >= rules.approvals => {
                        events.push(if stage + 1 < self.stages.len() {
                            ApprovalEvent::StageAdvanced { stage: stage + 1 }
                        } else {
                            ApprovalEvent::ApprovalGranted {}
                        });
                    }
                    Decision::Reject if rules.rejection_ends => {
                        events.push(ApprovalEvent::ApprovalRejected { stage });
                    }
                    _ => {}
                }
                Ok(events)
            }
            ApprovalCommand::Comment { by, comment } => {
                self.existing()?;
                Ok(vec![ApprovalEvent::CommentAdded { by, comment }])
            }
            ApprovalCommand::Cancel { by, now } => {
                self.existing()?;
                if self.requester.as_ref() != Some(&by) {
                    return Err(ApprovalError::NotRequester);
                }
                match self.status_at(now) {
                    ApprovalStatus::Pending => Ok(vec![ApprovalEvent::ApprovalCanceled { by }]),
                    ApprovalStatus::Canceled => Ok(Vec::new()),
                    ApprovalStatus::Expired => Err(ApprovalError::Expired),
                    _ => Err(ApprovalError::NotPending),
                }
            }
            ApprovalCommand::Expire { now } => {
                self.existing()?;
                Ok(match (self.status, self.status_at(now)) {
                    (ApprovalStatus::Pending, ApprovalStatus::Expired) => {
                        vec![ApprovalEvent::ApprovalExpired {}]
                    }
                    _ => Vec::new(),
                })
            }
        }
    }

    fn evolve(&mut self, event: ApprovalEvent) {
        match event {
            ApprovalEvent::ApprovalRequested {
                approval_id,
                tenant_id,
                action,
                summary,
                payload,
                requester,
                stages,
                expires_at,
                ..
            } => {
                self.id = Some(approval_id);
                self.tenant_id = Some(tenant_id);
                self.action = action;
                self.summary = summary;
                self.payload = payload;
                self.requester = Some(requester);
                self.stages = stages;
                self.stage = 0;
                self.expires_at = expires_at;
                self.status = ApprovalStatus::Pending;
            }
            ApprovalEvent::DecisionRecorded {
                by,
                stage,
                decision,
                counted,
                ..
            } => {
                self.decided.insert(by, (stage, decision));
                if counted && decision == Decision::Approve {
                    self.approvals_here += 1;
                }
            }
            ApprovalEvent::StageAdvanced { stage } => {
                self.stage = stage;
                self.approvals_here = 0;
            }
            ApprovalEvent::ApprovalGranted {} => self.status = ApprovalStatus::Approved,
            ApprovalEvent::ApprovalRejected { .. } => self.status = ApprovalStatus::Rejected,
            ApprovalEvent::ApprovalExpired {} => self.status = ApprovalStatus::Expired,
            ApprovalEvent::ApprovalCanceled { .. } => self.status = ApprovalStatus::Canceled,
            ApprovalEvent::CommentAdded { .. } => {}
        }
    }
}

crate::aggregate!(
    Approval,
    "approval",
    crate::ApprovalId,
    ApprovalCommand,
    ApprovalEvent,
    ApprovalError
);
