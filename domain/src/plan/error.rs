use crate::error::{DomainError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("a plan with this id already exists")]
    AlreadyExists,
    #[error("plan not found")]
    NotFound,
    #[error("the plan is retired")]
    Retired,
    #[error("{field}: {message}")]
    InvalidTerms {
        field: &'static str,
        code: &'static str,
        message: String,
    },
}

impl DomainError for PlanError {
    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyExists => "plan_already_exists",
            Self::NotFound => "plan_not_found",
            Self::Retired => "plan_retired",
            Self::InvalidTerms { .. } => "invalid_plan_terms",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::AlreadyExists | Self::Retired => ErrorKind::Conflict,
            Self::NotFound => ErrorKind::NotFound,
            Self::InvalidTerms { .. } => ErrorKind::Invalid,
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            Self::InvalidTerms { field, code, .. } => {
                Some(serde_json::json!({ "field": field, "field_code": code }))
            }
            _ => None,
        }
    }
}
