//! Invitations' rules. They live in the Tenant aggregate because they share
//! its invariants: the seat limit counts pending invitations, nobody invites
//! a member, and accepting seats the invitee in the same commit.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Authority, InvitationStatus, Tenant, TenantError, TenantEvent};
use crate::access::RoleName;
use crate::values::{EmailHash, Sealed};

impl Tenant {
    /// Pending invitations that have not run out: each holds a seat.
    pub fn open_invitations(&self, now: DateTime<Utc>) -> usize {
        self.invitations
            .values()
            .filter(|i| i.status_at(now) == InvitationStatus::Pending)
            .count()
    }

    pub(super) fn set_invitation_status(&mut self, id: Uuid, status: InvitationStatus) {
        if let Some(i) = self.invitations.get_mut(&id) {
            i.status = status;
        }
    }

    /// The invitation, refused unless it can still be acted on.
    fn pending(&self, id: Uuid, now: DateTime<Utc>) -> Result<&super::Invitation, TenantError> {
        let invitation = self
            .invitations
            .get(&id)
            .ok_or(TenantError::InvitationNotFound)?;
        match invitation.status_at(now) {
            InvitationStatus::Pending => Ok(invitation),
            InvitationStatus::Accepted => Err(TenantError::InvitationUsed),
            InvitationStatus::Revoked => Err(TenantError::InvitationRevoked),
            InvitationStatus::Expired => Err(TenantError::InvitationExpired),
        }
    }

    /// Seat limit: members plus open invitations, against the platform
    /// admin's `max_seats` setting when set, else the plan's seats.
    pub(super) fn check_seat(
        &self,
        now: DateTime<Utc>,
        plan_seats: Option<u32>,
    ) -> Result<(), TenantError> {
        match self.settings.max_seats().or(plan_seats.map(u64::from)) {
            Some(limit) if (self.members.len() + self.open_invitations(now)) as u64 >= limit => {
                Err(TenantError::SeatLimitReached { limit })
            }
            _ => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn invite(
        &self,
        invitation_id: Uuid,
        email: Sealed,
        email_hash: EmailHash,
        role: RoleName,
        by: &Authority,
        invited_by: Option<Uuid>,
        existing_user: Option<Uuid>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        plan_seats: Option<u32>,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        if self.invitations.contains_key(&invitation_id) {
            return Err(TenantError::InvitationPending);
        }
        if existing_user.is_some_and(|u| self.members.contains_key(&u)) {
            return Err(TenantError::AlreadyMember);
        }
        let pending = self
            .invitations
            .values()
            .any(|i| i.email_hash == email_hash && i.status_at(now) == InvitationStatus::Pending);
        if pending {
            return Err(TenantError::InvitationPending);
        }
        self.check_grant(&role, by)?;
        self.check_seat(now, plan_seats)?;
        Ok(vec![TenantEvent::InvitationCreated {
            invitation_id,
            email,
            email_hash,
            role,
            invited_by,
            expires_at,
        }])
    }

    fn not_pending(err: TenantError) -> TenantError {
        match err {
            TenantError::InvitationNotFound => err,
            _ => TenantError::InvitationNotPending,
        }
    }

    pub(super) fn resend_invitation(
        &self,
        invitation_id: Uuid,
        token_version: u32,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        let invitation = self
            .pending(invitation_id, now)
            .map_err(Self::not_pending)?;
        if token_version != invitation.token_version + 1 {
            return Err(TenantError::InvitationResentMeanwhile);
        }
        Ok(vec![TenantEvent::InvitationResent {
            invitation_id,
            token_version,
            expires_at,
        }])
    }

    pub(super) fn revoke_invitation(
        &self,
        invitation_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        self.pending(invitation_id, now)
            .map_err(Self::not_pending)?;
        Ok(vec![TenantEvent::InvitationRevoked { invitation_id }])
    }

    pub(super) fn accept_invitation(
        &self,
        invitation_id: Uuid,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        let invitation = self.pending(invitation_id, now)?;
        if self.members.contains_key(&user_id) {
            return Err(TenantError::AlreadyMember);
        }
        // A custom role deleted since the invitation cannot be granted.
        if self.role_permissions(&invitation.role).is_none() {
            return Err(TenantError::UnknownRole);
        }
        Ok(vec![
            TenantEvent::InvitationAccepted {
                invitation_id,
                user_id,
            },
            TenantEvent::MemberAdded {
                user_id,
                role: invitation.role.clone(),
            },
        ])
    }

    /// A no-op unless the invitation is pending and past its expiry.
    pub(super) fn expire_invitation(
        &self,
        invitation_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        match self.invitations.get(&invitation_id) {
            Some(i) if i.status == InvitationStatus::Pending && now >= i.expires_at => {
                Ok(vec![TenantEvent::InvitationExpired { invitation_id }])
            }
            Some(_) => Ok(Vec::new()),
            None => Err(TenantError::InvitationNotFound),
        }
    }
}
