use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use serde_json::json;
use uuid::Uuid;

use super::*;

type Given = TestFramework<Approval>;

const ASKER: Uuid = Uuid::from_u128(10);
const KEY_MAKER: Uuid = Uuid::from_u128(11);
const ANA: Uuid = Uuid::from_u128(21);
const BEN: Uuid = Uuid::from_u128(22);
const CAL: Uuid = Uuid::from_u128(23);

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0)
        .single()
        .unwrap()
        + Duration::minutes(minute)
}

fn stage(approvals: u32, role: Option<&str>, rejection_ends: bool) -> Stage {
    Stage {
        approvals,
        role: role.map(str::to_string),
        rejection_ends,
    }
}

fn by_key() -> Requester {
    Requester::ApiKey {
        key_id: Uuid::from_u128(99),
        created_by: Some(KEY_MAKER),
    }
}

fn request(stages: Vec<Stage>) -> ApprovalCommand {
    ApprovalCommand::Request {
        approval_id: Uuid::from_u128(1).into(),
        tenant_id: Uuid::from_u128(2).into(),
        action: "payments.refund".into(),
        summary: "Refund order 1042".into(),
        payload: json!({"order": 1042, "amount": 12_000}),
        agent_id: Some(Uuid::from_u128(3)),
        requester: by_key(),
        policy: "refunds".into(),
        stages,
        expires_at: Some(at(60)),
    }
}

fn requested(stages: Vec<Stage>) -> ApprovalEvent {
    ApprovalEvent::ApprovalRequested {
        approval_id: Uuid::from_u128(1),
        tenant_id: Uuid::from_u128(2),
        action: "payments.refund".into(),
        summary: "Refund order 1042".into(),
        payload: json!({"order": 1042, "amount": 12_000}),
        agent_id: Some(Uuid::from_u128(3)),
        requester: by_key(),
        policy: "refunds".into(),
        stages,
        expires_at: Some(at(60)),
    }
}

fn decide(by: Uuid, role: &str, decision: Decision, at_stage: Option<usize>) -> ApprovalCommand {
    ApprovalCommand::Decide {
        by,
        role: role.into(),
        decision,
        comment: None,
        at_stage,
        now: at(5),
    }
}

fn recorded(by: Uuid, stage: usize, decision: Decision, counted: bool) -> ApprovalEvent {
    ApprovalEvent::DecisionRecorded {
        by,
        stage,
        decision,
        comment: None,
        counted,
    }
}

fn two_stages() -> Vec<Stage> {
    vec![stage(2, None, true), stage(1, Some("owner"), true)]
}

#[test]
fn a_request_is_pending_with_its_stages_and_a_retry_changes_nothing() {
    Given::with(())
        .given_no_previous_events()
        .when(request(two_stages()))
        .then_expect_events(vec![requested(two_stages())]);
    Given::with(())
        .given(vec![requested(two_stages())])
        .when(request(two_stages()))
        .then_expect_events(vec![]);
}

#[test]
fn the_same_id_with_other_content_is_refused() {
    let mut other = request(two_stages());
    if let ApprovalCommand::Request { payload, .. } = &mut other {
        *payload = json!({"order": 1043});
    }
    Given::with(())
        .given(vec![requested(two_stages())])
        .when(other)
        .then_expect_error(ApprovalError::IdConflict);
}

#[test]
fn a_request_needs_stages_that_each_need_an_approval() {
    Given::with(())
        .given_no_previous_events()
        .when(request(vec![]))
        .then_expect_error(ApprovalError::NoStages);
    Given::with(())
        .given_no_previous_events()
        .when(request(vec![stage(0, None, true)]))
        .then_expect_error(ApprovalError::NoStages);
}

#[test]
fn a_stage_moves_on_at_its_nth_approval_and_the_last_stage_approves() {
    Given::with(())
        .given(vec![requested(two_stages())])
        .when(decide(ANA, "admin", Decision::Approve, None))
        .then_expect_events(vec![recorded(ANA, 0, Decision::Approve, true)]);
    Given::with(())
        .given(vec![
            requested(two_stages()),
            recorded(ANA, 0, Decision::Approve, true),
        ])
        .when(decide(BEN, "operator", Decision::Approve, None))
        .then_expect_events(vec![
            recorded(BEN, 0, Decision::Approve, true),
            ApprovalEvent::StageAdvanced { stage: 1 },
        ]);
    Given::with(())
        .given(vec![
            requested(two_stages()),
            recorded(ANA, 0, Decision::Approve, true),
            recorded(BEN, 0, Decision::Approve, true),
            ApprovalEvent::StageAdvanced { stage: 1 },
        ])
        .when(decide(CAL, "owner", Decision::Approve, None))
        .then_expect_events(vec![
            recorded(CAL, 1, Decision::Approve, true),
            ApprovalEvent::ApprovalGranted {},
        ]);
}

#[test]
fn a_stage_for_a_role_refuses_other_roles() {
    Given::with(())
        .given(vec![
            requested(two_stages()),
            recorded(ANA, 0, Decision::Approve, true),
            recorded(BEN, 0, Decision::Approve, true),
            ApprovalEvent::StageAdvanced { stage: 1 },
        ])
        .when(decide(CAL, "admin", Decision::Approve, None))
        .then_expect_error(ApprovalError::NotAllowedAtStage);
}

#[test]
fn nobody_decides_their_own_request_nor_one_made_with_their_key() {
    Given::with(())
        .given(vec![requested(two_stages())])
        .when(decide(KEY_MAKER, "owner", Decision::Approve, None))
        .then_expect_error(ApprovalError::SelfDecision);
    let mut by_member = requested(two_stages());
    if let ApprovalEvent::ApprovalRequested { requester, .. } = &mut by_member {
        *requester = Requester::Member { user_id: ASKER };
    }
    Given::with(())
        .given(vec![by_member])
        .when(decide(ASKER, "owner", Decision::Reject, None))
        .then_expect_error(ApprovalError::SelfDecision);
}

#[test]
fn a_member_decides_once_per_request() {
    Given::with(())
        .given(vec![
            requested(two_stages()),
            recorded(ANA, 0, Decision::Approve, true),
        ])
        .when(decide(ANA, "admin", Decision::Approve, None))
        .then_expect_error(ApprovalError::AlreadyDecided);
}

#[test]
fn an_approval_at_a_stage_already_left_is_recorded_late_and_moves_nothing() {
    // Two approvers raced for the second approval of stage 0: Ben's came
    // first and moved the request on; Cal's, made at stage 0, is recorded
    // there and counts toward nothing.
    Given::with(())
        .given(vec![
            requested(two_stages()),
            recorded(ANA, 0, Decision::Approve, true),
            recorded(BEN, 0, Decision::Approve, true),
            ApprovalEvent::StageAdvanced { stage: 1 },
        ])
        .when(decide(CAL, "owner", Decision::Approve, Some(0)))
        .then_expect_events(vec![recorded(CAL, 0, Decision::Approve, false)]);
    Given::with(())
        .given(vec![requested(two_stages())])
        .when(decide(CAL, "owner", Decision::Approve, Some(1)))
        .then_expect_error(ApprovalError::StageNotReached);
}

#[test]
fn a_rejection_ends_the_request_where_its_stage_says_so_and_is_only_recorded_elsewhere() {
    Given::with(())
        .given(vec![requested(two_stages())])
        .when(decide(ANA, "admin", Decision::Reject, None))
        .then_expect_events(vec![
            recorded(ANA, 0, Decision::Reject, true),
            ApprovalEvent::ApprovalRejected { stage: 0 },
        ]);
    let lenient = vec![stage(1, None, false)];
    Given::with(())
        .given(vec![requested(lenient.clone())])
        .when(decide(ANA, "admin", Decision::Reject, None))
        .then_expect_events(vec![recorded(ANA, 0, Decision::Reject, true)]);
    // The stage still waits for its approval.
    Given::with(())
        .given(vec![
            requested(lenient),
            recorded(ANA, 0, Decision::Reject, true),
        ])
        .when(decide(BEN, "admin", Decision::Approve, None))
        .then_expect_events(vec![
            recorded(BEN, 0, Decision::Approve, true),
            ApprovalEvent::ApprovalGranted {},
        ]);
}

#[test]
fn an_ended_request_takes_no_decision() {
    for (end, refusal) in [
        (ApprovalEvent::ApprovalGranted {}, ApprovalError::NotPending),
        (
            ApprovalEvent::ApprovalRejected { stage: 0 },
            ApprovalError::NotPending,
        ),
        (
            ApprovalEvent::ApprovalCanceled { by: by_key() },
            ApprovalError::NotPending,
        ),
        (ApprovalEvent::ApprovalExpired {}, ApprovalError::Expired),
    ] {
        Given::with(())
            .given(vec![requested(two_stages()), end])
            .when(decide(ANA, "admin", Decision::Approve, None))
            .then_expect_error(refusal);
    }
}

#[test]
fn past_its_expiry_a_request_reads_expired_refuses_decisions_and_the_job_records_it() {
    let late = ApprovalCommand::Decide {
        by: ANA,
        role: "admin".into(),
        decision: Decision::Approve,
        comment: None,
        at_stage: None,
        now: at(61),
    };
    Given::with(())
        .given(vec![requested(two_stages())])
        .when(late)
        .then_expect_error(ApprovalError::Expired);
    Given::with(())
        .given(vec![requested(two_stages())])
        .when(ApprovalCommand::Expire { now: at(59) })
        .then_expect_events(vec![]);
    Given::with(())
        .given(vec![requested(two_stages())])
        .when(ApprovalCommand::Expire { now: at(60) })
        .then_expect_events(vec![ApprovalEvent::ApprovalExpired {}]);
    Given::with(())
        .given(vec![
            requested(two_stages()),
            ApprovalEvent::ApprovalGranted {},
        ])
        .when(ApprovalCommand::Expire { now: at(90) })
        .then_expect_events(vec![]);
    let mut state = Approval::default();
    cqrs_es::Aggregate::apply(&mut state, requested(two_stages()));
    assert_eq!(state.status_at(at(59)), ApprovalStatus::Pending);
    assert_eq!(state.status_at(at(60)), ApprovalStatus::Expired);
}

#[test]
fn only_the_requester_cancels_and_only_while_pending() {
    Given::with(())
        .given(vec![requested(two_stages())])
        .when(ApprovalCommand::Cancel {
            by: Requester::Member { user_id: ANA },
            now: at(5),
        })
        .then_expect_error(ApprovalError::NotRequester);
    Given::with(())
        .given(vec![requested(two_stages())])
        .when(ApprovalCommand::Cancel {
            by: by_key(),
            now: at(5),
        })
        .then_expect_events(vec![ApprovalEvent::ApprovalCanceled { by: by_key() }]);
    Given::with(())
        .given(vec![
            requested(two_stages()),
            ApprovalEvent::ApprovalGranted {},
        ])
        .when(ApprovalCommand::Cancel {
            by: by_key(),
            now: at(5),
        })
        .then_expect_error(ApprovalError::NotPending);
}

#[test]
fn comments_need_no_decision_and_an_unknown_request_is_not_found() {
    Given::with(())
        .given(vec![
            requested(two_stages()),
            ApprovalEvent::ApprovalGranted {},
        ])
        .when(ApprovalCommand::Comment {
            by: ANA,
            comment: "refund sent".into(),
        })
        .then_expect_events(vec![ApprovalEvent::CommentAdded {
            by: ANA,
            comment: "refund sent".into(),
        }]);
    Given::with(())
        .given_no_previous_events()
        .when(decide(ANA, "admin", Decision::Approve, None))
        .then_expect_error(ApprovalError::NotFound);
}
