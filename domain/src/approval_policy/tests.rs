use cqrs_es::test::TestFramework;

use super::*;
use crate::approval::Stage;

type Given = TestFramework<ApprovalPolicies>;

fn one(approvals: u32, role: Option<&str>) -> Stage {
    Stage {
        approvals,
        role: role.map(str::to_string),
        rejection_ends: true,
    }
}

fn policy(name: &str, actions: &[&str], stages: Vec<Stage>) -> Policy {
    Policy {
        name: name.into(),
        actions: actions
            .iter()
            .map(|a| ActionPattern::parse(a).unwrap())
            .collect(),
        stages,
        expires_in_secs: Some(3600),
    }
}

fn defined(p: Policy) -> PolicyEvent {
    PolicyEvent::ApprovalPolicyDefined { policy: p }
}

fn state(events: Vec<PolicyEvent>) -> ApprovalPolicies {
    let mut s = ApprovalPolicies::default();
    for e in events {
        cqrs_es::Aggregate::apply(&mut s, e);
    }
    s
}

#[test]
fn action_patterns_are_exact_or_a_prefix_ending_in_a_dot() {
    for ok in ["payments.refund", "payments.", "contracts.send-v2", "a"] {
        assert!(ActionPattern::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        ".payments",
        "Payments.refund",
        "pay ments",
        "payments..refund",
        "x*",
    ] {
        assert!(ActionPattern::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_exact_pattern_beats_the_longest_prefix_which_beats_a_shorter_one() {
    let s = state(vec![
        defined(policy("all-payments", &["payments."], vec![one(1, None)])),
        defined(policy("refunds", &["payments.refund."], vec![one(2, None)])),
        defined(policy(
            "big-refund",
            &["payments.refund.large"],
            vec![one(1, Some("owner"))],
        )),
    ]);
    assert_eq!(
        s.covering("payments.refund.large").unwrap().policy,
        "big-refund"
    );
    assert_eq!(
        s.covering("payments.refund.small").unwrap().policy,
        "refunds"
    );
    assert_eq!(
        s.covering("payments.payout").unwrap().policy,
        "all-payments"
    );
    // A prefix covers what is under it, not the bare word before the dot.
    assert_eq!(s.covering("payments").unwrap().policy, "default");
}

#[test]
fn an_uncovered_action_takes_the_default_policy_or_is_refused_as_the_tenant_chooses() {
    let s = state(vec![]);
    let covered = s.covering("contracts.send").unwrap();
    assert_eq!(covered.policy, "default");
    assert_eq!(covered.stages, vec![one(1, None)]);
    let s = state(vec![PolicyEvent::UncoveredActionsSet {
        uncovered: Uncovered::Refuse,
    }]);
    assert_eq!(s.covering("contracts.send"), None);
    Given::with(())
        .given(vec![PolicyEvent::UncoveredActionsSet {
            uncovered: Uncovered::Refuse,
        }])
        .when(PolicyCommand::SetUncovered {
            uncovered: Uncovered::Refuse,
        })
        .then_expect_events(vec![]);
}

#[test]
fn two_policies_never_name_the_same_pattern() {
    Given::with(())
        .given(vec![defined(policy(
            "refunds",
            &["payments.refund"],
            vec![one(1, None)],
        ))])
        .when(PolicyCommand::Define {
            policy: policy(
                "other",
                &["contracts.", "payments.refund"],
                vec![one(1, None)],
            ),
        })
        .then_expect_error(PolicyError::PatternTaken {
            pattern: "payments.refund".into(),
            policy: "refunds".into(),
        });
    // The same policy redefined keeps its own patterns.
    let stricter = policy("refunds", &["payments.refund"], vec![one(2, None)]);
    Given::with(())
        .given(vec![defined(policy(
            "refunds",
            &["payments.refund"],
            vec![one(1, None)],
        ))])
        .when(PolicyCommand::Define {
            policy: stricter.clone(),
        })
        .then_expect_events(vec![defined(stricter)]);
}

#[test]
fn a_policy_needs_actions_and_stages_of_at_least_one_approval() {
    for p in [
        policy("empty", &[], vec![one(1, None)]),
        policy("no-stage", &["a."], vec![]),
        policy("zero", &["a."], vec![one(0, None)]),
    ] {
        Given::with(())
            .given_no_previous_events()
            .when(PolicyCommand::Define { policy: p })
            .then_expect_error(PolicyError::Incomplete);
    }
}

#[test]
fn a_removed_policy_covers_nothing_and_an_unknown_one_is_not_found() {
    let p = policy("refunds", &["payments.refund"], vec![one(2, None)]);
    Given::with(())
        .given(vec![defined(p.clone())])
        .when(PolicyCommand::Remove {
            name: "refunds".into(),
        })
        .then_expect_events(vec![PolicyEvent::ApprovalPolicyRemoved {
            name: "refunds".into(),
        }]);
    let s = state(vec![
        defined(p),
        PolicyEvent::ApprovalPolicyRemoved {
            name: "refunds".into(),
        },
    ]);
    assert_eq!(s.covering("payments.refund").unwrap().policy, "default");
    Given::with(())
        .given_no_previous_events()
        .when(PolicyCommand::Remove {
            name: "refunds".into(),
        })
        .then_expect_error(PolicyError::NotFound);
}
