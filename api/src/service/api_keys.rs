//! Tenant API keys: issue one (the secret exists only in the answer; the
//! store keeps its SHA-256) and revoke one.

use chrono::{DateTime, Utc};
use tenantry_domain::access::PermissionSet;
use tenantry_domain::api_key::{ApiKey, ApiKeyCommand};
use tenantry_domain::values::Label;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::credentials::{random_token, token_hash, API_KEY_PREFIX};
use crate::error::ApiError;
use crate::extract::Context;
use crate::guard::TenantScope;
use crate::state::AppState;
use crate::store::api_keys::NewKey;
use crate::store::SideWrite;

/// How many characters of the key lists show, `tnt_` included.
const PREFIX_LEN: usize = 12;

/// A key just issued: the only time its secret exists outside the caller.
pub struct IssuedKey {
    pub id: Uuid,
    pub secret: Zeroizing<String>,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
}

/// Issue a key carrying `permissions` (the aggregate refuses more than the
/// creator holds, plus `llm_keys.use` for holders of `llm_keys.manage`).
pub async fn issue(
    state: &AppState,
    ctx: &Context,
    scope: &TenantScope,
    name: Label,
    permissions: PermissionSet,
    expires_at: Option<DateTime<Utc>>,
) -> Result<IssuedKey, ApiError> {
    let key_id = Uuid::now_v7();
    let secret = Zeroizing::new(format!("{API_KEY_PREFIX}{}", random_token()));
    let prefix: String = secret.chars().take(PREFIX_LEN).collect();
    let now = Utc::now();
    let actor = scope.principal.actor();
    let meta = ctx.metadata(scope.tenant_id, actor.clone());
    let row = NewKey {
        id: key_id,
        tenant_id: scope.tenant_id,
        secret_hash: token_hash(&secret),
        prefix: prefix.clone(),
        name: name.as_str().to_string(),
        permissions: permissions.names(),
        created_by: serde_json::to_value(&actor).map_err(ApiError::internal)?,
        expires_at,
    };
    let command = ApiKeyCommand::Create {
        key_id: key_id.into(),
        name,
        prefix: prefix.clone(),
        permissions,
        expires_at,
        creator_holds: scope.permissions,
        now,
    };
    state
        .store
        .execute_with::<ApiKey>(
            key_id.into(),
            command,
            &meta,
            &[SideWrite::InsertApiKey(row)],
        )
        .await?;
    Ok(IssuedKey {
        id: key_id,
        secret,
        prefix,
        created_at: now,
    })
}

/// Revoke a key of the scope's tenant: it stops working at once. Another
/// tenant's key under this tenant's path is not found.
pub async fn revoke(
    state: &AppState,
    ctx: &Context,
    scope: &TenantScope,
    key_id: Uuid,
) -> Result<(), ApiError> {
    state
        .store
        .api_keys()
        .get(scope.tenant_id, key_id)
        .await?
        .ok_or_else(|| ApiError::not_found("api_key_not_found", "API key not found"))?;
    let meta = ctx.metadata(scope.tenant_id, scope.principal.actor());
    state
        .store
        .execute_with::<ApiKey>(
            key_id.into(),
            ApiKeyCommand::Revoke,
            &meta,
            &[SideWrite::RevokeApiKey { key_id }],
        )
        .await?;
    Ok(())
}
