use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
use crate::values::{Email, PersonName};

type Given = TestFramework<User>;

fn registered() -> UserEvent {
    UserEvent::UserRegistered {
        user_id: Uuid::from_u128(1),
        email: Email::parse("Ada@Example.com").unwrap(),
        name: PersonName::parse("Ada").unwrap(),
        platform_admin: false,
    }
}

#[test]
fn registering_a_user_records_email_name_and_admin_flag() {
    Given::with(())
        .given_no_previous_events()
        .when(UserCommand::RegisterUser {
            user_id: Uuid::from_u128(1).into(),
            email: Email::parse("Ada@Example.com").unwrap(),
            name: PersonName::parse("Ada").unwrap(),
            platform_admin: false,
        })
        .then_expect_events(vec![registered()]);
}

#[test]
fn registration_claims_the_lowercase_email() {
    assert_eq!(
        registered().claim_changes(),
        vec![ClaimChange::Claim {
            scope: ClaimScope::UserEmail,
            value: "ada@example.com".into()
        }]
    );
}

#[test]
fn registering_an_existing_user_is_refused() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::RegisterUser {
            user_id: Uuid::from_u128(1).into(),
            email: Email::parse("other@example.com").unwrap(),
            name: PersonName::parse("Other").unwrap(),
            platform_admin: false,
        })
        .then_expect_error(UserError::AlreadyExists);
}

#[test]
fn a_command_on_an_unknown_user_is_not_found() {
    Given::with(())
        .given_no_previous_events()
        .when(UserCommand::DeactivateUser)
        .then_expect_error(UserError::NotFound);
}

#[test]
fn renaming_to_the_same_name_records_nothing() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::ChangeName {
            name: PersonName::parse("Ada").unwrap(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn renaming_records_the_new_name() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::ChangeName {
            name: PersonName::parse("Ada L.").unwrap(),
        })
        .then_expect_events(vec![UserEvent::UserRenamed {
            name: PersonName::parse("Ada L.").unwrap(),
        }]);
}

#[test]
fn changing_the_password_records_that_it_changed_and_nothing_more() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::ChangePassword)
        .then_expect_events(vec![UserEvent::UserPasswordChanged {}]);
}

#[test]
fn a_deactivated_user_cannot_change_password() {
    Given::with(())
        .given(vec![registered(), UserEvent::UserDeactivated {}])
        .when(UserCommand::ChangePassword)
        .then_expect_error(UserError::Deactivated);
}

#[test]
fn deactivating_twice_is_refused() {
    Given::with(())
        .given(vec![registered(), UserEvent::UserDeactivated {}])
        .when(UserCommand::DeactivateUser)
        .then_expect_error(UserError::AlreadyDeactivated);
}

#[test]
fn reactivating_a_deactivated_user_is_recorded() {
    Given::with(())
        .given(vec![registered(), UserEvent::UserDeactivated {}])
        .when(UserCommand::ReactivateUser)
        .then_expect_events(vec![UserEvent::UserReactivated {}]);
}

#[test]
fn reactivating_an_active_user_is_refused() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::ReactivateUser)
        .then_expect_error(UserError::AlreadyActive);
}

#[test]
fn granting_platform_admin_is_recorded_once() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::GrantPlatformAdmin)
        .then_expect_events(vec![UserEvent::PlatformAdminGranted {}]);
    Given::with(())
        .given(vec![registered(), UserEvent::PlatformAdminGranted {}])
        .when(UserCommand::GrantPlatformAdmin)
        .then_expect_error(UserError::AlreadyPlatformAdmin);
}

#[test]
fn revoking_platform_admin_from_a_non_admin_is_refused() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::RevokePlatformAdmin)
        .then_expect_error(UserError::NotPlatformAdmin);
}
