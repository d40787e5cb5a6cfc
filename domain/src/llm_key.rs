//! The LlmKey aggregate: a tenant's own provider key (OpenAI, Anthropic…),
//! and the catalogue of providers with the shapes their keys have.
//!
//! Events carry the provider, label, hint, the data key's id and the sealed
//! secret, never the plaintext. The data key lives outside the log; once it
//! is destroyed the sealed secret in these events cannot be opened again.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
use crate::error::{DomainError, ErrorKind};
use crate::values::{Label, ValueError};

/// The longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 4096;

/// A provider of the catalogue, with the shape of its keys when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Openai,
    Anthropic,
    Google,
    AzureOpenai,
    Mistral,
    Groq,
    Cohere,
    Deepgram,
    Elevenlabs,
    Twilio,
}

impl Provider {
    pub const ALL: [Self; 10] = [
        Self::Openai,
        Self::Anthropic,
        Self::Google,
        Self::AzureOpenai,
        Self::Mistral,
        Self::Groq,
        Self::Cohere,
        Self::Deepgram,
        Self::Elevenlabs,
        Self::Twilio,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::Google => "google",
            Self::AzureOpenai => "azure_openai",
            Self::Mistral => "mistral",
            Self::Groq => "groq",
            Self::Cohere => "cohere",
            Self::Deepgram => "deepgram",
            Self::Elevenlabs => "elevenlabs",
            Self::Twilio => "twilio",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == raw)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
                ValueError::new(
                    "unknown_provider",
                    format!("unknown provider; supported: {}", names.join(", ")),
                )
            })
    }

    /// A human description of the expected key shape.
    pub fn shape(self) -> &'static str {
        match self {
            Self::Openai => "starts with sk-, then 20 or more of A-Z a-z 0-9 _ -",
            Self::Anthropic => "starts with sk-ant-, then 20 or more of A-Z a-z 0-9 _ -",
            Self::Google => "AIza followed by 35 of A-Z a-z 0-9 _ -",
            Self::AzureOpenai => "32 hexadecimal characters",
            Self::Groq => "starts with gsk_, then 20 or more letters and digits",
            Self::Mistral | Self::Cohere | Self::Deepgram | Self::Elevenlabs | Self::Twilio => {
                "16 or more visible characters without spaces"
            }
        }
    }

    fn fits(self, key: &str) -> bool {
        let tail_ok = |prefix: &str, min: usize, extra: &dyn Fn(char) -> bool| {
            key.strip_prefix(prefix).is_some_and(|rest| {
                rest.len() >= min && rest.chars().all(|c| c.is_ascii_alphanumeric() || extra(c))
            })
        };
        let dash_underscore = |c: char| c == '-' || c == '_';
        match self {
            Self::Openai => !key.starts_with("sk-ant-") && tail_ok("sk-", 20, &dash_underscore),
            Self::Anthropic => tail_ok("sk-ant-", 20, &dash_underscore),
            Self::Google => key.len() == 39 && tail_ok("AIza", 35, &dash_underscore),
            Self::AzureOpenai => key.len() == 32 && key.chars().all(|c| c.is_ascii_hexdigit()),
            Self::Groq => tail_ok("gsk_", 20, &|_| false),
            _ => key.len() >= 16 && key.chars().all(|c| c.is_ascii_graphic()),
        }
    }

    /// Check a key's length and shape; the error never repeats the key.
    pub fn check_key(self, key: &str) -> Result<(), ValueError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(ValueError::new(
                "api_key_too_long",
                format!("a provider key is at most {MAX_KEY_BYTES} bytes"),
            ));
        }
        if self.fits(key) {
            Ok(())
        } else {
            Err(ValueError::new(
                "malformed_api_key",
                format!("a {} key {}", self.as_str(), self.shape()),
            ))
        }
    }
}

/// What lists show of a key: "…" and its last 4 characters.
pub fn key_hint(key: &str) -> String {
    let tail: Vec<char> = key.chars().rev().take(4).collect();
    format!("…{}", tail.into_iter().rev().collect::<String>())
}

#[derive(Debug, Clone, PartialEq)]
pub enum LlmKeyCommand {
    Add {
        key_id: Uuid,
        tenant_id: Uuid,
        provider: Provider,
        label: Option<Label>,
        key_hint: String,
        data_key_id: Uuid,
        /// The sealed secret, base64.
        ciphertext: String,
    },
    Replace {
        key_hint: String,
        data_key_id: Uuid,
        ciphertext: String,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum LlmKeyEvent {
    LlmKeyAdded {
        key_id: Uuid,
        tenant_id: Uuid,
        provider: Provider,
        label: Option<Label>,
        key_hint: String,
        data_key_id: Uuid,
        ciphertext: String,
    },
    LlmKeyReplaced {
        key_hint: String,
        data_key_id: Uuid,
        ciphertext: String,
        /// Destroyed in the same transaction.
        previous_data_key_id: Uuid,
    },
    LlmKeyDeleted {
        tenant_id: Uuid,
        provider: Provider,
        /// Destroyed in the same transaction.
        data_key_id: Uuid,
    },
}

crate::stored_event!(LlmKeyEvent);

/// One key per provider per tenant.
fn provider_claim(tenant_id: Uuid, provider: Provider) -> String {
    format!("{tenant_id}:{}", provider.as_str())
}

impl UniqueClaims for LlmKeyEvent {
    fn claim_changes(&self) -> Vec<ClaimChange> {
        match self {
            Self::LlmKeyAdded {
                tenant_id,
                provider,
                ..
            } => vec![ClaimChange::Claim {
                scope: ClaimScope::TenantProvider,
                value: provider_claim(*tenant_id, *provider),
            }],
            Self::LlmKeyDeleted {
                tenant_id,
                provider,
                ..
            } => vec![ClaimChange::Release {
                scope: ClaimScope::TenantProvider,
                value: provider_claim(*tenant_id, *provider),
            }],
            Self::LlmKeyReplaced { .. } => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmKeyError {
    #[error("a provider key with this id already exists")]
    AlreadyExists,
    #[error("provider key not found")]
    NotFound,
}

impl DomainError for LlmKeyError {
    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyExists => "llm_key_already_exists",
            Self::NotFound => "llm_key_not_found",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::AlreadyExists => ErrorKind::Conflict,
            Self::NotFound => ErrorKind::NotFound,
        }
    }
}

/// Decision state, and what resolving a key needs: the current data key
/// and sealed secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmKey {
    pub id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    pub provider: Option<Provider>,
    pub data_key_id: Option<Uuid>,
    pub ciphertext: Option<String>,
    pub deleted: bool,
}

impl LlmKey {
    pub fn is_live(&self) -> bool {
        self.id.is_some() && !self.deleted
    }

    fn decide(&self, command: LlmKeyCommand) -> Result<Vec<LlmKeyEvent>, LlmKeyError> {
        match command {
            LlmKeyCommand::Add {
                key_id,
                tenant_id,
                provider,
                label,
                key_hint,
                data_key_id,
                ciphertext,
            } => {
                if self.id.is_some() {
                    return Err(LlmKeyError::AlreadyExists);
                }
                Ok(vec![LlmKeyEvent::LlmKeyAdded {
                    key_id,
                    tenant_id,
                    provider,
                    label,
                    key_hint,
                    data_key_id,
                    ciphertext,
                }])
            }
            LlmKeyCommand::Replace {
                key_hint,
                data_key_id,
                ciphertext,
            } => match (self.is_live(), self.data_key_id) {
                (true, Some(previous_data_key_id)) => Ok(vec![LlmKeyEvent::LlmKeyReplaced {
                    key_hint,
                    data_key_id,
                    ciphertext,
                    previous_data_key_id,
                }]),
                _ => Err(LlmKeyError::NotFound),
            },
            LlmKeyCommand::Delete => match (
                self.is_live(),
                self.tenant_id,
                self.provider,
                self.data_key_id,
            ) {
                (true, Some(tenant_id), Some(provider), Some(data_key_id)) => {
                    Ok(vec![LlmKeyEvent::LlmKeyDeleted {
                        tenant_id,
                        provider,
                        data_key_id,
                    }])
                }
                _ => Err(LlmKeyError::NotFound),
            },
        }
    }
}

crate::aggregate!(LlmKey, "llm_key", LlmKeyCommand, LlmKeyEvent, LlmKeyError);

impl LlmKey {
    /// Fold one event into the state (the aggregate's `apply`).
    fn evolve(&mut self, event: LlmKeyEvent) {
        match event {
            LlmKeyEvent::LlmKeyAdded {
                key_id,
                tenant_id,
                provider,
                data_key_id,
                ciphertext,
                ..
            } => {
                self.id = Some(key_id);
                self.tenant_id = Some(tenant_id);
                self.provider = Some(provider);
                self.data_key_id = Some(data_key_id);
                self.ciphertext = Some(ciphertext);
            }
            LlmKeyEvent::LlmKeyReplaced {
                data_key_id,
                ciphertext,
                ..
            } => {
                self.data_key_id = Some(data_key_id);
                self.ciphertext = Some(ciphertext);
            }
            LlmKeyEvent::LlmKeyDeleted { .. } => self.deleted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

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
}
