use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
use crate::values::{EmailHash, Reason, Sealed};

type Given = TestFramework<User>;

/// A sealed value as the vault writes one (the domain never opens it).
fn sealed(tag: u128) -> Sealed {
    Sealed::parse(&format!("pd1:{}:c2VhbGVk{tag}", Uuid::from_u128(tag))).unwrap()
}

fn hash(digit: char) -> EmailHash {
    EmailHash::parse(&digit.to_string().repeat(64)).unwrap()
}

fn registered() -> UserEvent {
    UserEvent::UserRegistered {
        user_id: Uuid::from_u128(1),
        email: sealed(10),
        email_hash: hash('a'),
        name: sealed(11),
        platform_admin: false,
    }
}

#[test]
fn registering_a_user_records_email_name_and_admin_flag() {
    Given::with(())
        .given_no_previous_events()
        .when(UserCommand::RegisterUser {
            user_id: Uuid::from_u128(1).into(),
            email: sealed(10),
            email_hash: hash('a'),
            name: sealed(11),
            platform_admin: false,
        })
        .then_expect_events(vec![registered()]);
}

#[test]
fn registration_claims_the_email_by_its_keyed_hash() {
    assert_eq!(
        registered().claim_changes(),
        vec![ClaimChange::Claim {
            scope: ClaimScope::UserEmail,
            value: "a".repeat(64)
        }]
    );
}

#[test]
fn registering_an_existing_user_is_refused() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::RegisterUser {
            user_id: Uuid::from_u128(1).into(),
            email: sealed(20),
            email_hash: hash('b'),
            name: sealed(21),
            platform_admin: false,
        })
        .then_expect_error(UserError::AlreadyExists);
}

fn erased() -> UserEvent {
    UserEvent::UserErased {
        email_hash: hash('a'),
        reason: Reason::parse("GDPR request 7").unwrap(),
    }
}

#[test]
fn erasing_records_the_hash_it_releases_and_closes_the_account() {
    Given::with(())
        .given(vec![registered(), UserEvent::UserDeactivated {}])
        .when(UserCommand::EraseUser {
            reason: Reason::parse("GDPR request 7").unwrap(),
        })
        .then_expect_events(vec![erased()]);
    assert_eq!(
        erased().claim_changes(),
        vec![ClaimChange::Release {
            scope: ClaimScope::UserEmail,
            value: "a".repeat(64)
        }]
    );
    for command in [
        UserCommand::EraseUser {
            reason: Reason::parse("again").unwrap(),
        },
        UserCommand::ReactivateUser,
        UserCommand::ChangeName { name: sealed(30) },
        UserCommand::GrantPlatformAdmin,
        UserCommand::ChangePassword,
    ] {
        Given::with(())
            .given(vec![registered(), erased()])
            .when(command)
            .then_expect_error(UserError::Erased);
    }
}

#[test]
fn sealed_values_name_their_key_and_nothing_else_parses() {
    let s = sealed(10);
    assert_eq!(s.key_id(), Some(Uuid::from_u128(10)));
    assert_eq!(s.body(), "c2VhbGVk10");
    for bad in [
        "",
        "ada@example.com",
        "pd1:",
        "pd1:not-a-uuid:x",
        &format!("pd1:{}:", Uuid::nil()),
    ] {
        assert!(Sealed::parse(bad).is_err(), "{bad:?}");
    }
    assert!(EmailHash::parse(&"A".repeat(64)).is_err());
    assert!(EmailHash::parse(&"a".repeat(63)).is_err());
}

#[test]
fn a_command_on_an_unknown_user_is_not_found() {
    Given::with(())
        .given_no_previous_events()
        .when(UserCommand::DeactivateUser)
        .then_expect_error(UserError::NotFound);
}

#[test]
fn renaming_records_the_new_name() {
    Given::with(())
        .given(vec![registered()])
        .when(UserCommand::ChangeName { name: sealed(12) })
        .then_expect_events(vec![UserEvent::UserRenamed { name: sealed(12) }]);
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
