use crate::error::{DomainError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("approval request not found")]
    NotFound,
    #[error("a request with this id was made before with other content")]
    IdConflict,
    #[error("a request needs at least one stage, and each stage at least one approval")]
    NoStages,
    #[error("the request is no longer pending")]
    NotPending,
    #[error("the request expired before this decision")]
    Expired,
    #[error("nobody decides their own request (nor one made with an API key they created)")]
    SelfDecision,
    #[error("this member has decided on this request already")]
    AlreadyDecided,
    #[error("the request has not reached this stage")]
    StageNotReached,
    #[error("this stage is decided by members of another role")]
    NotAllowedAtStage,
    #[error("only the requester cancels a request")]
    NotRequester,
}

impl DomainError for ApprovalError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "approval_not_found",
            Self::IdConflict => "approval_id_conflict",
            Self::NoStages => "approval_without_stages",
            Self::NotPending => "approval_not_pending",
            Self::Expired => "approval_expired",
            Self::SelfDecision => "self_approval",
            Self::AlreadyDecided => "already_decided",
            Self::StageNotReached => "stage_not_reached",
            Self::NotAllowedAtStage => "not_an_approver_at_stage",
            Self::NotRequester => "not_the_requester",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::NoStages => ErrorKind::Invalid,
            Self::SelfDecision | Self::NotAllowedAtStage | Self::NotRequester => {
                ErrorKind::Forbidden
            }
            Self::IdConflict
            | Self::NotPending
            | Self::Expired
            | Self::AlreadyDecided
            | Self::StageNotReached => ErrorKind::Conflict,
        }
    }
}
