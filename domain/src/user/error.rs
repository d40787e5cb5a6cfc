use crate::error::{DomainError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("user not found")]
    NotFound,
    #[error("a user with this id already exists")]
    AlreadyExists,
    #[error("the user is deactivated")]
    Deactivated,
    #[error("the user is already deactivated")]
    AlreadyDeactivated,
    #[error("the user is already active")]
    AlreadyActive,
    #[error("the user is already a platform admin")]
    AlreadyPlatformAdmin,
    #[error("the user is not a platform admin")]
    NotPlatformAdmin,
    #[error("the user was erased")]
    Erased,
}

impl DomainError for UserError {
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "user_not_found",
            Self::AlreadyExists => "user_already_exists",
            Self::Deactivated => "user_deactivated",
            Self::AlreadyDeactivated => "user_already_deactivated",
            Self::AlreadyActive => "user_already_active",
            Self::AlreadyPlatformAdmin => "already_platform_admin",
            Self::NotPlatformAdmin => "not_platform_admin",
            Self::Erased => "user_erased",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Conflict,
        }
    }
}
