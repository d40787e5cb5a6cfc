use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{UserCommand, UserError, UserEvent};
use crate::values::{EmailHash, Sealed};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    #[default]
    Active,
    Deactivated,
    /// Their data key destroyed: closed for good.
    Erased,
}

impl UserStatus {
    pub const ALL: [Self; 3] = [Self::Active, Self::Deactivated, Self::Erased];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
            Self::Erased => "erased",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Option<Uuid>,
    pub email: Option<Sealed>,
    pub email_hash: Option<EmailHash>,
    pub name: Option<Sealed>,
    pub status: UserStatus,
    pub platform_admin: bool,
}

impl User {
    /// A user's events form their own chain.
    fn chain_of(&self, id: crate::UserId, _actor: &crate::Actor) -> Option<Uuid> {
        Some(id.as_uuid())
    }

    pub fn is_active(&self) -> bool {
        self.id.is_some() && self.status == UserStatus::Active
    }

    fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        use UserCommand::*;
        let exists = self.id.is_some();
        match command {
            RegisterUser { .. } if exists => Err(UserError::AlreadyExists),
            RegisterUser {
                user_id,
                email,
                email_hash,
                name,
                platform_admin,
            } => Ok(vec![UserEvent::UserRegistered {
                user_id: user_id.as_uuid(),
                email,
                email_hash,
                name,
                platform_admin,
            }]),
            _ if !exists => Err(UserError::NotFound),
            _ if self.status == UserStatus::Erased => Err(UserError::Erased),
            EraseUser { reason } => Ok(vec![UserEvent::UserErased {
                email_hash: self.email_hash.clone().ok_or(UserError::NotFound)?,
                reason,
            }]),
            ChangeName { name } => Ok(vec![UserEvent::UserRenamed { name }]),
            ChangePassword if self.status == UserStatus::Deactivated => Err(UserError::Deactivated),
            ChangePassword => Ok(vec![UserEvent::UserPasswordChanged {}]),
            DeactivateUser if self.status == UserStatus::Deactivated => {
                Err(UserError::AlreadyDeactivated)
            }
            DeactivateUser => Ok(vec![UserEvent::UserDeactivated {}]),
            ReactivateUser if self.status == UserStatus::Active => Err(UserError::AlreadyActive),
            ReactivateUser => Ok(vec![UserEvent::UserReactivated {}]),
            GrantPlatformAdmin if self.platform_admin => Err(UserError::AlreadyPlatformAdmin),
            GrantPlatformAdmin => Ok(vec![UserEvent::PlatformAdminGranted {}]),
            RevokePlatformAdmin if !self.platform_admin => Err(UserError::NotPlatformAdmin),
            RevokePlatformAdmin => Ok(vec![UserEvent::PlatformAdminRevoked {}]),
        }
    }
}

crate::aggregate!(
    User,
    "user",
    crate::UserId,
    UserCommand,
    UserEvent,
    UserError
);

impl User {
    /// Fold one event into the state (the aggregate's `apply`).
    fn evolve(&mut self, event: UserEvent) {
        match event {
            UserEvent::UserRegistered {
                user_id,
                email,
                email_hash,
                name,
                platform_admin,
            } => {
                self.id = Some(user_id);
                self.email = Some(email);
                self.email_hash = Some(email_hash);
                self.name = Some(name);
                self.platform_admin = platform_admin;
                self.status = UserStatus::Active;
            }
            UserEvent::UserRenamed { name } => self.name = Some(name),
            UserEvent::UserPasswordChanged {} => {}
            UserEvent::UserDeactivated {} => self.status = UserStatus::Deactivated,
            UserEvent::UserReactivated {} => self.status = UserStatus::Active,
            UserEvent::PlatformAdminGranted {} => self.platform_admin = true,
            UserEvent::PlatformAdminRevoked {} => self.platform_admin = false,
            UserEvent::UserErased { .. } => {
                self.status = UserStatus::Erased;
                self.email = None;
                self.name = None;
                self.platform_admin = false;
            }
        }
    }
}
