//! The Session aggregate: one sign-in attempt and, when it succeeded, the
//! session it started (refreshes, revocation). Platform-level stream.
//! Tokens and their hashes never appear here: the API keeps those in the
//! `sessions` and `refresh_tokens` tables, written in the same transaction.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::claims::UniqueClaims;
use crate::codec::{variant_name, EventCodec};
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
}

impl DomainEvent for SessionEvent {
    fn event_type(&self) -> String {
        variant_name(self)
    }
    fn event_version(&self) -> String {
        Self::current_version(&self.event_type()).to_string()
    }
}

impl EventCodec for SessionEvent {}
impl UniqueClaims for SessionEvent {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("this sign-in attempt is already recorded")]
    AlreadyRecorded,
    #[error("the session does not exist")]
    NotFound,
    #[error("the session is revoked")]
    Revoked,
}

impl DomainError for SessionError {
    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyRecorded => "session_already_exists",
            Self::NotFound => "session_not_found",
            Self::Revoked => "session_revoked",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound => ErrorKind::NotFound,
            Self::Revoked => ErrorKind::Gone,
            Self::AlreadyRecorded => ErrorKind::Conflict,
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
}

impl Session {
    fn decide(&self, command: SessionCommand) -> Result<Vec<SessionEvent>, SessionError> {
        use SessionCommand::*;
        match (self.state, command) {
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
            (_, SignIn { .. } | RecordFailedSignIn { .. }) => Err(SessionError::AlreadyRecorded),
            (SessionState::Revoked, Refresh | Revoke { .. }) => Err(SessionError::Revoked),
            (SessionState::Active, Refresh) => Ok(vec![SessionEvent::SessionRefreshed {}]),
            (SessionState::Active, Revoke { reason }) => {
                Ok(vec![SessionEvent::SessionRevoked { reason }])
            }
        }
    }
}

impl Aggregate for Session {
    const TYPE: &'static str = "session";
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = SessionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SessionEvent::SignInSucceeded { user_id } => {
                self.user_id = Some(user_id);
                self.state = SessionState::Active;
            }
            SessionEvent::SignInFailed { .. } => self.state = SessionState::Failed,
            SessionEvent::SessionRefreshed {} => {}
            SessionEvent::SessionRevoked { .. } => self.state = SessionState::Revoked,
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
