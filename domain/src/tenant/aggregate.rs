use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{TenantCommand, TenantError, TenantEvent};
use crate::access::{PermissionSet, RoleName};
use crate::values::{EmailHash, Slug, TenantName, TenantSettings};
use crate::UserId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    #[default]
    Active,
    Suspended,
    Archived,
}

impl TenantStatus {
    pub const ALL: [Self; 3] = [Self::Active, Self::Suspended, Self::Archived];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Archived => "archived",
        }
    }

    /// The status a stored name stands for.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// Read models store the status by name; rows decode it back through this.
impl TryFrom<String> for TenantStatus {
    type Error = crate::values::ValueError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw).ok_or_else(|| {
            crate::values::ValueError::new("invalid_status", format!("{raw:?} is no tenant status"))
        })
    }
}

/// Decision state of one tenant. `None` id: not created yet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: Option<Uuid>,
    pub name: Option<TenantName>,
    pub slug: Option<Slug>,
    pub settings: TenantSettings,
    pub status: TenantStatus,
    /// The roster: each member's role.
    pub members: BTreeMap<Uuid, RoleName>,
    /// Custom roles and their permissions (built-in roles are not stored).
    pub roles: BTreeMap<RoleName, PermissionSet>,
    /// Every invitation ever made, by id.
    pub invitations: BTreeMap<Uuid, Invitation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

impl InvitationStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Accepted, Self::Revoked, Self::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invitation {
    /// The invitee's email, by its keyed hash.
    pub email_hash: EmailHash,
    pub role: RoleName,
    pub status: InvitationStatus,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Which derived token is live: 1 at creation, +1 per resend.
    pub token_version: u32,
    /// The member who invited (none for an API key).
    pub invited_by: Option<Uuid>,
}

impl Invitation {
    /// The status as the world sees it: a pending invitation past its
    /// expiry is expired at once, before the job records it.
    pub fn status_at(&self, now: chrono::DateTime<chrono::Utc>) -> InvitationStatus {
        match self.status {
            InvitationStatus::Pending if now >= self.expires_at => InvitationStatus::Expired,
            s => s,
        }
    }
}

impl Tenant {
    /// In its tenant's chain.
    fn chain_of(&self, _id: crate::TenantId, _actor: &crate::Actor) -> Option<uuid::Uuid> {
        None
    }

    /// Guard shared by every command on an existing tenant.
    fn existing(&self) -> Result<(), TenantError> {
        match (self.id, self.status) {
            (None, _) => Err(TenantError::NotFound),
            (Some(_), TenantStatus::Archived) => Err(TenantError::Archived),
            _ => Ok(()),
        }
    }

    fn decide(&self, command: TenantCommand) -> Result<Vec<TenantEvent>, TenantError> {
        use TenantCommand::*;
        if !matches!(command, CreateTenant { .. }) {
            self.existing()?;
        }
        match command {
            CreateTenant {
                tenant_id,
                name,
                slug,
                settings,
                owner,
            } => {
                if self.id.is_some() {
                    return Err(TenantError::AlreadyExists);
                }
                let mut events = vec![TenantEvent::TenantCreated {
                    tenant_id: tenant_id.as_uuid(),
                    name,
                    slug,
                    settings,
                }];
                if let Some(user_id) = owner {
                    events.push(TenantEvent::MemberAdded {
                        user_id: user_id.as_uuid(),
                        role: RoleName::owner(),
                    });
                }
                Ok(events)
            }
            UpdateTenant {
                name,
                settings_patch,
            } => self.decide_update(name, settings_patch),
            SuspendTenant { reason } => {
                let reason = crate::values::Reason::parse(&reason)
                    .map_err(|_| TenantError::InvalidReason)?
                    .into_string();
                if self.status == TenantStatus::Suspended {
                    return Err(TenantError::AlreadySuspended);
                }
                Ok(vec![TenantEvent::TenantSuspended { reason }])
            }
            ReactivateTenant => {
                if self.status != TenantStatus::Suspended {
                    return Err(TenantError::NotSuspended);
                }
                Ok(vec![TenantEvent::TenantReactivated {}])
            }
            ArchiveTenant => Ok(vec![TenantEvent::TenantArchived {}]),
            AddMember {
                user_id,
                role,
                by,
                now,
                plan_seats,
            } => self.add_member(user_id.as_uuid(), role, &by, now, plan_seats),
            ChangeMemberRole { user_id, role, by } => {
                self.change_member_role(user_id.as_uuid(), role, &by)
            }
            RemoveMember { user_id, by } => self.remove_member(user_id.as_uuid(), &by),
            DefineRole {
                name,
                permissions,
                by,
            } => self.define_role(name, permissions, &by),
            UpdateRole {
                name,
                permissions,
                by,
            } => self.update_role(name, permissions, &by),
            DeleteRole { name } => self.delete_role(name),
            Invite {
                invitation_id,
                email,
                email_hash,
                role,
                by,
                invited_by,
                existing_user,
                expires_at,
                now,
                plan_seats,
            } => self.invite(
                invitation_id.as_uuid(),
                email,
                email_hash,
                role,
                &by,
                invited_by.map(UserId::as_uuid),
                existing_user.map(UserId::as_uuid),
                expires_at,
                now,
                plan_seats,
            ),
            ResendInvitation {
                invitation_id,
                token_version,
                expires_at,
                now,
            } => self.resend_invitation(invitation_id.as_uuid(), token_version, expires_at, now),
            RevokeInvitation { invitation_id, now } => {
                self.revoke_invitation(invitation_id.as_uuid(), now)
            }
            AcceptInvitation {
                invitation_id,
                user_id,
                now,
            } => self.accept_invitation(invitation_id.as_uuid(), user_id.as_uuid(), now),
            ExpireInvitation { invitation_id, now } => {
                self.expire_invitation(invitation_id.as_uuid(), now)
            }
        }
    }

    fn decide_update(
        &self,
        name: Option<TenantName>,
        settings_patch: Option<TenantSettings>,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        let mut events = Vec::new();
        if let (Some(name), Some(previous_name)) = (name, &self.name) {
            if &name != previous_name {
                events.push(TenantEvent::TenantRenamed {
                    name,
                    previous_name: previous_name.clone(),
                });
            }
        }
        if let Some(patch) = settings_patch {
            let settings = self
                .settings
                .merged(&patch)
                .map_err(|e| TenantError::InvalidSettings(e.message))?;
            if settings != self.settings {
                events.push(TenantEvent::TenantSettingsUpdated { settings });
            }
        }
        Ok(events)
    }
}

crate::aggregate!(
    Tenant,
    "tenant",
    crate::TenantId,
    TenantCommand,
    TenantEvent,
    TenantError
);

impl Tenant {
    /// Fold one event into the state (the aggregate's `apply`).
    fn evolve(&mut self, event: TenantEvent) {
        match event {
            TenantEvent::TenantCreated {
                tenant_id,
                name,
                slug,
                settings,
            } => {
                self.id = Some(tenant_id);
                self.name = Some(name);
                self.slug = Some(slug);
                self.settings = settings;
                self.status = TenantStatus::Active;
            }
            TenantEvent::TenantRenamed { name, .. } => self.name = Some(name),
            TenantEvent::TenantSettingsUpdated { settings } => self.settings = settings,
            TenantEvent::TenantSuspended { .. } => self.status = TenantStatus::Suspended,
            TenantEvent::TenantReactivated {} => self.status = TenantStatus::Active,
            TenantEvent::TenantArchived {} => self.status = TenantStatus::Archived,
            TenantEvent::MemberAdded { user_id, role }
            | TenantEvent::MemberRoleChanged { user_id, role, .. } => {
                self.members.insert(user_id, role);
            }
            TenantEvent::MemberRemoved { user_id, .. } => {
                self.members.remove(&user_id);
            }
            TenantEvent::RoleDefined { name, permissions }
            | TenantEvent::RoleUpdated {
                name, permissions, ..
            } => {
                self.roles.insert(name, permissions);
            }
            TenantEvent::RoleDeleted { name } => {
                self.roles.remove(&name);
            }
            TenantEvent::InvitationCreated {
                invitation_id,
                email_hash,
                role,
                invited_by,
                expires_at,
                ..
            } => {
                self.invitations.insert(
                    invitation_id,
                    Invitation {
                        email_hash,
                        role,
                        status: InvitationStatus::Pending,
                        expires_at,
                        token_version: 1,
                        invited_by,
                    },
                );
            }
            TenantEvent::InvitationResent {
                invitation_id,
                token_version,
                expires_at,
            } => {
                if let Some(i) = self.invitations.get_mut(&invitation_id) {
                    i.token_version = token_version;
                    i.expires_at = expires_at;
                }
            }
            TenantEvent::InvitationRevoked { invitation_id } => {
                self.set_invitation_status(invitation_id, InvitationStatus::Revoked)
            }
            TenantEvent::InvitationAccepted { invitation_id, .. } => {
                self.set_invitation_status(invitation_id, InvitationStatus::Accepted)
            }
            TenantEvent::InvitationExpired { invitation_id } => {
                self.set_invitation_status(invitation_id, InvitationStatus::Expired)
            }
        }
    }
}
