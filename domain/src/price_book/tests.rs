use chrono::{DateTime, Utc};
use cqrs_es::test::TestFramework;

use super::*;

type Given = TestFramework<PriceBook>;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().into()
}

fn list(from: &str, gpt4o_input: i64) -> PriceList {
    PriceList {
        currency: "usd".into(),
        effective_from: at(from),
        prices: vec![ModelPrice {
            provider: "openai".into(),
            model: "gpt-4o".into(),
            input_per_mtok: gpt4o_input,
            output_per_mtok: 10_000_000,
            cached_input_per_mtok: 1_250_000,
            per_request: 0,
        }],
    }
}

#[test]
fn usage_is_costed_at_the_version_in_effect_when_it_occurred() {
    let mut book = PriceBook::default();
    assert_eq!(book.in_effect(at("2026-01-01T00:00:00Z")).0, 0);
    cqrs_es::Aggregate::apply(
        &mut book,
        PriceBookEvent::PriceBookPublished {
            version: 1,
            list: list("2026-06-01T00:00:00Z", 2_000_000),
        },
    );
    cqrs_es::Aggregate::apply(
        &mut book,
        PriceBookEvent::PriceBookPublished {
            version: 2,
            list: list("2026-09-01T00:00:00Z", 3_000_000),
        },
    );
    assert_eq!(book.in_effect(at("2026-05-31T23:59:59Z")).0, 0);
    assert_eq!(book.in_effect(at("2026-07-01T00:00:00Z")).0, 1);
    assert_eq!(book.in_effect(at("2026-12-01T00:00:00Z")).0, 2);
    let (v, l) = book.in_effect(at("2026-07-01T00:00:00Z"));
    // 1,000 input at 2.00/M, 500 output at 10.00/M, 200 cached at 1.25/M.
    let cost = l.cost(v, "openai", "gpt-4o", 1_000, 500, 200, 1);
    assert_eq!(
        cost,
        Cost {
            micros: 2_000 + 5_000 + 250,
            version: 1,
            unpriced: false
        }
    );
    let unknown = l.cost(v, "openai", "gpt-9", 1_000, 1_000, 0, 1);
    assert_eq!(
        unknown,
        Cost {
            micros: 0,
            version: 1,
            unpriced: true
        }
    );
}

#[test]
fn a_provider_wide_price_covers_its_other_models_and_rounding_is_half_up() {
    let mut l = list("2026-01-01T00:00:00Z", 1);
    l.prices.push(ModelPrice {
        provider: "deepgram".into(),
        model: "*".into(),
        input_per_mtok: 0,
        output_per_mtok: 0,
        cached_input_per_mtok: 0,
        per_request: 4_300,
    });
    assert_eq!(l.cost(3, "deepgram", "nova-3", 0, 0, 0, 2).micros, 8_600);
    // 1 token at 1 micro per million is 0.000001 micro: rounds to 0; 500,000 to 1.
    assert_eq!(l.cost(3, "openai", "gpt-4o", 1, 0, 0, 1).micros, 0);
    assert_eq!(l.cost(3, "openai", "gpt-4o", 500_000, 0, 0, 1).micros, 1);
}

#[test]
fn versions_follow_each_other_in_time_and_bad_lists_are_refused() {
    let first = PriceBookEvent::PriceBookPublished {
        version: 1,
        list: list("2026-06-01T00:00:00Z", 2_000_000),
    };
    Given::with(())
        .given(vec![first.clone()])
        .when(PriceBookCommand::Publish {
            list: list("2026-07-01T00:00:00Z", 3_000_000),
        })
        .then_expect_events(vec![PriceBookEvent::PriceBookPublished {
            version: 2,
            list: list("2026-07-01T00:00:00Z", 3_000_000),
        }]);
    Given::with(())
        .given(vec![first])
        .when(PriceBookCommand::Publish {
            list: list("2026-05-01T00:00:00Z", 3_000_000),
        })
        .then_expect_error(PriceBookError::EffectiveTooEarly);
    let mut twice = list("2026-07-01T00:00:00Z", 1);
    twice.prices.push(twice.prices[0].clone());
    assert!(matches!(twice.validate(), Err(PriceBookError::Invalid(_))));
    let mut negative = list("2026-07-01T00:00:00Z", -1);
    negative.currency = "usd".into();
    assert!(matches!(
        negative.validate(),
        Err(PriceBookError::Invalid(_))
    ));
    assert_eq!(default_list().validate(), Ok(()));
}
