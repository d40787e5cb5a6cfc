//! The Session aggregate: one sign-in attempt and, when it succeeded, the
//! session it started (refreshes, revocation). Platform-level stream.
//! Tokens and their hashes never appear here: the API keeps those in the
//! `sessions` and `refresh_tokens` tables, written in the same transaction.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::claims::UniqueClaims;
use crate::error::{DomainError, ErrorKind};

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
        user_id: Uuid,
    },
    RecordFailedSignIn {
        email: String,
        reason: SignInFailure,
    },
    Refresh,
    Revoke {
        reason: RevokeReason,
    },
    /// A platform admin starts a support session as `user_id`.
    StartImpersonation {
        admin_id: Uuid,
        user_id: Uuid,
        reason: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    EndImpersonation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum SessionEvent {
    SignInSucceeded {
        user_id: Uuid,
    },
    /// The attempted email (lowercased) is kept for the audit; the password never.
    SignInFailed {
        email: String,
        reason: SignInFailure,
    },
    SessionRefreshed {},
    SessionRevoked {
        reason: RevokeReason,
    },
    ImpersonationStarted {
        admin_id: Uuid,
        user_id: Uuid,
        reason: String,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    ImpersonationEnded {
        admin_id: Uuid,
        user_id: Uuid,
    },
}

crate::stored_event!(SessionEvent);
impl UniqueClaims for SessionEvent {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("this sign-in attempt is already recorded")]
    AlreadyRecorded,
    #[error("the session does not exist")]
    NotFound,
    #[error("the session is revoked")]
    Revoked,
    #[error("an impersonation needs a reason of 1 to 500 characters")]
    InvalidReason,
    #[error("this session is not an impersonation")]
    NotImpersonating,
    #[error("an impersonation session has no refresh token")]
    ImpersonationCannotRefresh,
}

impl DomainError for SessionError {
    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyRecorded => "session_already_exists",
            Self::NotFound => "session_not_found",
            Self::Revoked => "session_revoked",
            Self::InvalidReason => "invalid_reason",
            Self::NotImpersonating => "not_impersonating",
            Self::ImpersonationCannotRefresh => "impersonation_cannot_refresh",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::Revoked => ErrorKind::Gone,
            Self::InvalidReason => ErrorKind::Invalid,
            Self::AlreadyRecorded | Self::NotImpersonating | Self::ImpersonationCannotRefresh => {
                ErrorKind::Conflict
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionState {
    #[default]
    Empty,
    Failed,
    Active,
    Revoked,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub user_id: Option<Uuid>,
    pub state: SessionState,
    /// The platform admin behind an impersonation session.
    pub impersonator: Option<Uuid>,
}

impl Session {
    fn decide(&self, command: SessionCommand) -> Result<Vec<SessionEvent>, SessionError> {
        use SessionCommand::*;
        match (self.state, command) {
            (
                SessionState::Empty,
                StartImpersonation {
                    admin_id,
                    user_id,
                    reason,
                    expires_at,
                },
            ) => {
                let reason = reason.trim().to_string();
                if reason.is_empty() || reason.chars().count() > 500 {
                    return Err(SessionError::InvalidReason);
                }
                Ok(vec![SessionEvent::ImpersonationStarted {
                    admin_id,
                    user_id,
                    reason,
                    expires_at,
                }])
            }
            (SessionState::Active, EndImpersonation) => match (self.impersonator, self.user_id) {
                (Some(admin_id), Some(user_id)) => {
                    Ok(vec![SessionEvent::ImpersonationEnded { admin_id, user_id }])
                }
                _ => Err(SessionError::NotImpersonating),
            },
            (SessionState::Revoked, EndImpersonation) => Err(SessionError::Revoked),
            (_, EndImpersonation) => Err(SessionError::NotImpersonating),
            (SessionState::Active, Refresh) if self.impersonator.is_some() => {
                Err(SessionError::ImpersonationCannotRefresh)
            }
            (SessionState::Empty, SignIn { user_id }) => {
                Ok(vec![SessionEvent::SignInSucceeded { user_id }])
            }
            (SessionState::Empty, RecordFailedSignIn { email, reason }) => {
                Ok(vec![SessionEvent::SignInFailed {
                    email: email.to_lowercase(),
                    reason,
                }])
            }
            (SessionState::Empty | SessionState::Failed, Refresh | Revoke { .. }) => {
                Err(SessionError::NotFound)
            }
            (_, SignIn { .. } | RecordFailedSignIn { .. } | StartImpersonation { .. }) => {
                Err(SessionError::AlreadyRecorded)
            }
            (SessionState::Revoked, Refresh | Revoke { .. }) => Err(SessionError::Revoked),
            (SessionState::Active, Refresh) => Ok(vec![SessionEvent::SessionRefreshed {}]),
            (SessionState::Active, Revoke { reason }) => {
                Ok(vec![SessionEvent::SessionRevoked { reason }])
            }
        }
    }
}

crate::aggregate!(
    Session,
    "session",
    SessionCommand,
    SessionEvent,
    SessionError
);

impl Session {
    /// Fold one event into the state (the aggregate's `apply`).
    fn evolve(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::SignInSucceeded { user_id } => {
                self.user_id = Some(user_id);
                self.state = SessionState::Active;
            }
            SessionEvent::SignInFailed { .. } => self.state = SessionState::Failed,
            SessionEvent::SessionRefreshed {} => {}
            SessionEvent::SessionRevoked { .. } | SessionEvent::ImpersonationEnded { .. } => {
                self.state = SessionState::Revoked
            }
            SessionEvent::ImpersonationStarted {
                admin_id, user_id, ..
            } => {
                self.user_id = Some(user_id);
                self.impersonator = Some(admin_id);
                self.state = SessionState::Active;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Given = TestFramework<Session>;

    fn started() -> SessionEvent {
        SessionEvent::SignInSucceeded {
            user_id: Uuid::from_u128(3),
        }
    }

    #[test]
    fn a_failed_sign_in_keeps_the_lowercase_email_and_the_reason() {
        Given::with(())
            .given_no_previous_events()
            .when(SessionCommand::RecordFailedSignIn {
                email: "Eve@X.io".into(),
                reason: SignInFailure::WrongPassword,
            })
            .then_expect_events(vec![SessionEvent::SignInFailed {
                email: "eve@x.io".into(),
                reason: SignInFailure::WrongPassword,
            }]);
    }

    #[test]
    fn an_active_session_can_be_refreshed() {
        Given::with(())
            .given(vec![started()])
            .when(SessionCommand::Refresh)
            .then_expect_events(vec![SessionEvent::SessionRefreshed {}]);
    }

    #[test]
    fn a_revoked_session_cannot_be_refreshed() {
        Given::with(())
            .given(vec![
                started(),
                SessionEvent::SessionRevoked {
                    reason: RevokeReason::Logout,
                },
            ])
            .when(SessionCommand::Refresh)
            .then_expect_error(SessionError::Revoked);
    }

    fn impersonating() -> SessionEvent {
        SessionEvent::ImpersonationStarted {
            admin_id: Uuid::from_u128(1),
            user_id: Uuid::from_u128(3),
            reason: "ticket 42".into(),
            expires_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        }
    }

    fn ended() -> SessionEvent {
        SessionEvent::ImpersonationEnded {
            admin_id: Uuid::from_u128(1),
            user_id: Uuid::from_u128(3),
        }
    }

    #[test]
    fn an_impersonation_needs_a_reason() {
        Given::with(())
            .given_no_previous_events()
            .when(SessionCommand::StartImpersonation {
                admin_id: Uuid::from_u128(1),
                user_id: Uuid::from_u128(3),
                reason: "  ".into(),
                expires_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            })
            .then_expect_error(SessionError::InvalidReason);
    }

    #[test]
    fn an_impersonation_ends_once_and_never_refreshes() {
        Given::with(())
            .given(vec![impersonating()])
            .when(SessionCommand::Refresh)
            .then_expect_error(SessionError::ImpersonationCannotRefresh);
        Given::with(())
            .given(vec![impersonating()])
            .when(SessionCommand::EndImpersonation)
            .then_expect_events(vec![ended()]);
        Given::with(())
            .given(vec![impersonating(), ended()])
            .when(SessionCommand::EndImpersonation)
            .then_expect_error(SessionError::Revoked);
    }

    #[test]
    fn an_ordinary_session_is_not_an_impersonation() {
        Given::with(())
            .given(vec![started()])
            .when(SessionCommand::EndImpersonation)
            .then_expect_error(SessionError::NotImpersonating);
    }

    #[test]
    fn a_failed_attempt_is_not_a_session() {
        Given::with(())
            .given(vec![SessionEvent::SignInFailed {
                email: "a@b.io".into(),
                reason: SignInFailure::UnknownEmail,
            }])
            .when(SessionCommand::Revoke {
                reason: RevokeReason::Logout,
            })
            .then_expect_error(SessionError::NotFound);
    }
}
