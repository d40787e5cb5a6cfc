//! The roster's invariants, given/when/then.

use cqrs_es::test::TestFramework;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::access::{Permission, PermissionSet, RoleName};
use crate::values::{Slug, TenantName, TenantSettings};

type Given = TestFramework<Tenant>;

const OWNER: Uuid = Uuid::from_u128(1);
const OWNER_2: Uuid = Uuid::from_u128(2);
const ADMIN: Uuid = Uuid::from_u128(3);
const VIEWER: Uuid = Uuid::from_u128(4);
const NEWCOMER: Uuid = Uuid::from_u128(5);

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn role(name: &str) -> RoleName {
    RoleName::parse(name).unwrap()
}

fn created(settings: serde_json::Value) -> TenantEvent {
    TenantEvent::TenantCreated {
        tenant_id: Uuid::from_u128(7),
        name: TenantName::parse("Acme").unwrap(),
        slug: Slug::parse("acme").unwrap(),
        settings: TenantSettings::parse(settings).unwrap(),
    }
}

fn added(user_id: Uuid, name: &str) -> TenantEvent {
    TenantEvent::MemberAdded {
        user_id,
        role: role(name),
    }
}

/// Acme with one owner, one admin and one viewer.
fn acme() -> Vec<TenantEvent> {
    vec![
        created(json!({})),
        added(OWNER, "owner"),
        added(ADMIN, "admin"),
        added(VIEWER, "viewer"),
    ]
}

fn support_role() -> TenantEvent {
    TenantEvent::RoleDefined {
        name: role("support"),
        permissions: PermissionSet::of(&[Permission::TenantRead, Permission::MembersRead]),
    }
}

#[test]
fn creating_a_tenant_with_an_owner_seats_them_in_the_same_commit() {
    Given::with(())
        .given_no_previous_events()
        .when(TenantCommand::CreateTenant {
            tenant_id: Uuid::from_u128(7).into(),
            name: TenantName::parse("Acme").unwrap(),
            slug: Slug::parse("acme").unwrap(),
            settings: TenantSettings::default(),
            owner: Some(OWNER.into()),
        })
        .then_expect_events(vec![created(json!({})), added(OWNER, "owner")]);
}

#[test]
fn an_admin_adds_a_member_with_a_role_they_hold() {
    Given::with(())
        .given(acme())
        .when(TenantCommand::AddMember {
            user_id: NEWCOMER.into(),
            role: role("operator"),
            by: Authority::Member(ADMIN.into()),
            now: now(),
            plan_seats: None,
        })
        .then_expect_events(vec![added(NEWCOMER, "operator")]);
}

#[test]
fn adding_someone_twice_is_already_member() {
    Given::with(())
        .given(acme())
        .when(TenantCommand::AddMember {
            user_id: VIEWER.into(),
            role: role("viewer"),
            by: Authority::Platform,
            now: now(),
            plan_seats: None,
        })
        .then_expect_error(TenantError::AlreadyMember);
}

#[test]
fn only_owners_grant_the_owner_role() {
    Given::with(())
        .given(acme())
        .when(TenantCommand::ChangeMemberRole {
            user_id: VIEWER.into(),
            role: role("owner"),
            by: Authority::Member(ADMIN.into()),
        })
        .then_expect_error(TenantError::OwnerRequired);
}

#[test]
fn only_owners_revoke_the_owner_role() {
    Given::with(())
        .given([acme(), vec![added(OWNER_2, "owner")]].concat())
        .when(TenantCommand::ChangeMemberRole {
            user_id: OWNER_2.into(),
            role: role("viewer"),
            by: Authority::Member(ADMIN.into()),
        })
        .then_expect_error(TenantError::OwnerRequired);
}

#[test]
fn an_owner_promotes_a_member_to_owner() {
    Given::with(())
        .given(acme())
        .when(TenantCommand::ChangeMemberRole {
            user_id: ADMIN.into(),
            role: role("owner"),
            by: Authority::Member(OWNER.into()),
        })
        .then_expect_events(vec![TenantEvent::MemberRoleChanged {
            user_id: ADMIN,
            role: role("owner"),
            previous_role: role("admin"),
        }]);
}

#[test]
fn demoting_the_last_owner_is_refused() {
    Given::with(())
        .given(acme())
        .when(TenantCommand::ChangeMemberRole {
            user_id: OWNER.into(),
            role: role("admin"),
            by: Authority::Member(OWNER.into()),
        })
        .then_expect_error(TenantError::LastOwner);
}

#[test]
fn removing_the_last_owner_is_refused_even_for_the_platform() {
    Given::with(())
        .given(acme())
        .when(TenantCommand::RemoveMember {
            user_id: OWNER.into(),
            by: Authority::Platform,
        })
        .then_expect_error(TenantError::LastOwner);
}

#[test]
fn the_last_owner_cannot_leave() {
    Given::with(())
        .given(acme())
        .when(TenantCommand::RemoveMember {
            user_id: OWNER.into(),
            by: Authority::Member(OWNER.into()),
        })
        .then_expect_error(TenantError::LastOwner);
}

#[test]
fn one_of_two_owners_may_leave() {
    Given::with(())
        .given([acme(), vec![added(OWNER_2, "owner")]].concat())
        .when(TenantCommand::RemoveMember {
            user_id: OWNER_2.into(),
            by: Authority::Member(OWNER_2.into()),
        })
        .then_expect_events(vec![TenantEvent::MemberRemoved {
            user_id: OWNER_2,
            role: role("owner"),
            reason: RemovalReason::Left,
        }]);
}

#[test]
fn a_member_leaves_and_an_admin_removes_a_viewer() {
    Given::with(())
        .given(acme())
        .when(TenantCommand::RemoveMember {
            user_id: VIEWER.into(),
            by: Authority::Member(ADMIN.into()),
        })
        .then_expect_events(vec![TenantEvent::MemberRemoved {
            user_id: VIEWER,
            role: role("viewer"),
            reason: RemovalReason::Removed,
        }]);
}

#[test]
fn a_custom_role_cannot_grant_a_role_above_it() {
    let manager = TenantEvent::RoleDefined {
        name: role("manager"),
        permissions: PermissionSet::of(&[Permission::MembersRead, Permission::MembersManage]),
    };
    Given::with(())
        .given([acme(), vec![manager, added(NEWCOMER, "manager")]].concat())
        .when(TenantCommand::ChangeMemberRole {
            user_id: VIEWER.into(),
            role: role("operator"),
            by: Authority::Member(NEWCOMER.into()),
        })
        .then_expect_error(TenantError::RoleEscalation {
            missing: crate::access::BuiltinRole::Operator
                .permissions()
                .without(Permission::MembersRead),
        });
}

#[test]
fn an_api_key_grants_only_what_it_carries() {
    Given::with(())
        .given(acme())
        .when(TenantCommand::AddMember {
            user_id: NEWCOMER.into(),
            role: role("viewer"),
            by: Authority::ApiKey(PermissionSet::of(&[
                Permission::MembersManage,
                Permission::TenantRead,
            ])),
            now: now(),
            plan_seats: None,
        })
        .then_expect_error(TenantError::RoleEscalation {
            missing: crate::access::BuiltinRole::Viewer
                .permissions()
                .without(Permission::TenantRead),
        });
}

#[test]
fn the_seat_limit_refuses_one_member_too_many() {
    Given::with(())
        .given(vec![
            created(json!({"max_seats": 2})),
            added(OWNER, "owner"),
            added(ADMIN, "admin"),
        ])
        .when(TenantCommand::AddMember {
            user_id: NEWCOMER.into(),
            role: role("viewer"),
            by: Authority::Platform,
            now: now(),
            plan_seats: None,
        })
        .then_expect_error(TenantError::SeatLimitReached { limit: 2 });
}

#[test]
fn unknown_roles_cannot_be_granted() {
    Given::with(())
        .given(acme())
        .when(TenantCommand::AddMember {
            user_id: NEWCOMER.into(),
            role: role("ghost"),
            by: Authority::Platform,
            now: now(),
            plan_seats: None,
        })
        .then_expect_error(TenantError::UnknownRole);
}

#[test]
fn a_custom_role_is_defined_and_granted() {
    Given::with(())
        .given([acme(), vec![support_role()]].concat())
        .when(TenantCommand::AddMember {
            user_id: NEWCOMER.into(),
            role: role("support"),
            by: Authority::Member(ADMIN.into()),
            now: now(),
            plan_seats: None,
        })
        .then_expect_events(vec![added(NEWCOMER, "support")]);
}

#[test]
fn a_role_cannot_take_a_builtin_name_or_carry_llm_keys_use() {
    Given::with(())
        .given(acme())
        .when(TenantCommand::DefineRole {
            name: role("viewer"),
            permissions: PermissionSet::EMPTY,
            by: Authority::Member(OWNER.into()),
        })
        .then_expect_error(TenantError::RoleExists);
    Given::with(())
        .given(acme())
        .when(TenantCommand::DefineRole {
            name: role("runtime"),
            permissions: PermissionSet::of(&[Permission::LlmKeysUse]),
            by: Authority::Platform,
        })
        .then_expect_error(TenantError::NotAssignableToRole);
}

#[test]
fn a_viewer_cannot_define_a_role_holding_more_than_viewing() {
    Given::with(())
        .given(acme())
        .when(TenantCommand::DefineRole {
            name: role("sneaky"),
            permissions: PermissionSet::of(&[Permission::TenantRead, Permission::BillingManage]),
            by: Authority::Member(VIEWER.into()),
        })
        .then_expect_error(TenantError::RoleEscalation {
            missing: PermissionSet::of(&[Permission::BillingManage]),
        });
}

#[test]
fn builtin_roles_cannot_be_changed_or_deleted() {
    Given::with(())
        .given(acme())
        .when(TenantCommand::UpdateRole {
            name: role("admin"),
            permissions: PermissionSet::EMPTY,
            by: Authority::Platform,
        })
        .then_expect_error(TenantError::BuiltinRoleImmutable);
    Given::with(())
        .given(acme())
        .when(TenantCommand::DeleteRole {
            name: role("viewer"),
        })
        .then_expect_error(TenantError::BuiltinRoleImmutable);
}

#[test]
fn a_custom_role_in_use_cannot_be_deleted() {
    Given::with(())
        .given([acme(), vec![support_role(), added(NEWCOMER, "support")]].concat())
        .when(TenantCommand::DeleteRole {
            name: role("support"),
        })
        .then_expect_error(TenantError::RoleInUse { members: 1 });
}

#[test]
fn an_unused_custom_role_is_updated_then_deleted() {
    let permissions = PermissionSet::of(&[Permission::TenantRead]);
    Given::with(())
        .given([acme(), vec![support_role()]].concat())
        .when(TenantCommand::UpdateRole {
            name: role("support"),
            permissions,
            by: Authority::Member(ADMIN.into()),
        })
        .then_expect_events(vec![TenantEvent::RoleUpdated {
            name: role("support"),
            permissions,
            previous_permissions: PermissionSet::of(&[
                Permission::TenantRead,
                Permission::MembersRead,
            ]),
        }]);
    Given::with(())
        .given([acme(), vec![support_role()]].concat())
        .when(TenantCommand::DeleteRole {
            name: role("support"),
        })
        .then_expect_events(vec![TenantEvent::RoleDeleted {
            name: role("support"),
        }]);
}
