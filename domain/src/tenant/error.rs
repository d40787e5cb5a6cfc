use crate::access::PermissionSet;
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
    #[error("a suspension needs a reason of 1 to 500 characters, with no control characters but newline and tab")]
    InvalidReason,
    #[error("{0}")]
    InvalidSettings(String),
    #[error("this user is not a member of the tenant")]
    MemberNotFound,
    #[error("this user is already a member of the tenant")]
    AlreadyMember,
    #[error("the tenant must keep at least one owner")]
    LastOwner,
    #[error("only an owner can grant or revoke the owner role")]
    OwnerRequired,
    #[error("you cannot grant permissions you do not hold: {}", .missing.names().join(", "))]
    RoleEscalation { missing: PermissionSet },
    #[error("the tenant has reached its seat limit of {limit}")]
    SeatLimitReached { limit: u64 },
    #[error("no role with this name exists in the tenant")]
    RoleNotFound,
    #[error("no role with this name exists in the tenant; see GET /v1/tenants/{{tid}}/roles")]
    UnknownRole,
    #[error("a role with this name already exists")]
    RoleExists,
    #[error("built-in roles cannot be changed or deleted")]
    BuiltinRoleImmutable,
    #[error("the role is held by {members} member(s); give them another role first")]
    RoleInUse { members: usize },
    #[error("llm_keys.use can only be carried by API keys, not by a role")]
    NotAssignableToRole,
    #[error("invitation not found")]
    InvitationNotFound,
    #[error("this email already has a pending invitation to the tenant")]
    InvitationPending,
    #[error("the invitation is no longer pending")]
    InvitationNotPending,
    #[error("the invitation has expired")]
    InvitationExpired,
    #[error("the invitation was revoked")]
    InvitationRevoked,
    #[error("the invitation was already used")]
    InvitationUsed,
    #[error("the invitation was resent by another request at the same time; retry")]
    InvitationResentMeanwhile,
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
            Self::MemberNotFound => "member_not_found",
            Self::AlreadyMember => "already_member",
            Self::LastOwner => "last_owner",
            Self::OwnerRequired => "owner_required",
            Self::RoleEscalation { .. } => "role_escalation",
            Self::SeatLimitReached { .. } => "seat_limit_reached",
            Self::RoleNotFound => "role_not_found",
            Self::UnknownRole => "unknown_role",
            Self::RoleExists => "role_exists",
            Self::BuiltinRoleImmutable => "builtin_role_immutable",
            Self::RoleInUse { .. } => "role_in_use",
            Self::NotAssignableToRole => "permission_not_assignable",
            Self::InvitationNotFound => "invitation_not_found",
            Self::InvitationPending => "invitation_pending",
            Self::InvitationNotPending => "invitation_not_pending",
            Self::InvitationExpired => "invitation_expired",
            Self::InvitationRevoked => "invitation_revoked",
            Self::InvitationUsed => "invitation_used",
            Self::InvitationResentMeanwhile => "concurrent_update",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound
            | Self::MemberNotFound
            | Self::RoleNotFound
            | Self::InvitationNotFound => ErrorKind::NotFound,
            Self::InvitationExpired | Self::InvitationRevoked | Self::InvitationUsed => {
                ErrorKind::Gone
            }
            Self::InvalidReason
            | Self::InvalidSettings(_)
            | Self::NotAssignableToRole
            | Self::UnknownRole => ErrorKind::Invalid,
            Self::OwnerRequired | Self::RoleEscalation { .. } => ErrorKind::Forbidden,
            _ => ErrorKind::Conflict,
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            Self::RoleEscalation { missing } => {
                Some(serde_json::json!({ "missing_permissions": missing }))
            }
            Self::SeatLimitReached { limit } => Some(serde_json::json!({ "max_seats": limit })),
            Self::RoleInUse { members } => Some(serde_json::json!({ "members": members })),
            _ => None,
        }
    }
}
