use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{PolicyCommand, PolicyError, PolicyEvent};
use crate::approval::Stage;

/// An action, exactly (`payments.refund`), or every action under a prefix
/// ending in a dot (`payments.`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionPattern(String);

impl ActionPattern {
    /// 1 to 100 characters of `a-z`, `0-9`, `_`, `-` and `.`, starting
    /// with a letter; a trailing dot makes it a prefix.
    pub fn parse(raw: &str) -> Result<Self, crate::values::ValueError> {
        let ok = (1..=100).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')
            })
            && !raw.contains("..");
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(crate::values::ValueError::new(
                "invalid_action",
                "an action is 1 to 100 of a-z, 0-9, _, - and ., starting with a letter (a trailing . covers every action under it)",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_prefix(&self) -> bool {
        self.0.ends_with('.')
    }

    /// How well it covers `action`: `Some(len)` when it does (an exact
    /// match beats any prefix), `None` when it does not.
    fn covers(&self, action: &str) -> Option<usize> {
        if self.0 == action {
            Some(usize::MAX)
        } else if self.is_prefix() && action.starts_with(&self.0) {
            Some(self.0.len())
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub actions: Vec<ActionPattern>,
    pub stages: Vec<Stage>,
    /// How long a request under it waits for its decisions; `None`: until
    /// decided or canceled.
    pub expires_in_secs: Option<u32>,
}

/// What an action no policy covers gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Uncovered {
    /// The default policy: one stage, one approval by any member who may
    /// decide; a rejection ends it.
    #[default]
    DefaultPolicy,
    /// Refused: the tenant approves only what a policy names.
    Refuse,
}

/// The policy an action falls under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered {
    /// The policy's name, `default` for the default policy.
    pub policy: String,
    pub stages: Vec<Stage>,
    pub expires_in_secs: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApprovalPolicies {
    pub policies: BTreeMap<String, Policy>,
    pub uncovered: Uncovered,
}

impl ApprovalPolicies {
    /// In its tenant's chain.
    fn chain_of(&self, _id: crate::TenantId, _actor: &crate::Actor) -> Option<Uuid> {
        None
    }

    /// The policy covering `action`: the exact pattern, else the longest
    /// prefix, else the default policy when the tenant uses one.
    pub fn covering(&self, action: &str) -> Option<Covered> {
        let best = self
            .policies
            .values()
            .filter_map(|p| {
                p.actions
                    .iter()
                    .filter_map(|a| a.covers(action))
                    .max()
                    .map(|score| (score, p))
            })
            .max_by_key(|(score, _)| *score);
        match (best, self.uncovered) {
            (Some((_, p)), _) => Some(Covered {
                policy: p.name.clone(),
                stages: p.stages.clone(),
                expires_in_secs: p.expires_in_secs,
            }),
            (None, Uncovered::DefaultPolicy) => Some(Covered {
                policy: "default".into(),
                stages: vec![Stage {
                    approvals: 1,
                    role: None,
                    rejection_ends: true,
                }],
                expires_in_secs: None,
            }),
            (None, Uncovered::Refuse) => None,
        }
    }

    fn decide(&self, command: PolicyCommand) -> Result<Vec<PolicyEvent>, PolicyError> {
        match command {
            PolicyCommand::Define { policy } => {
                if policy.actions.is_empty()
                    || policy.stages.is_empty()
                    || policy.stages.iter().any(|s| s.approvals == 0)
                {
                    return Err(PolicyError::Incomplete);
                }
                for other in self.policies.values().filter(|p| p.name != policy.name) {
                    if let Some(pattern) = policy.actions.iter().find(|a| other.actions.contains(a))
                    {
                        return Err(PolicyError::PatternTaken {
                            pattern: pattern.as_str().to_string(),
                            policy: other.name.clone(),
                        });
                    }
                }
                if self.policies.get(&policy.name) == Some(&policy) {
                    return Ok(Vec::new());
                }
                Ok(vec![PolicyEvent::ApprovalPolicyDefined { policy }])
            }
            PolicyCommand::Remove { name } => {
                if !self.policies.contains_key(&name) {
                    return Err(PolicyError::NotFound);
                }
                Ok(vec![PolicyEvent::ApprovalPolicyRemoved { name }])
            }
            PolicyCommand::SetUncovered { uncovered } => Ok(if uncovered == self.uncovered {
                Vec::new()
            } else {
                vec![PolicyEvent::UncoveredActionsSet { uncovered }]
            }),
        }
    }

    fn evolve(&mut self, event: PolicyEvent) {
        match event {
            PolicyEvent::ApprovalPolicyDefined { policy } => {
                self.policies.insert(policy.name.clone(), policy);
            }
            PolicyEvent::ApprovalPolicyRemoved { name } => {
                self.policies.remove(&name);
            }
            PolicyEvent::UncoveredActionsSet { uncovered } => self.uncovered = uncovered,
        }
    }
}

crate::aggregate!(
    ApprovalPolicies,
    "approval_policies",
    crate::TenantId,
    PolicyCommand,
    PolicyEvent,
    PolicyError
);
