use crate::claims::{ClaimChange, ClaimScope, UniqueClaims};
use crate::values::Label;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Provider;

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
