use crate::UserId;

use crate::values::{Email, PersonName};

/// Commands carry no password: the API checks the policy, hashes it with
/// argon2id and stores the hash beside the events, never in them.
#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    RegisterUser {
        user_id: UserId,
        email: Email,
        name: PersonName,
        platform_admin: bool,
    },
    ChangeName {
        name: PersonName,
    },
    ChangePassword,
    DeactivateUser,
    ReactivateUser,
    GrantPlatformAdmin,
    RevokePlatformAdmin,
}
