//! The ApiKey aggregate: a tenant-scoped credential for machines (the agent
//! runtime). Its secret never appears here: the API keeps only the secret's
//! SHA-256 in the `api_keys` table, written in the same transaction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::access::{Permission, PermissionSet};
use crate::claims::UniqueClaims;
use crate::error::{DomainError, ErrorKind};
use crate::values::Label;

#[derive(Debug, Clone, PartialEq)]
pub enum ApiKeyCommand {
    Create {
        key_id: Uuid,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ApiKeyEvent {
    ApiKeyCreated {
        key_id: Uuid,
        name: Label,
        prefix: String,
        permissions: PermissionSet,
        expires_at: Option<DateTime<Utc>>,
    },
    ApiKeyRevoked {},
}

crate::stored_event!(ApiKeyEvent);
impl UniqueClaims for ApiKeyEvent {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("an API key with this id already exists")]
    AlreadyExists,
    #[error("API key not found")]
    NotFound,
    #[error("an API key needs at least one permission")]
    NoPermissions,
    #[error("a key cannot carry permissions its creator lacks: {}", .missing.names().join(", "))]
    Escalation { missing: PermissionSet },
    #[error("expires_at must be in the future")]
    ExpiryInPast,
}

impl DomainError for ApiKeyError {
    fn code(&self) -> &'static str {
        match self {
            Self::AlreadyExists => "api_key_already_exists",
            Self::NotFound => "api_key_not_found",
            Self::NoPermissions => "no_permissions",
            Self::Escalation { .. } => "permission_escalation",
            Self::ExpiryInPast => "invalid_expiry",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::AlreadyExists => ErrorKind::Conflict,
            Self::NotFound => ErrorKind::NotFound,
            Self::NoPermissions | Self::ExpiryInPast => ErrorKind::Invalid,
            Self::Escalation { .. } => ErrorKind::Forbidden,
        }
    }

    fn details(&self) -> Option<serde_json::Value> {
        match self {
            Self::Escalation { missing } => {
                Some(serde_json::json!({ "missing_permissions": missing }))
            }
            _ => None,
        }
    }
}

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
                    key_id,
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

crate::aggregate!(ApiKey, "api_key", ApiKeyCommand, ApiKeyEvent, ApiKeyError);

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

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    type Given = TestFramework<ApiKey>;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn create(permissions: &[Permission], creator: PermissionSet) -> ApiKeyCommand {
        ApiKeyCommand::Create {
            key_id: Uuid::from_u128(9),
            name: Label::parse("runtime").unwrap(),
            prefix: "tnt_abcd".into(),
            permissions: PermissionSet::of(permissions),
            expires_at: None,
            creator_holds: creator,
            now: now(),
        }
    }

    fn created(permissions: &[Permission]) -> ApiKeyEvent {
        ApiKeyEvent::ApiKeyCreated {
            key_id: Uuid::from_u128(9),
            name: Label::parse("runtime").unwrap(),
            prefix: "tnt_abcd".into(),
            permissions: PermissionSet::of(permissions),
            expires_at: None,
        }
    }

    #[test]
    fn a_key_carries_what_its_creator_holds() {
        let perms = [Permission::UsageWrite, Permission::AgentsRead];
        Given::with(())
            .given_no_previous_events()
            .when(create(&perms, PermissionSet::of(&perms)))
            .then_expect_events(vec![created(&perms)]);
    }

    #[test]
    fn a_key_cannot_carry_more_than_its_creator() {
        Given::with(())
            .given_no_previous_events()
            .when(create(
                &[Permission::UsageWrite, Permission::BillingManage],
                PermissionSet::of(&[Permission::UsageWrite, Permission::ApiKeysManage]),
            ))
            .then_expect_error(ApiKeyError::Escalation {
                missing: PermissionSet::of(&[Permission::BillingManage]),
            });
    }

    #[test]
    fn llm_keys_use_needs_llm_keys_manage() {
        let with_manage = PermissionSet::of(&[Permission::LlmKeysManage]);
        Given::with(())
            .given_no_previous_events()
            .when(create(&[Permission::LlmKeysUse], with_manage))
            .then_expect_events(vec![created(&[Permission::LlmKeysUse])]);
        Given::with(())
            .given_no_previous_events()
            .when(create(
                &[Permission::LlmKeysUse],
                PermissionSet::of(&[Permission::LlmKeysRead]),
            ))
            .then_expect_error(ApiKeyError::Escalation {
                missing: PermissionSet::of(&[Permission::LlmKeysUse]),
            });
    }

    #[test]
    fn a_key_needs_a_permission_and_a_future_expiry() {
        Given::with(())
            .given_no_previous_events()
            .when(create(&[], PermissionSet::all()))
            .then_expect_error(ApiKeyError::NoPermissions);
        let mut past = create(&[Permission::TenantRead], PermissionSet::all());
        if let ApiKeyCommand::Create { expires_at, .. } = &mut past {
            *expires_at = Some(now());
        }
        Given::with(())
            .given_no_previous_events()
            .when(past)
            .then_expect_error(ApiKeyError::ExpiryInPast);
    }

    #[test]
    fn a_revoked_key_cannot_be_revoked_again() {
        Given::with(())
            .given(vec![created(&[Permission::TenantRead])])
            .when(ApiKeyCommand::Revoke)
            .then_expect_events(vec![ApiKeyEvent::ApiKeyRevoked {}]);
        Given::with(())
            .given(vec![
                created(&[Permission::TenantRead]),
                ApiKeyEvent::ApiKeyRevoked {},
            ])
            .when(ApiKeyCommand::Revoke)
            .then_expect_error(ApiKeyError::NotFound);
    }
}
