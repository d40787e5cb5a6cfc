use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;

type Given = TestFramework<LlmKey>;

fn added() -> LlmKeyEvent {
    LlmKeyEvent::LlmKeyAdded {
        key_id: Uuid::from_u128(1),
        tenant_id: Uuid::from_u128(2),
        provider: Provider::Openai,
        label: None,
        key_hint: "…abcd".into(),
        data_key_id: Uuid::from_u128(3),
        ciphertext: "AQ==".into(),
    }
}

#[test]
fn provider_shapes_are_checked_without_repeating_the_key() {
    assert!(Provider::Openai
        .check_key("sk-proj-abcdefghijklmnopqrstuvwxyz")
        .is_ok());
    assert!(Provider::Openai
        .check_key("sk-ant-abcdefghijklmnopqrstuvwxyz")
        .is_err());
    assert!(Provider::Anthropic
        .check_key("sk-ant-api03-abcdefghijklmnopqrstu")
        .is_ok());
    assert!(Provider::Google
        .check_key("AIzaSyA1234567890abcdefghijklmnopqrstuv")
        .is_ok());
    assert!(Provider::AzureOpenai.check_key(&"0f".repeat(16)).is_ok());
    assert!(Provider::Groq
        .check_key("gsk_abcdefghijklmnopqrstuvwxyz")
        .is_ok());
    let err = Provider::Openai
        .check_key("not-a-key-secretvalue")
        .unwrap_err();
    assert_eq!(err.code, "malformed_api_key");
    assert!(err.message.contains("starts with sk-"));
    assert!(!err.message.contains("secretvalue"));
    let long = format!("sk-{}", "a".repeat(MAX_KEY_BYTES));
    assert_eq!(
        Provider::Openai.check_key(&long).unwrap_err().code,
        "api_key_too_long"
    );
    assert!(Provider::Mistral.check_key("has a space in it!!").is_err());
}

#[test]
fn unknown_providers_name_the_supported_ones() {
    let err = Provider::parse("openia").unwrap_err();
    assert!(err
        .message
        .contains("openai, anthropic, google, azure_openai"));
    assert_eq!(Provider::parse("twilio"), Ok(Provider::Twilio));
}

#[test]
fn a_hint_is_the_last_four_characters() {
    assert_eq!(key_hint("sk-abcdef1234"), "…1234");
    assert_eq!(key_hint("ab"), "…ab");
}

#[test]
fn adding_claims_the_provider_and_deleting_releases_it() {
    let claims = added().claim_changes();
    assert_eq!(
        claims,
        vec![ClaimChange::Claim {
            scope: ClaimScope::TenantProvider,
            value: format!("{}:openai", Uuid::from_u128(2)),
        }]
    );
    Given::with(())
        .given(vec![added()])
        .when(LlmKeyCommand::Delete)
        .then_expect_events(vec![LlmKeyEvent::LlmKeyDeleted {
            tenant_id: Uuid::from_u128(2),
            provider: Provider::Openai,
            data_key_id: Uuid::from_u128(3),
        }]);
}

#[test]
fn replacing_names_the_data_key_it_destroys() {
    Given::with(())
        .given(vec![added()])
        .when(LlmKeyCommand::Replace {
            key_hint: "…wxyz".into(),
            data_key_id: Uuid::from_u128(4),
            ciphertext: "Ag==".into(),
        })
        .then_expect_events(vec![LlmKeyEvent::LlmKeyReplaced {
            key_hint: "…wxyz".into(),
            data_key_id: Uuid::from_u128(4),
            ciphertext: "Ag==".into(),
            previous_data_key_id: Uuid::from_u128(3),
        }]);
}

#[test]
fn a_deleted_key_is_gone_for_every_command() {
    let deleted = LlmKeyEvent::LlmKeyDeleted {
        tenant_id: Uuid::from_u128(2),
        provider: Provider::Openai,
        data_key_id: Uuid::from_u128(3),
    };
    Given::with(())
        .given(vec![added(), deleted.clone()])
        .when(LlmKeyCommand::Delete)
        .then_expect_error(LlmKeyError::NotFound);
    Given::with(())
        .given(vec![added(), deleted])
        .when(LlmKeyCommand::Replace {
            key_hint: "…wxyz".into(),
            data_key_id: Uuid::from_u128(4),
            ciphertext: "Ag==".into(),
        })
        .then_expect_error(LlmKeyError::NotFound);
}
