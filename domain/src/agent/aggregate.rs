use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AgentCommand, AgentError, AgentEvent};
use crate::values::Label;

/// What a tenant says of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSettings {
    pub name: Label,
    pub description: String,
    /// Spend allowed per calendar month, in minor units of the tenant's
    /// plan currency; `None`: only the tenant's budget applies.
    pub monthly_budget_minor: Option<i64>,
    /// Providers (`openai`) or provider models (`openai/gpt-4o`) the agent
    /// may use; empty: any.
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    #[default]
    Active,
    Paused,
    Archived,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Archived => "archived",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    pub slot: u32,
    pub settings: Option<AgentSettings>,
    pub status: AgentStatus,
}

impl Agent {
    /// In its tenant's chain.
    fn chain_of(&self, _id: crate::AgentId, _actor: &crate::Actor) -> Option<Uuid> {
        None
    }

    /// The agent may take reservations and record usage.
    pub fn runs(&self) -> bool {
        self.id.is_some() && self.status == AgentStatus::Active
    }

    /// The live agent, or why not.
    fn live(&self) -> Result<(), AgentError> {
        match (self.id, self.status) {
            (None, _) => Err(AgentError::NotFound),
            (Some(_), AgentStatus::Archived) => Err(AgentError::Archived),
            _ => Ok(()),
        }
    }

    fn decide(&self, command: AgentCommand) -> Result<Vec<AgentEvent>, AgentError> {
        match command {
            AgentCommand::Create {
                agent_id,
                tenant_id,
                slot,
                settings,
            } => {
                if self.id.is_some() {
                    return Err(AgentError::AlreadyExists);
                }
                Ok(vec![AgentEvent::AgentCreated {
                    agent_id: agent_id.as_uuid(),
                    tenant_id: tenant_id.as_uuid(),
                    slot,
                    settings,
                }])
            }
            AgentCommand::Update { settings } => {
                self.live()?;
                if self.settings.as_ref() == Some(&settings) {
                    return Ok(Vec::new());
                }
                Ok(vec![AgentEvent::AgentUpdated { settings }])
            }
            AgentCommand::Pause => {
                self.live()?;
                Ok(match self.status {
                    AgentStatus::Paused => Vec::new(),
                    _ => vec![AgentEvent::AgentPaused {}],
                })
            }
            AgentCommand::Resume => {
                self.live()?;
                Ok(match self.status {
                    AgentStatus::Active => Vec::new(),
                    _ => vec![AgentEvent::AgentResumed {}],
                })
            }
            AgentCommand::Archive => match (self.id, self.tenant_id, self.status) {
                (None, _, _) | (_, None, _) => Err(AgentError::NotFound),
                (Some(_), Some(_), AgentStatus::Archived) => Ok(Vec::new()),
                (Some(_), Some(tenant_id), _) => Ok(vec![AgentEvent::AgentArchived {
                    tenant_id,
                    slot: self.slot,
                }]),
            },
        }
    }

    fn evolve(&mut self, event: AgentEvent) {
        match event {
            AgentEvent::AgentCreated {
                agent_id,
                tenant_id,
                slot,
                settings,
            } => {
                self.id = Some(agent_id);
                self.tenant_id = Some(tenant_id);
                self.slot = slot;
                self.settings = Some(settings);
                self.status = AgentStatus::Active;
            }
            AgentEvent::AgentUpdated { settings } => self.settings = Some(settings),
            AgentEvent::AgentPaused {} => self.status = AgentStatus::Paused,
            AgentEvent::AgentResumed {} => self.status = AgentStatus::Active,
            AgentEvent::AgentArchived { .. } => self.status = AgentStatus::Archived,
        }
    }
}

crate::aggregate!(
    Agent,
    "agent",
    crate::AgentId,
    AgentCommand,
    AgentEvent,
    AgentError
);
