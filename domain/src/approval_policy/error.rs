use crate::error::{DomainError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("no approval policy of this name")]
    NotFound,
    #[error("another policy covers this action pattern already")]
    PatternTaken { pattern: String, policy: String },
    #[error(
        "a policy needs at least one action and one stage, and each stage at least one approval"
    )]
    Incomplete,
}

impl DomainError for PolicyError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "approval_policy_not_found",
            Self::PatternTaken { .. } => "action_pattern_taken",
            Self::Incomplete => "approval_policy_incomplete",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::PatternTaken { .. } => ErrorKind::Conflict,
            Self::Incomplete => ErrorKind::Invalid,
        }
    }
}
