//! Invitations' lifecycle, given/when/then.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::test::TestFramework;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::access::RoleName;
use crate::values::{EmailHash, Sealed, Slug, TenantName, TenantSettings};

type Given = TestFramework<Tenant>;

const OWNER: Uuid = Uuid::from_u128(1);
const VIEWER: Uuid = Uuid::from_u128(2);
const INVITE: Uuid = Uuid::from_u128(10);
const NEWCOMER: Uuid = Uuid::from_u128(11);

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn expiry() -> DateTime<Utc> {
    now() + Duration::days(7)
}

fn role(name: &str) -> RoleName {
    RoleName::parse(name).unwrap()
}

/// The invitee's address, sealed (a new ciphertext each time it is sealed).
fn email(nonce: u8) -> Sealed {
    Sealed::parse(&format!(
        "pd1:{}:bmV3QGFjbWUuaW8{nonce}",
        Uuid::from_u128(99)
    ))
    .unwrap()
}

fn email_hash() -> EmailHash {
    EmailHash::parse(&"e".repeat(64)).unwrap()
}

fn acme(settings: serde_json::Value) -> Vec<TenantEvent> {
    vec![
        TenantEvent::TenantCreated {
            tenant_id: Uuid::from_u128(7),
            name: TenantName::parse("Acme").unwrap(),
            slug: Slug::parse("acme").unwrap(),
            settings: TenantSettings::parse(settings).unwrap(),
        },
        TenantEvent::MemberAdded {
            user_id: OWNER,
            role: role("owner"),
        },
        TenantEvent::MemberAdded {
            user_id: VIEWER,
            role: role("viewer"),
        },
    ]
}

fn created() -> TenantEvent {
    TenantEvent::InvitationCreated {
        invitation_id: INVITE,
        email: email(1),
        email_hash: email_hash(),
        role: role("operator"),
        invited_by: Some(OWNER),
        expires_at: expiry(),
    }
}

fn invite(by: Authority, role_name: &str, existing_user: Option<Uuid>) -> TenantCommand {
    TenantCommand::Invite {
        invitation_id: INVITE.into(),
        email: email(1),
        email_hash: email_hash(),
        role: role(role_name),
        by,
        invited_by: Some(OWNER.into()),
        existing_user: existing_user.map(Into::into),
        expires_at: expiry(),
        now: now(),
        plan_seats: None,
    }
}

fn with_invitation() -> Vec<TenantEvent> {
    [acme(json!({})), vec![created()]].concat()
}

#[test]
fn an_owner_invites_an_email_to_a_role() {
    Given::with(())
        .given(acme(json!({})))
        .when(invite(Authority::Member(OWNER.into()), "operator", None))
        .then_expect_events(vec![created()]);
}

#[test]
fn a_member_cannot_be_invited() {
    Given::with(())
        .given(acme(json!({})))
        .when(invite(
            Authority::Member(OWNER.into()),
            "operator",
            Some(VIEWER),
        ))
        .then_expect_error(TenantError::AlreadyMember);
}

#[test]
fn a_second_pending_invitation_for_the_same_email_is_refused() {
    let mut again = invite(Authority::Member(OWNER.into()), "viewer", None);
    if let TenantCommand::Invite {
        invitation_id,
        email: sealed,
        ..
    } = &mut again
    {
        *invitation_id = Uuid::from_u128(12).into();
        // The same address sealed again: another ciphertext, the same hash.
        *sealed = email(2);
    }
    Given::with(())
        .given(with_invitation())
        .when(again)
        .then_expect_error(TenantError::InvitationPending);
}

#[test]
fn an_inviter_cannot_invite_above_their_permissions() {
    Given::with(())
        .given(acme(json!({})))
        .when(invite(
            Authority::ApiKey(crate::access::PermissionSet::of(&[
                crate::access::Permission::InvitationsManage,
            ])),
            "viewer",
            None,
        ))
        .then_expect_error(TenantError::RoleEscalation {
            missing: crate::access::BuiltinRole::Viewer.permissions(),
        });
}

#[test]
fn pending_invitations_hold_seats() {
    Given::with(())
        .given([acme(json!({"max_seats": 3})), vec![created()]].concat())
        .when(TenantCommand::AddMember {
            user_id: NEWCOMER.into(),
            role: role("viewer"),
            by: Authority::Platform,
            now: now(),
            plan_seats: None,
        })
        .then_expect_error(TenantError::SeatLimitReached { limit: 3 });
}

#[test]
fn the_plan_limits_seats_unless_a_platform_admin_set_them() {
    // No setting: the plan's three seats are taken (two members, one invitation).
    Given::with(())
        .given([acme(json!({})), vec![created()]].concat())
        .when(TenantCommand::AddMember {
            user_id: NEWCOMER.into(),
            role: role("viewer"),
            by: Authority::Platform,
            now: now(),
            plan_seats: Some(3),
        })
        .then_expect_error(TenantError::SeatLimitReached { limit: 3 });
    // A platform admin's setting overrides the plan.
    Given::with(())
        .given([acme(json!({"max_seats": 4})), vec![created()]].concat())
        .when(TenantCommand::AddMember {
            user_id: NEWCOMER.into(),
            role: role("viewer"),
            by: Authority::Platform,
            now: now(),
            plan_seats: Some(3),
        })
        .then_expect_events(vec![TenantEvent::MemberAdded {
            user_id: NEWCOMER,
            role: role("viewer"),
        }]);
}

#[test]
fn an_expired_invitation_frees_its_seat() {
    Given::with(())
        .given([acme(json!({"max_seats": 3})), vec![created()]].concat())
        .when(TenantCommand::AddMember {
            user_id: NEWCOMER.into(),
            role: role("viewer"),
            by: Authority::Platform,
            now: expiry(),
            plan_seats: None,
        })
        .then_expect_events(vec![TenantEvent::MemberAdded {
            user_id: NEWCOMER,
            role: role("viewer"),
        }]);
}

#[test]
fn accepting_seats_the_invitee_in_the_same_commit() {
    Given::with(())
        .given(with_invitation())
        .when(TenantCommand::AcceptInvitation {
            invitation_id: INVITE.into(),
            user_id: NEWCOMER.into(),
            now: now(),
        })
        .then_expect_events(vec![
            TenantEvent::InvitationAccepted {
                invitation_id: INVITE,
                user_id: NEWCOMER,
            },
            TenantEvent::MemberAdded {
                user_id: NEWCOMER,
                role: role("operator"),
            },
        ]);
}

#[test]
fn an_invitation_is_used_once() {
    Given::with(())
        .given(
            [
                with_invitation(),
                vec![TenantEvent::InvitationAccepted {
                    invitation_id: INVITE,
                    user_id: NEWCOMER,
                }],
            ]
            .concat(),
        )
        .when(TenantCommand::AcceptInvitation {
            invitation_id: INVITE.into(),
            user_id: Uuid::from_u128(99).into(),
            now: now(),
        })
        .then_expect_error(TenantError::InvitationUsed);
}

#[test]
fn a_pending_invitation_past_its_expiry_is_expired_at_once() {
    Given::with(())
        .given(with_invitation())
        .when(TenantCommand::AcceptInvitation {
            invitation_id: INVITE.into(),
            user_id: NEWCOMER.into(),
            now: expiry(),
        })
        .then_expect_error(TenantError::InvitationExpired);
}

#[test]
fn a_revoked_invitation_cannot_be_accepted_or_revoked_again() {
    let revoked = [
        with_invitation(),
        vec![TenantEvent::InvitationRevoked {
            invitation_id: INVITE,
        }],
    ]
    .concat();
    Given::with(())
        .given(revoked.clone())
        .when(TenantCommand::AcceptInvitation {
            invitation_id: INVITE.into(),
            user_id: NEWCOMER.into(),
            now: now(),
        })
        .then_expect_error(TenantError::InvitationRevoked);
    Given::with(())
        .given(revoked)
        .when(TenantCommand::RevokeInvitation {
            invitation_id: INVITE.into(),
            now: now(),
        })
        .then_expect_error(TenantError::InvitationNotPending);
}

#[test]
fn resending_moves_to_the_next_token_and_a_new_expiry() {
    let later = expiry() + Duration::days(1);
    Given::with(())
        .given(with_invitation())
        .when(TenantCommand::ResendInvitation {
            invitation_id: INVITE.into(),
            token_version: 2,
            expires_at: later,
            now: now() + Duration::days(1),
        })
        .then_expect_events(vec![TenantEvent::InvitationResent {
            invitation_id: INVITE,
            token_version: 2,
            expires_at: later,
        }]);
}

#[test]
fn an_expired_invitation_cannot_be_resent_or_revoked() {
    Given::with(())
        .given(with_invitation())
        .when(TenantCommand::RevokeInvitation {
            invitation_id: INVITE.into(),
            now: expiry(),
        })
        .then_expect_error(TenantError::InvitationNotPending);
}

#[test]
fn the_expiry_job_records_only_what_ran_out() {
    Given::with(())
        .given(with_invitation())
        .when(TenantCommand::ExpireInvitation {
            invitation_id: INVITE.into(),
            now: now(),
        })
        .then_expect_events(vec![]);
    Given::with(())
        .given(with_invitation())
        .when(TenantCommand::ExpireInvitation {
            invitation_id: INVITE.into(),
            now: expiry(),
        })
        .then_expect_events(vec![TenantEvent::InvitationExpired {
            invitation_id: INVITE,
        }]);
}
