use cqrs_es::test::TestFramework;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::values::{Slug, TenantName, TenantSettings};

type Given = TestFramework<Tenant>;

fn id() -> Uuid {
    Uuid::from_u128(7)
}

fn created() -> TenantEvent {
    TenantEvent::TenantCreated {
        tenant_id: id(),
        name: TenantName::parse("Acme").unwrap(),
        slug: Slug::parse("acme").unwrap(),
        settings: TenantSettings::default(),
    }
}

fn suspended() -> TenantEvent {
    TenantEvent::TenantSuspended {
        reason: "unpaid".into(),
    }
}

fn settings(v: serde_json::Value) -> TenantSettings {
    TenantSettings::parse(v).unwrap()
}

#[test]
fn creating_a_tenant_records_its_name_slug_and_settings() {
    Given::with(())
        .given_no_previous_events()
        .when(TenantCommand::CreateTenant {
            tenant_id: id().into(),
            name: TenantName::parse("Acme").unwrap(),
            slug: Slug::parse("acme").unwrap(),
            settings: TenantSettings::default(),
            owner: None,
        })
        .then_expect_events(vec![created()]);
}

#[test]
fn creating_a_tenant_twice_is_refused() {
    Given::with(())
        .given(vec![created()])
        .when(TenantCommand::CreateTenant {
            tenant_id: id().into(),
            name: TenantName::parse("Acme").unwrap(),
            slug: Slug::parse("acme").unwrap(),
            settings: TenantSettings::default(),
            owner: None,
        })
        .then_expect_error(TenantError::AlreadyExists);
}

#[test]
fn a_command_on_a_tenant_that_does_not_exist_is_not_found() {
    Given::with(())
        .given_no_previous_events()
        .when(TenantCommand::ArchiveTenant)
        .then_expect_error(TenantError::NotFound);
}

#[test]
fn renaming_records_the_new_and_previous_name() {
    Given::with(())
        .given(vec![created()])
        .when(TenantCommand::UpdateTenant {
            name: Some(TenantName::parse("Acme Two").unwrap()),
            settings_patch: None,
        })
        .then_expect_events(vec![TenantEvent::TenantRenamed {
            name: TenantName::parse("Acme Two").unwrap(),
            previous_name: TenantName::parse("Acme").unwrap(),
        }]);
}

#[test]
fn an_update_that_changes_nothing_records_nothing() {
    Given::with(())
        .given(vec![created()])
        .when(TenantCommand::UpdateTenant {
            name: Some(TenantName::parse("Acme").unwrap()),
            settings_patch: Some(settings(json!({"gone": null}))),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_settings_patch_is_merged_into_the_current_settings() {
    Given::with(())
        .given(vec![
            created(),
            TenantEvent::TenantSettingsUpdated {
                settings: settings(json!({"a": 1, "b": 2})),
            },
        ])
        .when(TenantCommand::UpdateTenant {
            name: None,
            settings_patch: Some(settings(json!({"b": null, "max_seats": 3}))),
        })
        .then_expect_events(vec![TenantEvent::TenantSettingsUpdated {
            settings: settings(json!({"a": 1, "max_seats": 3})),
        }]);
}

#[test]
fn suspending_records_the_trimmed_reason() {
    Given::with(())
        .given(vec![created()])
        .when(TenantCommand::SuspendTenant {
            reason: "  unpaid ".into(),
        })
        .then_expect_events(vec![suspended()]);
}

#[test]
fn suspending_without_a_reason_is_refused() {
    Given::with(())
        .given(vec![created()])
        .when(TenantCommand::SuspendTenant {
            reason: "  ".into(),
        })
        .then_expect_error(TenantError::InvalidReason);
}

#[test]
fn suspending_a_suspended_tenant_is_refused() {
    Given::with(())
        .given(vec![created(), suspended()])
        .when(TenantCommand::SuspendTenant {
            reason: "again".into(),
        })
        .then_expect_error(TenantError::AlreadySuspended);
}

#[test]
fn reactivating_a_suspended_tenant_makes_it_active() {
    Given::with(())
        .given(vec![created(), suspended()])
        .when(TenantCommand::ReactivateTenant)
        .then_expect_events(vec![TenantEvent::TenantReactivated {}]);
}

#[test]
fn reactivating_an_active_tenant_is_refused() {
    Given::with(())
        .given(vec![created()])
        .when(TenantCommand::ReactivateTenant)
        .then_expect_error(TenantError::NotSuspended);
}

#[test]
fn archiving_a_suspended_tenant_is_allowed() {
    Given::with(())
        .given(vec![created(), suspended()])
        .when(TenantCommand::ArchiveTenant)
        .then_expect_events(vec![TenantEvent::TenantArchived {}]);
}

#[test]
fn an_archived_tenant_refuses_every_change() {
    for command in [
        TenantCommand::ArchiveTenant,
        TenantCommand::ReactivateTenant,
        TenantCommand::SuspendTenant { reason: "x".into() },
        TenantCommand::UpdateTenant {
            name: Some(TenantName::parse("New").unwrap()),
            settings_patch: None,
        },
    ] {
        Given::with(())
            .given(vec![created(), TenantEvent::TenantArchived {}])
            .when(command)
            .then_expect_error(TenantError::Archived);
    }
}

#[test]
fn only_creation_claims_the_slug() {
    use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
    assert_eq!(
        created().claim_changes(),
        vec![ClaimChange::Claim {
            scope: ClaimScope::TenantSlug,
            value: "acme".into()
        }]
    );
    assert!(suspended().claim_changes().is_empty());
}
