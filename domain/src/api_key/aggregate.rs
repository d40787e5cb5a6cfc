use super::{ApiKeyCommand, ApiKeyError, ApiKeyEvent};
use crate::access::{Permission, PermissionSet};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: Option<Uuid>,
    pub permissions: PermissionSet,
    pub revoked: bool,
}

/// What a creator holding `held` may put on a key.
pub fn assignable_by(held: PermissionSet) -> PermissionSet {
    if held.contains(Permission::LlmKeysManage) {
        held.with(Permission::LlmKeysUse)
    } else {
        held
    }
}

impl ApiKey {
    /// In its tenant's chain.
    fn chain_of(&self, _id: crate::ApiKeyId, _actor: &crate::Actor) -> Option<uuid::Uuid> {
        None
    }

    fn decide(&self, command: ApiKeyCommand) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
        match command {
            ApiKeyCommand::Create {
                key_id,
                name,
                prefix,
                permissions,
                expires_at,
                creator_holds,
                now,
            } => {
                if self.id.is_some() {
                    return Err(ApiKeyError::AlreadyExists);
                }
                if permissions.is_empty() {
                    return Err(ApiKeyError::NoPermissions);
                }
                let missing = permissions.minus(assignable_by(creator_holds));
                if !missing.is_empty() {
                    return Err(ApiKeyError::Escalation { missing });
                }
                if expires_at.is_some_and(|at| at <= now) {
                    return Err(ApiKeyError::ExpiryInPast);
                }
                Ok(vec![ApiKeyEvent::ApiKeyCreated {
                    key_id: key_id.as_uuid(),
                    name,
                    prefix,
                    permissions,
                    expires_at,
                }])
            }
            ApiKeyCommand::Revoke => {
                if self.id.is_none() || self.revoked {
                    return Err(ApiKeyError::NotFound);
                }
                Ok(vec![ApiKeyEvent::ApiKeyRevoked {}])
            }
        }
    }
}

crate::aggregate!(
    ApiKey,
    "api_key",
    crate::ApiKeyId,
    ApiKeyCommand,
    ApiKeyEvent,
    ApiKeyError
);

impl ApiKey {
    /// Fold one event into the state (the aggregate's `apply`).
    fn evolve(&mut self, event: ApiKeyEvent) {
        match event {
            ApiKeyEvent::ApiKeyCreated {
                key_id,
                permissions,
                ..
            } => {
                self.id = Some(key_id);
                self.permissions = permissions;
            }
            ApiKeyEvent::ApiKeyRevoked {} => self.revoked = true,
        }
    }
}
