use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::access::{Permission, PermissionSet};
use crate::values::Label;
use cqrs_es::test::TestFramework;

use super::*;

type Given = TestFramework<ApiKey>;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn create(permissions: &[Permission], creator: PermissionSet) -> ApiKeyCommand {
    ApiKeyCommand::Create {
        key_id: Uuid::from_u128(9).into(),
        name: Label::parse("runtime").unwrap(),
        prefix: "tnt_abcd".into(),
        permissions: PermissionSet::of(permissions),
        expires_at: None,
        creator_holds: creator,
        now: now(),
    }
}

fn created(permissions: &[Permission]) -> ApiKeyEvent {
    ApiKeyEvent::ApiKeyCreated {
        key_id: Uuid::from_u128(9),
        name: Label::parse("runtime").unwrap(),
        prefix: "tnt_abcd".into(),
        permissions: PermissionSet::of(permissions),
        expires_at: None,
    }
}

#[test]
fn a_key_carries_what_its_creator_holds() {
    let perms = [Permission::UsageWrite, Permission::AgentsRead];
    Given::with(())
        .given_no_previous_events()
        .when(create(&perms, PermissionSet::of(&perms)))
        .then_expect_events(vec![created(&perms)]);
}

#[test]
fn a_key_cannot_carry_more_than_its_creator() {
    Given::with(())
        .given_no_previous_events()
        .when(create(
            &[Permission::UsageWrite, Permission::BillingManage],
            PermissionSet::of(&[Permission::UsageWrite, Permission::ApiKeysManage]),
        ))
        .then_expect_error(ApiKeyError::Escalation {
            missing: PermissionSet::of(&[Permission::BillingManage]),
        });
}

#[test]
fn llm_keys_use_needs_llm_keys_manage() {
    let with_manage = PermissionSet::of(&[Permission::LlmKeysManage]);
    Given::with(())
        .given_no_previous_events()
        .when(create(&[Permission::LlmKeysUse], with_manage))
        .then_expect_events(vec![created(&[Permission::LlmKeysUse])]);
    Given::with(())
        .given_no_previous_events()
        .when(create(
            &[Permission::LlmKeysUse],
            PermissionSet::of(&[Permission::LlmKeysRead]),
        ))
        .then_expect_error(ApiKeyError::Escalation {
            missing: PermissionSet::of(&[Permission::LlmKeysUse]),
        });
}

#[test]
fn a_key_needs_a_permission_and_a_future_expiry() {
    Given::with(())
        .given_no_previous_events()
        .when(create(&[], PermissionSet::all()))
        .then_expect_error(ApiKeyError::NoPermissions);
    let mut past = create(&[Permission::TenantRead], PermissionSet::all());
    if let ApiKeyCommand::Create { expires_at, .. } = &mut past {
        *expires_at = Some(now());
    }
    Given::with(())
        .given_no_previous_events()
        .when(past)
        .then_expect_error(ApiKeyError::ExpiryInPast);
}

#[test]
fn a_revoked_key_cannot_be_revoked_again() {
    Given::with(())
        .given(vec![created(&[Permission::TenantRead])])
        .when(ApiKeyCommand::Revoke)
        .then_expect_events(vec![ApiKeyEvent::ApiKeyRevoked {}]);
    Given::with(())
        .given(vec![
            created(&[Permission::TenantRead]),
            ApiKeyEvent::ApiKeyRevoked {},
        ])
        .when(ApiKeyCommand::Revoke)
        .then_expect_error(ApiKeyError::NotFound);
}
