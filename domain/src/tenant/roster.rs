//! The roster's rules: who may grant which role, the last owner, the seat
//! limit, and custom roles.

use uuid::Uuid;

use super::{Authority, RemovalReason, Tenant, TenantError, TenantEvent};
use crate::access::{platform_admin_permissions, Permission, PermissionSet, RoleName};

impl Tenant {
    /// The permissions a role grants here: built-in or custom.
    pub fn role_permissions(&self, role: &RoleName) -> Option<PermissionSet> {
        match role.as_builtin() {
            Some(builtin) => Some(builtin.permissions()),
            None => self.roles.get(role).copied(),
        }
    }

    /// A member's role, if they are one.
    pub fn role_of(&self, user_id: Uuid) -> Option<&RoleName> {
        self.members.get(&user_id)
    }

    pub fn owner_count(&self) -> usize {
        self.members.values().filter(|r| r.is_owner()).count()
    }

    fn held_by(&self, by: &Authority) -> PermissionSet {
        match by {
            Authority::Platform => platform_admin_permissions(),
            Authority::Member(id) => self
                .role_of(id.as_uuid())
                .and_then(|r| self.role_permissions(r))
                .unwrap_or(PermissionSet::EMPTY),
            Authority::ApiKey(permissions) => *permissions,
        }
    }

    fn is_owner(&self, by: &Authority) -> bool {
        match by {
            Authority::Platform => true,
            Authority::Member(id) => self.role_of(id.as_uuid()).is_some_and(RoleName::is_owner),
            Authority::ApiKey(_) => false,
        }
    }

    /// The role exists and `by` may hand it out: only owners hand out the
    /// owner role, and nobody hands out a permission they lack.
    pub(super) fn check_grant(&self, role: &RoleName, by: &Authority) -> Result<(), TenantError> {
        let granted = self
            .role_permissions(role)
            .ok_or(TenantError::UnknownRole)?;
        if role.is_owner() && !self.is_owner(by) {
            return Err(TenantError::OwnerRequired);
        }
        check_within(granted, self.held_by(by))
    }

    pub(super) fn add_member(
        &self,
        user_id: Uuid,
        role: RoleName,
        by: &Authority,
        now: chrono::DateTime<chrono::Utc>,
        plan_seats: Option<u32>,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        if self.members.contains_key(&user_id) {
            return Err(TenantError::AlreadyMember);
        }
        self.check_grant(&role, by)?;
        self.check_seat(now, plan_seats)?;
        Ok(vec![TenantEvent::MemberAdded { user_id, role }])
    }

    pub(super) fn change_member_role(
        &self,
        user_id: Uuid,
        role: RoleName,
        by: &Authority,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        let previous_role = self
            .role_of(user_id)
            .cloned()
            .ok_or(TenantError::MemberNotFound)?;
        if previous_role == role {
            return Ok(Vec::new());
        }
        self.check_grant(&role, by)?;
        if previous_role.is_owner() {
            if !self.is_owner(by) {
                return Err(TenantError::OwnerRequired);
            }
            if self.owner_count() == 1 {
                return Err(TenantError::LastOwner);
            }
        }
        Ok(vec![TenantEvent::MemberRoleChanged {
            user_id,
            role,
            previous_role,
        }])
    }

    pub(super) fn remove_member(
        &self,
        user_id: Uuid,
        by: &Authority,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        let role = self
            .role_of(user_id)
            .cloned()
            .ok_or(TenantError::MemberNotFound)?;
        let leaving = *by == Authority::Member(user_id.into());
        if role.is_owner() {
            if !leaving && !self.is_owner(by) {
                return Err(TenantError::OwnerRequired);
            }
            if self.owner_count() == 1 {
                return Err(TenantError::LastOwner);
            }
        }
        let reason = if leaving {
            RemovalReason::Left
        } else {
            RemovalReason::Removed
        };
        Ok(vec![TenantEvent::MemberRemoved {
            user_id,
            role,
            reason,
        }])
    }

    fn check_custom_role(
        &self,
        permissions: PermissionSet,
        by: &Authority,
    ) -> Result<(), TenantError> {
        if permissions.contains(Permission::LlmKeysUse) {
            return Err(TenantError::NotAssignableToRole);
        }
        check_within(permissions, self.held_by(by))
    }

    pub(super) fn define_role(
        &self,
        name: RoleName,
        permissions: PermissionSet,
        by: &Authority,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        if name.as_builtin().is_some() || self.roles.contains_key(&name) {
            return Err(TenantError::RoleExists);
        }
        self.check_custom_role(permissions, by)?;
        Ok(vec![TenantEvent::RoleDefined { name, permissions }])
    }

    pub(super) fn update_role(
        &self,
        name: RoleName,
        permissions: PermissionSet,
        by: &Authority,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        if name.as_builtin().is_some() {
            return Err(TenantError::BuiltinRoleImmutable);
        }
        let previous_permissions = *self.roles.get(&name).ok_or(TenantError::RoleNotFound)?;
        self.check_custom_role(permissions, by)?;
        if permissions == previous_permissions {
            return Ok(Vec::new());
        }
        Ok(vec![TenantEvent::RoleUpdated {
            name,
            permissions,
            previous_permissions,
        }])
    }

    pub(super) fn delete_role(&self, name: RoleName) -> Result<Vec<TenantEvent>, TenantError> {
        if name.as_builtin().is_some() {
            return Err(TenantError::BuiltinRoleImmutable);
        }
        if !self.roles.contains_key(&name) {
            return Err(TenantError::RoleNotFound);
        }
        let members = self.members.values().filter(|r| **r == name).count();
        if members > 0 {
            return Err(TenantError::RoleInUse { members });
        }
        Ok(vec![TenantEvent::RoleDeleted { name }])
    }
}

fn check_within(wanted: PermissionSet, held: PermissionSet) -> Result<(), TenantError> {
    let missing = wanted.minus(held);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(TenantError::RoleEscalation { missing })
    }
}
