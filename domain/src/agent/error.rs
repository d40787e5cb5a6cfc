use crate::error::{DomainError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    #[error("an agent with this id already exists")]
    AlreadyExists,
    #[error("agent not found")]
    NotFound,
    #[error("the agent is archived: it cannot change or run again")]
    Archived,
}

impl DomainError for AgentError {
    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyExists => "agent_already_exists",
            Self::NotFound => "agent_not_found",
            Self::Archived => "agent_archived",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::AlreadyExists | Self::Archived => ErrorKind::Conflict,
            Self::NotFound => ErrorKind::NotFound,
        }
    }
}
