use crate::error::{DomainError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("tenant not found")]
    NotFound,
    #[error("a tenant with this id already exists")]
    AlreadyExists,
    #[error("the tenant is already suspended")]
    AlreadySuspended,
    #[error("the tenant is not suspended")]
    NotSuspended,
    #[error("the tenant is archived")]
    Archived,
    #[error("a suspension needs a reason of 1 to 500 characters")]
    InvalidReason,
    #[error("{0}")]
    InvalidSettings(String),
}

impl DomainError for TenantError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "tenant_not_found",
            Self::AlreadyExists => "tenant_already_exists",
            Self::AlreadySuspended => "tenant_already_suspended",
            Self::NotSuspended => "tenant_not_suspended",
            Self::Archived => "tenant_archived",
            Self::InvalidReason => "invalid_reason",
            Self::InvalidSettings(_) => "invalid_settings",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::InvalidReason | Self::InvalidSettings(_) => ErrorKind::Invalid,
            _ => ErrorKind::Conflict,
        }
    }
}
