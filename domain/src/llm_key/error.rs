use crate::error::{DomainError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmKeyError {
    #[error("a provider key with this id already exists")]
    AlreadyExists,
    #[error("provider key not found")]
    NotFound,
}

impl DomainError for LlmKeyError {
    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyExists => "llm_key_already_exists",
            Self::NotFound => "llm_key_not_found",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::AlreadyExists => ErrorKind::Conflict,
            Self::NotFound => ErrorKind::NotFound,
        }
    }
}
