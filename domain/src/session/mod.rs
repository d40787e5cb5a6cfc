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
    /// Version 2. Nothing an anonymous caller typed is kept: a known user
    /// is the event's actor, and an unknown address is recorded only as
    /// `email_hash`, a keyed hash (HMAC-SHA256) that lets an auditor count
    /// attempts on one address without the log holding it. The password
    /// never. Version 1 held the attempted email verbatim; it reads as
    /// version 2 with `email_hash: null`.
    SignInFailed {
        reason: SignInFailure,
        email_hash: Option<String>,
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

crate::stored_event!(SessionEvent, own_codec);

impl crate::codec::EventCodec for SessionEvent {
    fn current_version(event_type: &str) -> i32 {
        match event_type {
            "SignInFailed" => 2,
            _ => 1,
        }
    }

    fn upcasters() -> &'static [crate::codec::Upcaster] {
        &[crate::codec::Upcaster {
            event_type: "SignInFailed",
            from_version: 1,
            upcast: |mut data| {
                data.remove("email");
                data.insert("email_hash".into(), serde_json::Value::Null);
                data
            },
        }]
    }
}
impl UniqueClaims for SessionEvent {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("this sign-in attempt is already recorded")]
    AlreadyRecorded,
    #[error("the session does not exist")]
    NotFound,
    #[error("the session is revoked")]
    Revoked,
    #[error("an impersonation needs a reason of 1 to 500 characters, with no control characters but newline and tab")]
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
                let reason = crate::values::Reason::parse(&reason)
                    .map_err(|_| SessionError::InvalidReason)?
                    .into_string();
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
            (SessionState::Empty, RecordFailedSignIn { reason, email_hash }) => {
                Ok(vec![SessionEvent::SignInFailed { reason, email_hash }])
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
    fn a_failed_sign_in_keeps_the_reason_and_only_a_hash_of_an_unknown_address() {
        Given::with(())
            .given_no_previous_events()
            .when(SessionCommand::RecordFailedSignIn {
                reason: SignInFailure::UnknownEmail,
                email_hash: Some("ab12".into()),
            })
            .then_expect_events(vec![SessionEvent::SignInFailed {
                reason: SignInFailure::UnknownEmail,
                email_hash: Some("ab12".into()),
            }]);
    }

    #[test]
    fn a_version_1_failed_sign_in_reads_without_its_email() {
        use crate::codec::EventCodec;
        let stored =
            serde_json::json!({"email": "typed-a-password@x.io", "reason": "wrong_password"});
        let event = SessionEvent::decode("SignInFailed", 1, stored).unwrap();
        assert_eq!(
            event,
            SessionEvent::SignInFailed {
                reason: SignInFailure::WrongPassword,
                email_hash: None,
            }
        );
        let (event_type, version, payload) = event.encode().unwrap();
        assert_eq!((event_type.as_str(), version), ("SignInFailed", 2));
        assert!(payload.get("email").is_none());
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
                reason: SignInFailure::UnknownEmail,
                email_hash: None,
            }])
            .when(SessionCommand::Revoke {
                reason: RevokeReason::Logout,
            })
            .then_expect_error(SessionError::NotFound);
    }
}
