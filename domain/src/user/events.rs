use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
use crate::values::{EmailHash, Reason, Sealed};

/// Every event of the User aggregate. Names are stable: never rename one.
/// The person's email and name are sealed under their data key; the email's
/// keyed hash is what finds them (`docs/AUDIT.md`, "Erasure").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum UserEvent {
    UserRegistered {
        user_id: Uuid,
        email: Sealed,
        email_hash: EmailHash,
        name: Sealed,
        platform_admin: bool,
    },
    UserRenamed {
        name: Sealed,
    },
    /// The new hash is stored outside the log; the event only says it changed.
    UserPasswordChanged {},
    UserDeactivated {},
    UserReactivated {},
    PlatformAdminGranted {},
    PlatformAdminRevoked {},
    /// The person's data key was destroyed with this event: their email and
    /// name no longer open anywhere, the email is free again, and the
    /// account is closed for good.
    UserErased {
        email_hash: EmailHash,
        reason: Reason,
    },
}

crate::stored_event!(UserEvent);

impl UniqueClaims for UserEvent {
    fn claim_changes(&self) -> Vec<ClaimChange> {
        match self {
            Self::UserRegistered { email_hash, .. } => vec![ClaimChange::Claim {
                scope: ClaimScope::UserEmail,
                value: email_hash.as_str().to_string(),
            }],
            Self::UserErased { email_hash, .. } => vec![ClaimChange::Release {
                scope: ClaimScope::UserEmail,
                value: email_hash.as_str().to_string(),
            }],
            _ => Vec::new(),
        }
    }
}
