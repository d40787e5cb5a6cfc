use crate::UserId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInFailure {
    UnknownEmail,
    WrongPassword,
    UserDeactivated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    Logout,
    RefreshTokenReuse,
    UserDeactivated,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SessionCommand {
    SignIn {
        user_id: UserId,
    },
    /// `email_hash`: the keyed hash of an address no user has (the API
    /// computes it); `None` when the attempt named a known user, who is
    /// then the event's actor.
    RecordFailedSignIn {
        reason: SignInFailure,
        email_hash: Option<String>,
    },
    Refresh,
    Revoke {
        reason: RevokeReason,
    },
    /// A platform admin starts a support session as `user_id`.
    StartImpersonation {
        admin_id: UserId,
        user_id: UserId,
        reason: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    EndImpersonation,
}
