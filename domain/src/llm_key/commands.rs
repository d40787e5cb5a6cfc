use crate::values::Label;
use crate::{LlmKeyId, TenantId};
use uuid::Uuid;

use super::Provider;

#[derive(Debug, Clone, PartialEq)]
pub enum LlmKeyCommand {
    Add {
        key_id: LlmKeyId,
        tenant_id: TenantId,
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
