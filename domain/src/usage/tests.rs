use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

type Given = TestFramework<UsageBatch>;

fn record(id: &str) -> UsageRecord {
    UsageRecord {
        id: id.into(),
        agent_id: Uuid::from_u128(3),
        provider: "openai".into(),
        model: "gpt-4o".into(),
        input_tokens: 1000,
        output_tokens: 500,
        cached_input_tokens: 0,
        requests: 1,
        occurred_at: chrono::DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .into(),
        reservation_id: None,
        attributes: None,
        cost_micros: 7_500,
        price_version: 0,
        unpriced: false,
    }
}

#[test]
fn a_batch_is_recorded_once_and_holds_1_to_1000_records() {
    let command = |records| UsageBatchCommand::Record {
        tenant_id: Uuid::from_u128(1),
        records,
    };
    let recorded = UsageEvent::UsageRecorded {
        tenant_id: Uuid::from_u128(1),
        records: vec![record("r1")],
    };
    Given::with(())
        .given_no_previous_events()
        .when(command(vec![record("r1")]))
        .then_expect_events(vec![recorded.clone()]);
    Given::with(())
        .given(vec![recorded])
        .when(command(vec![record("r2")]))
        .then_expect_error(UsageBatchError::AlreadyRecorded);
    Given::with(())
        .given_no_previous_events()
        .when(command(vec![]))
        .then_expect_error(UsageBatchError::Size);
    let many = (0..1001).map(|i| record(&format!("r{i}"))).collect();
    Given::with(())
        .given_no_previous_events()
        .when(command(many))
        .then_expect_error(UsageBatchError::Size);
}
