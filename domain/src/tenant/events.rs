use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::{PermissionSet, RoleName};
use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
use crate::values::{Slug, TenantName, TenantSettings};

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
