//! Tenant API keys: credentials for machines (the agent runtime), scoped to
//! one tenant and to the permissions they carry. The secret is shown once.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantry_domain::access::{Permission, PermissionSet};
use tenantry_domain::api_key::{ApiKey, ApiKeyCommand};
use tenantry_domain::values::Label;
use uuid::Uuid;

use crate::credentials::{random_token, token_hash, API_KEY_PREFIX};
use crate::error::{ApiError, Validation};
use crate::extract::{ApiKeyPath, Context, Json, ListOut, PageParams, Query};
use crate::guard::{Access, TenantScope};
use crate::middleware::SecretResponse;
use crate::routes::Route;
use crate::state::AppState;
use crate::store::api_keys::{KeyRow, NewKey};
use tenantry_store::SideWrite;

pub fn routes() -> Vec<Route> {
    use Access::Tenant as In;
    let manage = In(Permission::ApiKeysManage);
    vec![
        Route::post("/v1/tenants/{tid}/api-keys", manage, post_api_key),
        Route::get("/v1/tenants/{tid}/api-keys", manage, list_api_keys),
        Route::delete(
            "/v1/tenants/{tid}/api-keys/{key_id}",
            manage,
            delete_api_key,
        ),
    ]
}

/// How many characters of the key lists show, `tnt_` included.
const PREFIX_LEN: usize = 12;

#[derive(Deserialize)]
struct ApiKeyIn {
    name: String,
    permissions: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
}

/// The create response: the only time the secret is shown.
#[derive(Serialize)]
struct CreatedKeyOut {
    id: Uuid,
    name: String,
    key: String,
    prefix: String,
    permissions: PermissionSet,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
struct ApiKeyOut {
    id: Uuid,
    name: String,
    prefix: String,
    permissions: Vec<String>,
    created_by: Value,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<KeyRow> for ApiKeyOut {
    fn from(r: KeyRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            prefix: r.prefix,
            permissions: r.permissions,
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// Create a key carrying at most what the creator holds (plus
/// `llm_keys.use` for holders of `llm_keys.manage`).
async fn post_api_key(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    Json(body): Json<ApiKeyIn>,
) -> Result<(StatusCode, SecretResponse, axum::Json<CreatedKeyOut>), ApiError> {
    let mut v = Validation::default();
    let name = v.check("name", Label::parse(&body.name));
    let permissions = v.check("permissions", PermissionSet::parse(&body.permissions));
    v.finish()?;
    let (Some(name), Some(permissions)) = (name, permissions) else {
        return Err(ApiError::internal("validation passed without values"));
    };
    let key_id = Uuid::now_v7();
    let secret = zeroize::Zeroizing::new(format!("{API_KEY_PREFIX}{}", random_token()));
    let prefix: String = secret.chars().take(PREFIX_LEN).collect();
    let now = Utc::now();
    let actor = scope.principal.actor();
    let meta = ctx.metadata(scope.tenant_id, actor.clone());
    let command = ApiKeyCommand::Create {
        key_id: key_id.into(),
        name: name.clone(),
        prefix: prefix.clone(),
        permissions,
        expires_at: body.expires_at,
        creator_holds: scope.permissions,
        now,
    };
    let hash = token_hash(&secret);
    let created_by = serde_json::to_value(&actor).map_err(ApiError::internal)?;
    let row = NewKey {
        id: key_id,
        tenant_id: scope.tenant_id,
        secret_hash: hash,
        prefix: prefix.clone(),
        name: name.as_str().to_string(),
        permissions: permissions.names(),
        created_by,
        expires_at: body.expires_at,
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
    Ok((
        StatusCode::CREATED,
        SecretResponse,
        axum::Json(CreatedKeyOut {
            id: key_id,
            name: name.as_str().to_string(),
            key: secret.to_string(),
            prefix,
            permissions,
            created_at: now,
            expires_at: body.expires_at,
        }),
    ))
}

#[derive(Deserialize, Default)]
struct KeyListParams {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// The tenant's live keys, without secrets.
async fn list_api_keys(
    State(state): State<AppState>,
    scope: TenantScope,
    Query(params): Query<KeyListParams>,
) -> Result<axum::Json<ListOut<ApiKeyOut>>, ApiError> {
    let paging = PageParams::new(params.limit, params.cursor);
    let page = state
        .store
        .api_keys()
        .list(scope.tenant_id, paging.after()?, paging.limit()?)
        .await?;
    Ok(axum::Json(ListOut::from_page(page, ApiKeyOut::from)))
}

/// Revoke a key: it stops working at once.
async fn delete_api_key(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    ApiKeyPath(key_id): ApiKeyPath,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::not_found("api_key_not_found", "API key not found");
    // Another tenant's key under this tenant's path is not found.
    state
        .store
        .api_keys()
        .get(scope.tenant_id, key_id)
        .await?
        .ok_or_else(not_found)?;
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
    Ok(StatusCode::NO_CONTENT)
}
