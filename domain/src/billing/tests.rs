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

fn state(status: BillingStatus, plan: Option<SubscribedPlan>) -> SubscriptionState {
    SubscriptionState {
        subscription_id: "sub_1".into(),
        status,
        cancel_at_period_end: false,
        current_period_end: None,
        customer_id: Some("cus_1".into()),
        plan,
    }
}

fn synced(event: &str, status: BillingStatus, minute: i64) -> BillingCommand {
    BillingCommand::SyncSubscription {
        stripe_event_id: Some(event.into()),
        fetched: false,
        state: state(status, None),
        observed_at: now() + chrono::Duration::minutes(minute),
    }
}

fn synced_event(
    event: Option<&str>,
    fetched: bool,
    status: BillingStatus,
    minute: i64,
) -> BillingEvent {
    BillingEvent::SubscriptionSynced {
        stripe_event_id: event.map(str::to_string),
        fetched,
        subscription_id: "sub_1".into(),
        status,
        cancel_at_period_end: false,
        current_period_end: None,
        customer_id: Some("cus_1".into()),
        plan: None,
        observed_at: now() + chrono::Duration::minutes(minute),
    }
}

#[test]
fn an_older_stripe_event_never_moves_the_subscription_back() {
    let canceled = synced_event(Some("evt_deleted"), false, BillingStatus::Canceled, 5);
    // `deleted` arrived first; the older `created` changes nothing.
    Given::with(())
        .given(vec![canceled.clone()])
        .when(synced("evt_created", BillingStatus::Active, 1))
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![canceled])
        .when(synced("evt_later", BillingStatus::Active, 9))
        .then_expect_events(vec![synced_event(
            Some("evt_later"),
            false,
            BillingStatus::Active,
            9,
        )]);
}

fn invoice(status: &str) -> Invoice {
    Invoice {
        id: "in_1".into(),
        number: Some("T-0001".into()),
        status: status.into(),
        currency: "eur".into(),
        amount_due: 4900,
        amount_paid: 0,
        hosted_invoice_url: None,
        invoice_pdf: None,
        period_start: None,
        period_end: None,
    }
}

#[test]
fn an_invoice_event_syncs_its_subscription_as_fetched_in_the_same_step() {
    let command = BillingCommand::RecordInvoice {
        stripe_event_id: Some("evt_failed".into()),
        invoice: invoice("open"),
        observed_at: now() + chrono::Duration::minutes(2),
        subscription: Some((
            state(BillingStatus::PastDue, None),
            now() + chrono::Duration::minutes(3),
        )),
    };
    let events = vec![
        BillingEvent::InvoiceRecorded {
            stripe_event_id: Some("evt_failed".into()),
            invoice: invoice("open"),
            observed_at: now() + chrono::Duration::minutes(2),
        },
        synced_event(Some("evt_failed"), true, BillingStatus::PastDue, 3),
    ];
    // Each claims a value of its own: a replay of the event is refused by
    // either, and the two never collide.
    use crate::claims::{ClaimChange, UniqueClaims};
    let claimed: Vec<String> = events
        .iter()
        .flat_map(|e| e.claim_changes())
        .map(|c| match c {
            ClaimChange::Claim { value, .. } => value,
            other => panic!("not a claim: {other:?}"),
        })
        .collect();
    assert_eq!(claimed, ["evt_failed", "evt_failed:subscription"]);
    Given::with(())
        .given_no_previous_events()
        .when(command.clone())
        .then_expect_events(events);
    // A subscription state newer than the fetch stays.
    Given::with(())
        .given(vec![synced_event(
            Some("evt_x"),
            false,
            BillingStatus::Active,
            4,
        )])
        .when(command)
        .then_expect_events(vec![BillingEvent::InvoiceRecorded {
            stripe_event_id: Some("evt_failed".into()),
            invoice: invoice("open"),
            observed_at: now() + chrono::Duration::minutes(2),
        }]);
}

#[test]
fn a_subscription_to_another_plan_version_moves_the_tenant_to_it_once() {
    let team_v2 = SubscribedPlan {
        plan_id: Uuid::from_u128(1),
        plan_key: Slug::parse("team").unwrap(),
        version: 2,
        terms: terms(0),
    };
    let held = BillingEvent::PlanAssigned {
        plan_id: Uuid::from_u128(1),
        plan_key: Slug::parse("team").unwrap(),
        version: 1,
        terms: terms(14),
        status: BillingStatus::Active,
        trial_ends_at: None,
    };
    let command = |minute| BillingCommand::SyncSubscription {
        stripe_event_id: None,
        fetched: true,
        state: state(BillingStatus::Active, Some(team_v2.clone())),
        observed_at: now() + chrono::Duration::minutes(minute),
    };
    let mut moved = synced_event(None, true, BillingStatus::Active, 1);
    if let BillingEvent::SubscriptionSynced { plan, .. } = &mut moved {
        *plan = Some(team_v2.clone());
    }
    Given::with(())
        .given(vec![held.clone()])
        .when(command(1))
        .then_expect_events(vec![moved.clone()]);
    // Already on it: the sync names no plan.
    Given::with(())
        .given(vec![held, moved])
        .when(command(2))
        .then_expect_events(vec![synced_event(None, true, BillingStatus::Active, 2)]);
}

#[test]
fn a_customer_is_linked_once() {
    let link = |event: Option<&str>| BillingCommand::LinkCustomer {
        customer_id: "cus_1".into(),
        stripe_event_id: event.map(str::to_string),
    };
    Given::with(())
        .given_no_previous_events()
        .when(link(None))
        .then_expect_events(vec![BillingEvent::StripeCustomerLinked {
            customer_id: "cus_1".into(),
            stripe_event_id: None,
        }]);
    Given::with(())
        .given(vec![BillingEvent::StripeCustomerLinked {
            customer_id: "cus_1".into(),
            stripe_event_id: None,
        }])
        .when(link(Some("evt_checkout")))
        .then_expect_events(vec![]);
}
