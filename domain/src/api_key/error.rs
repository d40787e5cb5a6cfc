use crate::access::PermissionSet;
use crate::error::{DomainError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("an API key with this id already exists")]
    AlreadyExists,
    #[error("API key not found")]
    NotFound,
    #[error("an API key needs at least one permission")]
    NoPermissions,
    #[error("a key cannot carry permissions its creator lacks: {}", .missing.names().join(", "))]
    Escalation { missing: PermissionSet },
    #[error("expires_at must be in the future")]
    ExpiryInPast,
}

impl DomainError for ApiKeyError {
    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyExists => "api_key_already_exists",
            Self::NotFound => "api_key_not_found",
            Self::NoPermissions => "no_permissions",
            Self::Escalation { .. } => "permission_escalation",
            Self::ExpiryInPast => "invalid_expiry",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::AlreadyExists => ErrorKind::Conflict,
            Self::NotFound => ErrorKind::NotFound,
            Self::NoPermissions | Self::ExpiryInPast => ErrorKind::Invalid,
            Self::Escalation { .. } => ErrorKind::Forbidden,
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            Self::Escalation { missing } => {
                Some(serde_json::json!({ "missing_permissions": missing }))
            }
            _ => None,
        }
    }
}
