use crate::access::PermissionSet;
use crate::values::Label;
use crate::ApiKeyId;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub enum ApiKeyCommand {
    Create {
        key_id: ApiKeyId,
        name: Label,
        /// The first characters of the secret, shown in lists to tell keys apart.
        prefix: String,
        permissions: PermissionSet,
        expires_at: Option<DateTime<Utc>>,
        /// What the creator holds in the tenant: the key may carry no more,
        /// except `llm_keys.use` for a creator holding `llm_keys.manage`.
        creator_holds: PermissionSet,
        now: DateTime<Utc>,
    },
    Revoke,
}
