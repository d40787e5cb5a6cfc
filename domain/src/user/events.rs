use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
use crate::values::{Email, PersonName};

/// Every event of the User aggregate. Names are stable: never rename one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum UserEvent {
    UserRegistered {
        user_id: Uuid,
        email: Email,
        name: PersonName,
        platform_admin: bool,
    },
    UserRenamed {
        name: PersonName,
    },
    /// The new hash is stored outside the log; the event only says it changed.
    UserPasswordChanged {},
    UserDeactivated {},
    UserReactivated {},
    PlatformAdminGranted {},
    PlatformAdminRevoked {},
}

crate::stored_event!(UserEvent);

impl UniqueClaims for UserEvent {
    fn claim_changes(&self) -> Vec<ClaimChange> {
        match self {
            Self::UserRegistered { email, .. } => vec![ClaimChange::Claim {
                scope: ClaimScope::UserEmail,
                value: email.normalized(),
            }],
            _ => Vec::new(),
        }
    }
}
