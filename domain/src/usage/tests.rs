use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

type Given = TestFramework<Ledger>;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
        .unwrap()
        .into()
}

const TENANT: Uuid = Uuid::from_u128(1);
const AGENT: Uuid = Uuid::from_u128(3);

fn reserve(id: &str, amount: i64, tenant: Option<i64>, agent: Option<i64>) -> LedgerCommand {
    LedgerCommand::Reserve {
        tenant_id: TENANT,
        id: id.into(),
        agent_id: AGENT,
        amount_micros: amount,
        expires_at: now() + Duration::minutes(5),
        limits: Limits { tenant, agent },
        warning_percent: 80,
        now: now(),
    }
}

fn granted(id: &str, amount: i64) -> LedgerEvent {
    LedgerEvent::ReservationGranted {
        id: id.into(),
        hold: Hold {
            agent_id: AGENT,
            amount_micros: amount,
            expires_at: now() + Duration::minutes(5),
        },
    }
}

fn record(id: &str, cost: i64, reservation: Option<&str>) -> UsageRecord {
    UsageRecord {
        id: id.into(),
        agent_id: AGENT,
        provider: "openai".into(),
        model: "gpt-4o".into(),
        input_tokens: 1000,
        output_tokens: 500,
        cached_input_tokens: 0,
        requests: 1,
        occurred_at: now(),
        reservation_id: reservation.map(str::to_string),
        attributes: None,
        cost_micros: cost,
        price_version: 0,
        unpriced: false,
    }
}

#[test]
fn a_reservation_is_granted_within_both_limits_and_refused_beyond_either() {
    Given::with(())
        .given(vec![granted("r1", 600)])
        .when(reserve("r2", 400, Some(1000), None))
        .then_expect_events(vec![
            granted("r2", 400),
            LedgerEvent::BudgetThresholdCrossed {
                scope: BudgetScope::Tenant,
                threshold: Threshold::Warning,
                limit_micros: 1000,
                spent_micros: 0,
                reserved_micros: 1000,
            },
            LedgerEvent::BudgetThresholdCrossed {
                scope: BudgetScope::Tenant,
                threshold: Threshold::Exceeded,
                limit_micros: 1000,
                spent_micros: 0,
                reserved_micros: 1000,
            },
        ]);
    Given::with(())
        .given(vec![granted("r1", 600)])
        .when(reserve("r2", 401, Some(1000), None))
        .then_expect_error(LedgerError::BudgetExceeded {
            scope: BudgetScope::Tenant,
            limit_micros: 1000,
            spent_micros: 0,
            reserved_micros: 600,
        });
    // The agent's limit is asked first.
    Given::with(())
        .given(vec![granted("r1", 600)])
        .when(reserve("r2", 100, Some(10_000), Some(650)))
        .then_expect_error(LedgerError::BudgetExceeded {
            scope: BudgetScope::Agent { agent_id: AGENT },
            limit_micros: 650,
            spent_micros: 0,
            reserved_micros: 600,
        });
}

#[test]
fn the_same_id_is_answered_with_its_hold_and_expired_holds_give_credit_back_first() {
    Given::with(())
        .given(vec![granted("r1", 600)])
        .when(reserve("r1", 600, Some(1000), None))
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![granted("r1", 600)])
        .when(reserve("r1", 700, Some(1000), None))
        .then_expect_error(LedgerError::ReservationMismatch);
    // r0's holder died: its hold expired, so r2 fits.
    let stale = LedgerEvent::ReservationGranted {
        id: "r0".into(),
        hold: Hold {
            agent_id: AGENT,
            amount_micros: 900,
            expires_at: now() - Duration::seconds(1),
        },
    };
    Given::with(())
        .given(vec![stale])
        .when(reserve("r2", 500, Some(1000), None))
        .then_expect_events(vec![
            LedgerEvent::ReservationExpired { id: "r0".into() },
            granted("r2", 500),
        ]);
}

#[test]
fn usage_settles_its_hold_with_the_actual_cost_even_above_it() {
    let mut limits = BTreeMap::new();
    limits.insert(None, 10_000);
    Given::with(())
        .given(vec![granted("r1", 600)])
        .when(LedgerCommand::Record {
            tenant_id: TENANT,
            records: vec![record("u1", 700, Some("r1"))],
            limits,
            warning_percent: 80,
        })
        .then_expect_events(vec![LedgerEvent::UsageRecorded {
            tenant_id: TENANT,
            records: vec![record("u1", 700, Some("r1"))],
            settled: vec!["r1".into()],
        }]);
    let mut ledger = Ledger::default();
    for e in [
        granted("r1", 600),
        LedgerEvent::UsageRecorded {
            tenant_id: TENANT,
            records: vec![record("u1", 700, Some("r1"))],
            settled: vec!["r1".into()],
        },
    ] {
        cqrs_es::Aggregate::apply(&mut ledger, e);
    }
    assert_eq!(ledger.totals(BudgetScope::Tenant), (700, 0));
    assert_eq!(
        ledger.totals(BudgetScope::Agent { agent_id: AGENT }),
        (700, 0)
    );
}

#[test]
fn a_threshold_is_crossed_once_a_month_even_when_a_release_drops_below_it() {
    let warned = LedgerEvent::BudgetThresholdCrossed {
        scope: BudgetScope::Tenant,
        threshold: Threshold::Warning,
        limit_micros: 1000,
        spent_micros: 0,
        reserved_micros: 800,
    };
    Given::with(())
        .given(vec![
            granted("r1", 800),
            warned.clone(),
            LedgerEvent::ReservationReleased { id: "r1".into() },
        ])
        .when(reserve("r2", 850, Some(1000), None))
        .then_expect_events(vec![granted("r2", 850)]);
    // Releasing what is not held changes nothing.
    Given::with(())
        .given(vec![])
        .when(LedgerCommand::Release { id: "nope".into() })
        .then_expect_events(vec![]);
}

#[test]
fn each_month_of_a_tenant_has_its_own_ledger() {
    assert_eq!(month_of(now()), "2026-12");
    assert_ne!(ledger_id(TENANT, "2026-12"), ledger_id(TENANT, "2027-01"));
    assert_ne!(ledger_id(TENANT, "2026-12"), ledger_id(AGENT, "2026-12"));
    assert_eq!(ledger_id(TENANT, "2026-12"), ledger_id(TENANT, "2026-12"));
}
