use serde::{Deserialize, Serialize};
use uuid::Uuid;

use chrono::{DateTime, Utc};

use crate::access::{PermissionSet, RoleName};
use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
use crate::values::{EmailHash, Sealed, Slug, TenantName, TenantSettings};

/// Every event of the Tenant aggregate. Names are stable: never rename one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TenantEvent {
    TenantCreated {
        tenant_id: Uuid,
        name: TenantName,
        slug: Slug,
        settings: TenantSettings,
    },
    TenantRenamed {
        name: TenantName,
        previous_name: TenantName,
    },
    TenantSettingsUpdated {
        settings: TenantSettings,
    },
    TenantSuspended {
        reason: String,
    },
    TenantReactivated {},
    TenantArchived {},
    MemberAdded {
        user_id: Uuid,
        role: RoleName,
    },
    MemberRoleChanged {
        user_id: Uuid,
        role: RoleName,
        previous_role: RoleName,
    },
    MemberRemoved {
        user_id: Uuid,
        role: RoleName,
        reason: RemovalReason,
    },
    RoleDefined {
        name: RoleName,
        permissions: PermissionSet,
    },
    RoleUpdated {
        name: RoleName,
        permissions: PermissionSet,
        previous_permissions: PermissionSet,
    },
    RoleDeleted {
        name: RoleName,
    },
    /// The token is not here: it is derived from the invitation id and
    /// `token_version` by the server, and only its SHA-256 is stored.
    InvitationCreated {
        invitation_id: Uuid,
        /// Sealed under the data key of the address (`docs/AUDIT.md`).
        email: Sealed,
        email_hash: EmailHash,
        role: RoleName,
        invited_by: Option<Uuid>,
        expires_at: DateTime<Utc>,
    },
    InvitationResent {
        invitation_id: Uuid,
        token_version: u32,
        expires_at: DateTime<Utc>,
    },
    InvitationRevoked {
        invitation_id: Uuid,
    },
    InvitationAccepted {
        invitation_id: Uuid,
        user_id: Uuid,
    },
    InvitationExpired {
        invitation_id: Uuid,
    },
}

/// Why a member left the roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    /// Someone with `members.manage` removed them.
    Removed,
    /// They left on their own.
    Left,
}

crate::stored_event!(TenantEvent);

impl UniqueClaims for TenantEvent {
    fn claim_changes(&self) -> Vec<ClaimChange> {
        match self {
            Self::TenantCreated { slug, .. } => vec![ClaimChange::Claim {
                scope: ClaimScope::TenantSlug,
                value: slug.as_str().to_string(),
            }],
            _ => Vec::new(),
        }
    }
}
