use crate::{InvitationId, TenantId, UserId};
use chrono::{DateTime, Utc};

use crate::access::{PermissionSet, RoleName};
use crate::values::{EmailHash, Sealed, Slug, TenantName, TenantSettings};

/// Who asks for a roster change. The aggregate works out what they hold
/// from its own state, so a stale read model cannot grant anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Authority {
    /// A platform admin: holds every assignable permission and may grant
    /// or revoke the owner role.
    Platform,
    /// A member of this tenant acting under their current role.
    Member(UserId),
    /// A tenant API key, with the permissions it carries.
    ApiKey(PermissionSet),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TenantCommand {
    /// Create the tenant, seating `owner` as its first owner when given.
    CreateTenant {
        tenant_id: TenantId,
        name: TenantName,
        slug: Slug,
        settings: TenantSettings,
        owner: Option<UserId>,
    },
    /// Change the name and/or merge-patch the settings; absent parts stay.
    UpdateTenant {
        name: Option<TenantName>,
        settings_patch: Option<TenantSettings>,
    },
    SuspendTenant {
        reason: String,
    },
    ReactivateTenant,
    ArchiveTenant,
    AddMember {
        user_id: UserId,
        role: RoleName,
        by: Authority,
        now: DateTime<Utc>,
        /// The seats the tenant's plan includes, if it has a plan with a
        /// limit (a platform admin's `max_seats` setting overrides it).
        plan_seats: Option<u32>,
    },
    ChangeMemberRole {
        user_id: UserId,
        role: RoleName,
        by: Authority,
    },
    /// Remove a member; when `by` is the member themselves, they leave.
    RemoveMember {
        user_id: UserId,
        by: Authority,
    },
    DefineRole {
        name: RoleName,
        permissions: PermissionSet,
        by: Authority,
    },
    UpdateRole {
        name: RoleName,
        permissions: PermissionSet,
        by: Authority,
    },
    DeleteRole {
        name: RoleName,
    },
    /// Invite an email to a role. `existing_user` is the user holding that
    /// email, if any (the aggregate refuses one who is already a member).
    Invite {
        invitation_id: InvitationId,
        email: Sealed,
        email_hash: EmailHash,
        role: RoleName,
        by: Authority,
        invited_by: Option<UserId>,
        existing_user: Option<UserId>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        /// As for `AddMember`.
        plan_seats: Option<u32>,
    },
    /// A new token and a new expiry; the old token dies.
    ResendInvitation {
        invitation_id: InvitationId,
        /// The token version the caller derived the new token from: the
        /// current one plus one, or the resend lost a race.
        token_version: u32,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    RevokeInvitation {
        invitation_id: InvitationId,
        now: DateTime<Utc>,
    },
    /// The invitee joins with the invitation's role.
    AcceptInvitation {
        invitation_id: InvitationId,
        user_id: UserId,
        now: DateTime<Utc>,
    },
    /// Record that a pending invitation ran out (the expiry job).
    ExpireInvitation {
        invitation_id: InvitationId,
        now: DateTime<Utc>,
    },
}
