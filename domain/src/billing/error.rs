use crate::error::{DomainError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    #[error("this plan has no trial")]
    NoTrial,
}

impl DomainError for BillingError {
    fn code(&self) -> &'static str {
        match self {
            Self::NoTrial => "plan_has_no_trial",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::NoTrial => ErrorKind::Invalid,
        }
    }
}
