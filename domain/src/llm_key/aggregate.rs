use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{LlmKeyCommand, LlmKeyError, LlmKeyEvent, Provider};

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
    /// In its tenant's chain.
    fn chain_of(&self, _id: crate::LlmKeyId, _actor: &crate::Actor) -> Option<uuid::Uuid> {
        None
    }

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
                    key_id: key_id.as_uuid(),
                    tenant_id: tenant_id.as_uuid(),
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

crate::aggregate!(
    LlmKey,
    "llm_key",
    crate::LlmKeyId,
    LlmKeyCommand,
    LlmKeyEvent,
    LlmKeyError
);

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
