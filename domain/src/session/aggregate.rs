use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{SessionCommand, SessionError, SessionEvent};

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
    /// A session's events join its person's chain (a failed attempt on
    /// someone's address too: its actor is that person); a failed attempt
    /// on an address nobody has is a chain of its own.
    fn chain_of(&self, id: crate::SessionId, actor: &crate::Actor) -> Option<Uuid> {
        let attempted = match actor {
            crate::Actor::User { id } => Some(*id),
            _ => None,
        };
        Some(self.user_id.or(attempted).unwrap_or(id.as_uuid()))
    }

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
                    admin_id: admin_id.as_uuid(),
                    user_id: user_id.as_uuid(),
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
            (SessionState::Empty, SignIn { user_id }) => Ok(vec![SessionEvent::SignInSucceeded {
                user_id: user_id.as_uuid(),
            }]),
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
    crate::SessionId,
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
