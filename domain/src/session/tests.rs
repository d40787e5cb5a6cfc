use super::*;
use cqrs_es::test::TestFramework;
use uuid::Uuid;

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
    let stored = serde_json::json!({"email": "typed-a-password@x.io", "reason": "wrong_password"});
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
            admin_id: Uuid::from_u128(1).into(),
            user_id: Uuid::from_u128(3).into(),
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
