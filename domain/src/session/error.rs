use crate::error::{DomainError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("this sign-in attempt is already recorded")]
    AlreadyRecorded,
    #[error("the session does not exist")]
    NotFound,
    #[error("the session is revoked")]
    Revoked,
    #[error("an impersonation needs a reason of 1 to 500 characters, with no control characters but newline and tab")]
    InvalidReason,
    #[error("this session is not an impersonation")]
    NotImpersonating,
    #[error("an impersonation session has no refresh token")]
    ImpersonationCannotRefresh,
}

impl DomainError for SessionError {
    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyRecorded => "session_already_exists",
            Self::NotFound => "session_not_found",
            Self::Revoked => "session_revoked",
            Self::InvalidReason => "invalid_reason",
            Self::NotImpersonating => "not_impersonating",
            Self::ImpersonationCannotRefresh => "impersonation_cannot_refresh",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::Revoked => ErrorKind::Gone,
            Self::InvalidReason => ErrorKind::Invalid,
            Self::AlreadyRecorded | Self::NotImpersonating | Self::ImpersonationCannotRefresh => {
                ErrorKind::Conflict
            }
        }
    }
}
