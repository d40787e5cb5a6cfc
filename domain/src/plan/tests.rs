use std::collections::BTreeSet;

use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::values::{Label, Slug};

type Given = TestFramework<Plan>;

pub(crate) fn terms(price_minor: i64, max_seats: Option<u32>) -> PlanTerms {
    PlanTerms {
        price_minor,
        currency: "usd".into(),
        interval: Interval::Month,
        trial_days: 14,
        entitlements: Entitlements {
            max_seats,
            max_agents: Some(5),
            monthly_credit_minor: 10_000,
            rate_tier: "standard".into(),
            features: BTreeSet::from([Feature::Approvals]),
        },
        stripe_price: None,
    }
}

fn created() -> PlanEvent {
    PlanEvent::PlanCreated {
        plan_id: Uuid::from_u128(1),
        key: Slug::parse("team").unwrap(),
        name: Label::parse("Team").unwrap(),
        terms: terms(4900, Some(10)),
    }
}

#[test]
fn a_plan_starts_at_version_one_and_claims_its_key() {
    use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
    Given::with(())
        .given_no_previous_events()
        .when(PlanCommand::Create {
            plan_id: Uuid::from_u128(1).into(),
            key: Slug::parse("team").unwrap(),
            name: Label::parse("Team").unwrap(),
            terms: terms(4900, Some(10)),
        })
        .then_expect_events(vec![created()]);
    assert_eq!(
        created().claim_changes(),
        vec![ClaimChange::Claim {
            scope: ClaimScope::PlanKey,
            value: "team".into()
        }]
    );
}

#[test]
fn new_terms_publish_the_next_version_and_the_same_terms_nothing() {
    Given::with(())
        .given(vec![created()])
        .when(PlanCommand::PublishVersion {
            terms: terms(5900, Some(10)),
        })
        .then_expect_events(vec![PlanEvent::PlanVersionPublished {
            version: 2,
            terms: terms(5900, Some(10)),
        }]);
    Given::with(())
        .given(vec![created()])
        .when(PlanCommand::PublishVersion {
            terms: terms(4900, Some(10)),
        })
        .then_expect_events(vec![]);
}

#[test]
fn terms_are_checked_and_a_retired_plan_takes_no_new_version() {
    let mut bad = terms(4900, Some(0));
    Given::with(())
        .given(vec![created()])
        .when(PlanCommand::PublishVersion { terms: bad.clone() })
        .then_expect_error_message("entitlements: a limit is at least 1, or absent for none");
    bad = terms(-1, None);
    Given::with(())
        .given(vec![created()])
        .when(PlanCommand::PublishVersion { terms: bad })
        .then_expect_error(PlanError::InvalidTerms {
            field: "price_minor",
            code: "invalid_price",
            message: "the price must be 0 or more".into(),
        });
    Given::with(())
        .given(vec![created(), PlanEvent::PlanRetired {}])
        .when(PlanCommand::PublishVersion {
            terms: terms(1, None),
        })
        .then_expect_error(PlanError::Retired);
}

#[test]
fn a_versions_stripe_price_names_its_plan_and_version_and_nothing_else_parses() {
    assert_eq!(stripe_price_id("team-pro", 3), "tenantry_team-pro_v3");
    assert_eq!(
        parse_stripe_price_id("tenantry_team-pro_v3"),
        Some(("team-pro", 3))
    );
    for other in [
        "price_123",
        "tenantry__v1",
        "tenantry_team_v0",
        "tenantry_team_vx",
        "team_v1",
    ] {
        assert_eq!(parse_stripe_price_id(other), None, "{other}");
    }
}

#[test]
fn a_configured_stripe_price_is_an_id_and_not_one_of_tenantrys_names() {
    let with = |price: &str| {
        let mut t = terms(4900, None);
        t.stripe_price = Some(price.to_string());
        t.validate().map_err(|(field, e)| (field, e.code))
    };
    assert_eq!(with("price_1PqRsTuVwXyZ"), Ok(()));
    for bad in ["pr", "price 1", "price_\u{0}", "tenantry_team_v2"] {
        assert_eq!(
            with(bad),
            Err(("stripe_price", "invalid_stripe_price")),
            "{bad}"
        );
    }
}
