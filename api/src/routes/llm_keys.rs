//! The provider-key vault over HTTP: tenants bring their own LLM and voice
//! provider keys; the agent runtime resolves the plaintext at call time with
//! an API key holding `llm_keys.use`; nobody else ever sees it.

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantry_domain::access::Permission;
use tenantry_domain::llm_key::{key_hint, LlmKey, LlmKeyCommand, Provider};
use tenantry_domain::values::Label;
use tenantry_projections::llm_keys::LlmKeyRow;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::{ApiError, Validation};
use crate::extract::{Context, Json, ListOut, LlmKeyPath, PageParams, ProviderPath, Query};
use crate::guard::{Access, TenantScope};
use crate::middleware::SecretResponse;
use crate::routes::Route;
use crate::state::AppState;
use crate::vault::{self, Binding, DataKey};
use tenantry_store::SideWrite;

pub fn routes() -> Vec<Route> {
    use Access::Tenant as In;
    const KEYS: &str = "/v1/tenants/{tid}/llm-keys";
    const KEY: &str = "/v1/tenants/{tid}/llm-keys/{key}";
    vec![
        Route::get(KEYS, In(Permission::LlmKeysRead), list_llm_keys),
        Route::post(KEYS, In(Permission::LlmKeysManage), post_llm_key),
        Route::put(KEY, In(Permission::LlmKeysManage), put_llm_key),
        Route::delete(KEY, In(Permission::LlmKeysManage), delete_llm_key),
        Route::post(
            "/v1/tenants/{tid}/llm-keys/{provider}/resolve",
            In(Permission::LlmKeysUse),
            resolve_llm_key,
        ),
        Route::get(
            "/v1/tenants/{tid}/llm-keys/{key}/accesses",
            In(Permission::AuditRead),
            list_accesses,
        ),
    ]
}

#[derive(Serialize)]
struct LlmKeyOut {
    id: Uuid,
    provider: String,
    label: Option<String>,
    key_hint: String,
    created_by: Value,
    created_at: DateTime<Utc>,
    rotated_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<LlmKeyRow> for LlmKeyOut {
    fn from(r: LlmKeyRow) -> Self {
        Self {
            id: r.id,
            provider: r.provider,
            label: r.label,
            key_hint: r.key_hint,
            created_by: r.created_by,
            created_at: r.created_at,
            rotated_at: r.rotated_at,
            last_used_at: r.last_used_at,
        }
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("llm_key_not_found", "provider key not found")
}

async fn key_out(state: &AppState, tenant_id: Uuid, id: Uuid) -> Result<LlmKeyOut, ApiError> {
    state
        .reads
        .llm_keys()
        .get(tenant_id, id)
        .await?
        .map(LlmKeyOut::from)
        .ok_or_else(not_found)
}

/// A fresh data key, wrapped by the active master key, and the secret sealed
/// under it: what a create or replace stores.
#[derive(Clone)]
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
async fn run_key_command(
    state: &AppState,
    ctx: &Context,
    scope: &TenantScope,
    key_id: Uuid,
    command: LlmKeyCommand,
    insert: Option<Sealed>,
    destroy: Option<Uuid>,
) -> Result<(), ApiError> {
    let meta = ctx.metadata(scope.tenant_id, scope.principal.actor());
    let tenant_id = scope.tenant_id;
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
        .execute_with::<LlmKey>(key_id.into(), command, &meta, &side)
        .await?;
    state.settle(committed.written.as_ref()).await;
    Ok(())
}

/// The tenant's keys, redacted.
async fn list_llm_keys(
    State(state): State<AppState>,
    scope: TenantScope,
) -> Result<axum::Json<ListOut<LlmKeyOut>>, ApiError> {
    let rows = state.reads.llm_keys().list(scope.tenant_id).await?;
    Ok(axum::Json(ListOut {
        data: rows.into_iter().map(LlmKeyOut::from).collect(),
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
struct LlmKeyIn {
    provider: String,
    api_key: Zeroizing<String>,
    label: Option<String>,
}

/// Store a key for a provider the tenant has none for yet.
async fn post_llm_key(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    Json(body): Json<LlmKeyIn>,
) -> Result<(StatusCode, axum::Json<LlmKeyOut>), ApiError> {
    let mut v = Validation::default();
    let provider = v.check("provider", Provider::parse(&body.provider));
    if let Some(p) = provider {
        v.check("api_key", p.check_key(&body.api_key));
    }
    let label = body
        .label
        .as_deref()
        .and_then(|l| v.check("label", Label::parse(l)));
    v.finish()?;
    let provider =
        provider.ok_or_else(|| ApiError::internal("validation passed without values"))?;
    let key_id = Uuid::now_v7();
    let binding = Binding {
        tenant_id: scope.tenant_id,
        key_id,
        provider: provider.as_str(),
    };
    let sealed = seal(&state, binding, &body.api_key)?;
    let command = LlmKeyCommand::Add {
        key_id: key_id.into(),
        tenant_id: scope.tenant_id.into(),
        provider,
        label,
        key_hint: key_hint(&body.api_key),
        data_key_id: sealed.data_key_id,
        ciphertext: sealed.ciphertext.clone(),
    };
    run_key_command(&state, &ctx, &scope, key_id, command, Some(sealed), None).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(key_out(&state, scope.tenant_id, key_id).await?),
    ))
}

/// The live key `id` of this tenant (another tenant's id is not found).
async fn tenant_key(state: &AppState, scope: &TenantScope, id: Uuid) -> Result<LlmKey, ApiError> {
    let (key, _) = state
        .store
        .load::<LlmKey>(id.into())
        .await
        .map_err(ApiError::from)?;
    if key.is_live() && key.tenant_id == Some(scope.tenant_id) {
        Ok(key)
    } else {
        Err(not_found())
    }
}

#[derive(Deserialize)]
struct ReplaceIn {
    api_key: Zeroizing<String>,
}

/// Replace a key's secret under a new data key; the old data key is destroyed.
async fn put_llm_key(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    LlmKeyPath(id): LlmKeyPath,
    Json(body): Json<ReplaceIn>,
) -> Result<axum::Json<LlmKeyOut>, ApiError> {
    let key = tenant_key(&state, &scope, id).await?;
    let provider = key.provider.ok_or_else(not_found)?;
    provider
        .check_key(&body.api_key)
        .map_err(|e| ApiError::invalid_field("api_key", e))?;
    let binding = Binding {
        tenant_id: scope.tenant_id,
        key_id: id,
        provider: provider.as_str(),
    };
    let sealed = seal(&state, binding, &body.api_key)?;
    let old = key.data_key_id.ok_or_else(not_found)?;
    let command = LlmKeyCommand::Replace {
        key_hint: key_hint(&body.api_key),
        data_key_id: sealed.data_key_id,
        ciphertext: sealed.ciphertext.clone(),
    };
    run_key_command(&state, &ctx, &scope, id, command, Some(sealed), Some(old)).await?;
    Ok(axum::Json(key_out(&state, scope.tenant_id, id).await?))
}

/// Delete a key and destroy its data key: the sealed secret left in the
/// log can never be opened again.
async fn delete_llm_key(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    LlmKeyPath(id): LlmKeyPath,
) -> Result<StatusCode, ApiError> {
    let key = tenant_key(&state, &scope, id).await?;
    let data_key_id = key.data_key_id.ok_or_else(not_found)?;
    let command = LlmKeyCommand::Delete;
    run_key_command(&state, &ctx, &scope, id, command, None, Some(data_key_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct ResolvedOut {
    api_key: Zeroizing<String>,
    key_id: Uuid,
}

/// The plaintext of the tenant's key for a provider, for the agent runtime.
/// Every call is recorded in the access log.
async fn resolve_llm_key(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    ProviderPath(provider): ProviderPath,
) -> Result<(SecretResponse, axum::Json<ResolvedOut>), ApiError> {
    let provider =
        Provider::parse(&provider).map_err(|e| ApiError::invalid_field("provider", e))?;
    let id = state
        .reads
        .llm_keys()
        .id_for_provider(scope.tenant_id, provider.as_str())
        .await?
        .ok_or_else(not_found)?;
    let key = tenant_key(&state, &scope, id).await?;
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
    Ok((
        SecretResponse,
        axum::Json(ResolvedOut {
            api_key,
            key_id: id,
        }),
    ))
}

#[derive(Serialize)]
struct AccessOut {
    id: Uuid,
    actor: Value,
    request_id: Option<String>,
    accessed_at: DateTime<Utc>,
}

#[derive(Deserialize, Default)]
struct AccessParams {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Who resolved a key's plaintext, when, from which request. Kept after the
/// key is deleted.
async fn list_accesses(
    State(state): State<AppState>,
    scope: TenantScope,
    LlmKeyPath(id): LlmKeyPath,
    Query(params): Query<AccessParams>,
) -> Result<axum::Json<ListOut<AccessOut>>, ApiError> {
    let (key, _) = state
        .store
        .load::<LlmKey>(id.into())
        .await
        .map_err(ApiError::from)?;
    if key.tenant_id != Some(scope.tenant_id) {
        return Err(not_found());
    }
    let paging = PageParams::new(params.limit, params.cursor);
    let page = state
        .store
        .vault()
        .accesses(scope.tenant_id, id, paging.after()?, paging.limit()?)
        .await?;
    Ok(axum::Json(ListOut::from_page(page, |r| AccessOut {
        id: r.id,
        actor: r.actor,
        request_id: r.request_id,
        accessed_at: r.accessed_at,
    })))
}
