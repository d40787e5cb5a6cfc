use crate::UserId;

use crate::values::{EmailHash, Reason, Sealed};

/// Commands carry no password: the API checks the policy, hashes it with
/// argon2id and stores the hash beside the events, never in them.
#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    RegisterUser {
        user_id: UserId,
        email: Sealed,
        email_hash: EmailHash,
        name: Sealed,
        platform_admin: bool,
    },
    /// A new name, sealed: the aggregate cannot compare it with the old one
    /// (the API does, and sends no command for the same name).
    ChangeName {
        name: Sealed,
    },
    ChangePassword,
    DeactivateUser,
    ReactivateUser,
    GrantPlatformAdmin,
    RevokePlatformAdmin,
    /// Erase the person (the API destroys their data keys in the same
    /// transaction).
    EraseUser {
        reason: Reason,
    },
}
