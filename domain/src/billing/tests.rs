use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::plan::PlanTerms;
use crate::values::Slug;

type Given = TestFramework<Billing>;

fn terms(trial_days: u32) -> PlanTerms {
    let mut t = crate::plan::tests_support::terms(4900, Some(10));
    t.trial_days = trial_days;
    t
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
        .unwrap()
        .into()
}

fn assign(trial: bool, trial_days: u32) -> BillingCommand {
    BillingCommand::AssignPlan {
        plan_id: Uuid::from_u128(1).into(),
        plan_key: Slug::parse("team").unwrap(),
        version: 1,
        terms: terms(trial_days),
        trial,
        now: now(),
    }
}

#[test]
fn a_trial_ends_after_the_plans_trial_days() {
    Given::with(())
        .given_no_previous_events()
        .when(assign(true, 14))
        .then_expect_events(vec![BillingEvent::PlanAssigned {
            plan_id: Uuid::from_u128(1),
            plan_key: Slug::parse("team").unwrap(),
            version: 1,
            terms: terms(14),
            status: BillingStatus::Trialing,
            trial_ends_at: Some(now() + chrono::Duration::days(14)),
        }]);
    Given::with(())
        .given_no_previous_events()
        .when(assign(true, 0))
        .then_expect_error(BillingError::NoTrial);
}

#[test]
fn assigning_the_plan_a_tenant_holds_changes_nothing() {
    let held = BillingEvent::PlanAssigned {
        plan_id: Uuid::from_u128(1),
        plan_key: Slug::parse("team").unwrap(),
        version: 1,
        terms: terms(14),
        status: BillingStatus::Active,
        trial_ends_at: None,
    };
    Given::with(())
        .given(vec![held])
        .when(assign(false, 14))
        .then_expect_events(vec![]);
}

#[test]
fn a_trial_that_ran_out_ends_once_and_an_active_plan_has_no_trial_to_end() {
    let trialing = BillingEvent::PlanAssigned {
        plan_id: Uuid::from_u128(1),
        plan_key: Slug::parse("team").unwrap(),
        version: 1,
        terms: terms(14),
        status: BillingStatus::Trialing,
        trial_ends_at: Some(now() + chrono::Duration::days(14)),
    };
    Given::with(())
        .given(vec![trialing.clone()])
        .when(BillingCommand::EndTrial {
            now: now() + chrono::Duration::days(13),
        })
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![trialing.clone()])
        .when(BillingCommand::EndTrial {
            now: now() + chrono::Duration::days(14),
        })
        .then_expect_events(vec![BillingEvent::TrialEnded {}]);
    Given::with(())
        .given(vec![trialing, BillingEvent::TrialEnded {}])
        .when(BillingCommand::EndTrial {
            now: now() + chrono::Duration::days(20),
        })
        .then_expect_events(vec![]);
    let end = now() + chrono::Duration::days(14);
    let grace = chrono::Duration::days(7);
    let allows =
        |status, trial, failed, at| Billing::allows_changes(status, trial, failed, grace, at);
    assert!(allows(BillingStatus::Trialing, Some(end), None, now()));
    assert!(!allows(BillingStatus::Trialing, Some(end), None, end));
    assert!(!allows(BillingStatus::Unpaid, None, None, now()));
    // A failed payment: changes go on through the grace period, not after.
    let failed = Some(now());
    assert!(allows(
        BillingStatus::PastDue,
        None,
        failed,
        now() + chrono::Duration::days(6)
    ));
    assert!(!allows(
        BillingStatus::PastDue,
        None,
        failed,
        now() + chrono::Duration::days(7)
    ));
}

fn synced(event: &str, status: BillingStatus, minute: i64) -> BillingCommand {
    BillingCommand::SyncSubscription {
        stripe_event_id: event.into(),
        subscription_id: "sub_1".into(),
        status,
        cancel_at_period_end: false,
        current_period_end: None,
        observed_at: now() + chrono::Duration::minutes(minute),
    }
}

#[test]
fn an_older_stripe_event_never_moves_the_subscription_back() {
    let canceled = BillingEvent::SubscriptionSynced {
        stripe_event_id: "evt_deleted".into(),
        subscription_id: "sub_1".into(),
        status: BillingStatus::Canceled,
        cancel_at_period_end: false,
        current_period_end: None,
        observed_at: now() + chrono::Duration::minutes(5),
    };
    // `deleted` arrived first; the older `created` changes nothing.
    Given::with(())
        .given(vec![canceled.clone()])
        .when(synced("evt_created", BillingStatus::Active, 1))
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![canceled])
        .when(synced("evt_later", BillingStatus::Active, 9))
        .then_expect_events(vec![BillingEvent::SubscriptionSynced {
            stripe_event_id: "evt_later".into(),
            subscription_id: "sub_1".into(),
            status: BillingStatus::Active,
            cancel_at_period_end: false,
            current_period_end: None,
            observed_at: now() + chrono::Duration::minutes(9),
        }]);
}
