//! The provider-key vault's use cases: seal a tenant's key under a fresh
//! data key, replace or delete it (destroying the old data key in the same
//! transaction as the event), and resolve the plaintext for the agent
//! runtime with every resolve recorded.

use base64::Engine;
use tenantry_domain::llm_key::{key_hint, LlmKey, LlmKeyCommand, Provider};
use tenantry_domain::values::Label;
use tenantry_domain::{EventMetadata, LlmKeyId};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::extract::Context;
use crate::guard::TenantScope;
use crate::state::AppState;
use crate::store::page::Page;
use crate::store::vault::AccessRow;
use crate::store::SideWrite;
use crate::vault::{self, Binding, DataKey};

pub fn not_found() -> ApiError {
    ApiError::not_found("llm_key_not_found", "provider key not found")
}

/// A fresh data key, wrapped by the active master key, and the secret sealed
/// under it: what a create or replace stores.
struct Sealed {
    data_key_id: Uuid,
    master_key_id: String,
    wrapped: Vec<u8>,
    ciphertext: String,
}

fn seal(state: &AppState, binding: Binding<'_>, secret: &str) -> Result<Sealed, ApiError> {
    let masters = &state.config.master_keys;
    let data_key_id = Uuid::now_v7();
    let data_key = DataKey::generate();
    let wrapped =
        vault::wrap(masters.active(), data_key_id, &data_key).map_err(ApiError::internal)?;
    let sealed = vault::seal(&data_key, binding, secret.as_bytes()).map_err(ApiError::internal)?;
    Ok(Sealed {
        data_key_id,
        master_key_id: masters.active().id().to_string(),
        wrapped,
        ciphertext: base64::engine::general_purpose::STANDARD.encode(sealed),
    })
}

/// Run a command on a key; in the same transaction store the new data key
/// and destroy the one it replaces, so log and key table never disagree.
async fn run(
    state: &AppState,
    meta: &EventMetadata,
    key_id: Uuid,
    command: LlmKeyCommand,
    insert: Option<Sealed>,
    destroy: Option<Uuid>,
) -> Result<(), ApiError> {
    let tenant_id = meta.tenant_id;
    let inserts = insert.map(|new| SideWrite::InsertDataKey {
        id: new.data_key_id,
        tenant_id,
        master_key_id: new.master_key_id,
        wrapped: new.wrapped,
    });
    let destroys = destroy.map(|id| SideWrite::DestroyDataKey { id });
    let side: Vec<SideWrite> = inserts.into_iter().chain(destroys).collect();
    let committed = state
        .store
        .execute_with::<LlmKey>(key_id.into(), command, meta, &side)
        .await?;
    state.settle(committed.written.as_ref()).await;
    Ok(())
}

/// The live key `id` of the scope's tenant (another tenant's id is not found).
async fn tenant_key(state: &AppState, scope: &TenantScope, id: Uuid) -> Result<LlmKey, ApiError> {
    let (key, _) = state
        .store
        .load::<LlmKey>(LlmKeyId::from(id))
        .await
        .map_err(ApiError::from)?;
    if key.is_live() && key.tenant_id == Some(scope.tenant_id) {
        Ok(key)
    } else {
        Err(not_found())
    }
}

/// Store a key for a provider (validated by the caller); returns its id.
pub async fn add(
    state: &AppState,
    ctx: &Context,
    scope: &TenantScope,
    provider: Provider,
    label: Option<Label>,
    secret: &str,
) -> Result<Uuid, ApiError> {
    crate::service::billing::require_feature(
        state,
        scope.tenant_id,
        tenantry_domain::plan::Feature::ByoLlmKeys,
    )
    .await?;
    let key_id = Uuid::now_v7();
    let binding = Binding {
        tenant_id: scope.tenant_id,
        key_id,
        provider: provider.as_str(),
    };
    let sealed = seal(state, binding, secret)?;
    let command = LlmKeyCommand::Add {
        key_id: key_id.into(),
        tenant_id: scope.tenant_id.into(),
        provider,
        label,
        key_hint: key_hint(secret),
        data_key_id: sealed.data_key_id,
        ciphertext: sealed.ciphertext.clone(),
    };
    let meta = ctx.metadata(scope.tenant_id, scope.principal.actor());
    run(state, &meta, key_id, command, Some(sealed), None).await?;
    Ok(key_id)
}

/// Replace a key's secret under a new data key; the old data key is destroyed.
pub async fn replace(
    state: &AppState,
    ctx: &Context,
    scope: &TenantScope,
    id: Uuid,
    secret: &str,
) -> Result<(), ApiError> {
    crate::service::billing::require_feature(
        state,
        scope.tenant_id,
        tenantry_domain::plan::Feature::ByoLlmKeys,
    )
    .await?;
    let key = tenant_key(state, scope, id).await?;
    let provider = key.provider.ok_or_else(not_found)?;
    provider
        .check_key(secret)
        .map_err(|e| ApiError::invalid_field("api_key", e))?;
    let binding = Binding {
        tenant_id: scope.tenant_id,
        key_id: id,
        provider: provider.as_str(),
    };
    let sealed = seal(state, binding, secret)?;
    let old = key.data_key_id.ok_or_else(not_found)?;
    let command = LlmKeyCommand::Replace {
        key_hint: key_hint(secret),
        data_key_id: sealed.data_key_id,
        ciphertext: sealed.ciphertext.clone(),
    };
    let meta = ctx.metadata(scope.tenant_id, scope.principal.actor());
    run(state, &meta, id, command, Some(sealed), Some(old)).await
}

/// Delete a key and destroy its data key: the sealed secret left in the
/// log can never be opened again.
pub async fn delete(
    state: &AppState,
    ctx: &Context,
    scope: &TenantScope,
    id: Uuid,
) -> Result<(), ApiError> {
    let key = tenant_key(state, scope, id).await?;
    let data_key_id = key.data_key_id.ok_or_else(not_found)?;
    let meta = ctx.metadata(scope.tenant_id, scope.principal.actor());
    run(
        state,
        &meta,
        id,
        LlmKeyCommand::Delete,
        None,
        Some(data_key_id),
    )
    .await
}

/// The plaintext of the tenant's key for a provider, and the key's id. The
/// resolve is recorded in the access log before the secret is handed out.
pub async fn resolve(
    state: &AppState,
    ctx: &Context,
    scope: &TenantScope,
    provider: Provider,
) -> Result<(Uuid, Zeroizing<String>), ApiError> {
    let id = state
        .reads
        .llm_keys()
        .id_for_provider(scope.tenant_id, provider.as_str())
        .await?
        .ok_or_else(not_found)?;
    let key = tenant_key(state, scope, id).await?;
    let (Some(data_key_id), Some(ciphertext)) = (key.data_key_id, key.ciphertext) else {
        return Err(not_found());
    };
    // Deleted between the lookup and now: the data key is gone.
    let wrapped = state
        .store
        .vault()
        .wrapped_data_key(data_key_id)
        .await?
        .ok_or_else(not_found)?;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(ciphertext)
        .map_err(ApiError::internal)?;
    let data_key = vault::unwrap(&state.config.master_keys, data_key_id, &wrapped)
        .map_err(|e| ApiError::internal(format!("data key {data_key_id}: {e}")))?;
    let binding = Binding {
        tenant_id: scope.tenant_id,
        key_id: id,
        provider: provider.as_str(),
    };
    let api_key = vault::open(&data_key, binding, &sealed)
        .map_err(|e| ApiError::internal(format!("provider key {id}: {e}")))?;
    let actor = serde_json::to_value(scope.principal.actor()).map_err(ApiError::internal)?;
    state
        .store
        .vault()
        .record_access(scope.tenant_id, id, &actor, &ctx.request_id)
        .await?;
    Ok((id, api_key))
}

/// Who resolved a key's plaintext, oldest first: for a key this tenant
/// holds or held (the log outlives the key).
pub async fn accesses(
    state: &AppState,
    scope: &TenantScope,
    id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Page<AccessRow>, ApiError> {
    let (key, _) = state
        .store
        .load::<LlmKey>(LlmKeyId::from(id))
        .await
        .map_err(ApiError::from)?;
    if key.tenant_id != Some(scope.tenant_id) {
        return Err(not_found());
    }
    Ok(state
        .store
        .vault()
        .accesses(scope.tenant_id, id, after, limit)
        .await?)
}
