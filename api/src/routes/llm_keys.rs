//! The provider-key vault over HTTP: tenants bring their own LLM and voice
//! provider keys; the agent runtime resolves the plaintext at call time with
//! an API key holding `llm_keys.use`; nobody else ever sees it.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantry_domain::access::Permission;
use tenantry_domain::llm_key::Provider;
use tenantry_domain::values::Label;
use tenantry_projections::llm_keys::LlmKeyRow;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::{ApiError, Validation};
use crate::extract::{Context, Json, ListOut, LlmKeyPath, PageParams, ProviderPath, Query};
use crate::guard::{Access, TenantScope};
use crate::middleware::SecretResponse;
use crate::routes::Route;
use crate::service::llm_keys::{self, not_found};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    use Access::Tenant as In;
    const KEYS: &str = "/v1/tenants/{tid}/llm-keys";
    const KEY: &str = "/v1/tenants/{tid}/llm-keys/{key}";
    vec![
        Route::get(KEYS, In(Permission::LlmKeysRead), list_llm_keys)
            .summary("The tenant's provider keys, redacted")
            .answers_all::<LlmKeyOut>(),
        Route::post(KEYS, In(Permission::LlmKeysManage), post_llm_key)
            .summary("Store a key for a provider the tenant has none for yet")
            .body::<LlmKeyIn>()
            .answers::<LlmKeyOut>(StatusCode::CREATED)
            .errors(&["duplicate_provider_key", "feature_not_in_plan"]),
        Route::put(KEY, In(Permission::LlmKeysManage), put_llm_key)
            .summary("Replace a key's secret; the old data key is destroyed")
            .body::<ReplaceIn>()
            .answers::<LlmKeyOut>(StatusCode::OK)
            .errors(&["llm_key_not_found", "feature_not_in_plan"]),
        Route::delete(KEY, In(Permission::LlmKeysManage), delete_llm_key)
            .summary("Delete a key and crypto-shred its data key")
            .no_content()
            .errors(&["llm_key_not_found"]),
        Route::post(
            "/v1/tenants/{tid}/llm-keys/{provider}/resolve",
            In(Permission::LlmKeysUse),
            resolve_llm_key,
        )
        .summary("The plaintext of the tenant's key for a provider (recorded)")
        .answers::<ResolvedOut>(StatusCode::OK)
        .errors(&["llm_key_not_found", "validation_failed"]),
        Route::get(
            "/v1/tenants/{tid}/llm-keys/{key}/accesses",
            In(Permission::AuditRead),
            list_accesses,
        )
        .summary("Who resolved a key's plaintext, when, from which request")
        .query::<AccessParams>()
        .answers_page::<AccessOut>()
        .errors(&["llm_key_not_found", "invalid_limit", "invalid_cursor"]),
    ]
}

#[derive(Serialize, utoipa::ToSchema)]
struct LlmKeyOut {
    id: Uuid,
    provider: String,
    label: Option<String>,
    key_hint: String,
    #[schema(value_type = Object)]
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

async fn key_out(state: &AppState, tenant_id: Uuid, id: Uuid) -> Result<LlmKeyOut, ApiError> {
    state
        .reads
        .llm_keys()
        .get(tenant_id, id)
        .await?
        .map(LlmKeyOut::from)
        .ok_or_else(not_found)
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

#[derive(Deserialize, utoipa::ToSchema)]
struct LlmKeyIn {
    provider: String,
    #[schema(value_type = String)]
    api_key: Zeroizing<String>,
    #[schema(min_length = 1, max_length = 100)]
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
    let key_id = llm_keys::add(&state, &ctx, &scope, provider, label, &body.api_key).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(key_out(&state, scope.tenant_id, key_id).await?),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ReplaceIn {
    #[schema(value_type = String)]
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
    llm_keys::replace(&state, &ctx, &scope, id, &body.api_key).await?;
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
    llm_keys::delete(&state, &ctx, &scope, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
struct ResolvedOut {
    #[schema(value_type = String)]
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
    let (id, api_key) = llm_keys::resolve(&state, &ctx, &scope, provider).await?;
    Ok((
        SecretResponse,
        axum::Json(ResolvedOut {
            api_key,
            key_id: id,
        }),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
struct AccessOut {
    id: Uuid,
    #[schema(value_type = Object)]
    actor: Value,
    request_id: Option<String>,
    accessed_at: DateTime<Utc>,
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AccessParams {
    #[param(minimum = 1, maximum = 200)]
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
    let paging = PageParams::new(params.limit, params.cursor);
    let page = llm_keys::accesses(&state, &scope, id, paging.after()?, paging.limit()?).await?;
    Ok(axum::Json(ListOut::from_page(page, |r| AccessOut {
        id: r.id,
        actor: r.actor,
        request_id: r.request_id,
        accessed_at: r.accessed_at,
    })))
}
