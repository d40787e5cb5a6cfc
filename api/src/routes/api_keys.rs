//! Tenant API keys: credentials for machines (the agent runtime), scoped to
//! one tenant and to the permissions they carry. The secret is shown once.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantry_domain::access::{Permission, PermissionSet};
use tenantry_domain::values::Label;
use uuid::Uuid;

use crate::error::{ApiError, Validation};
use crate::extract::{ApiKeyPath, Context, Json, ListOut, PageParams, Query};
use crate::guard::{Access, TenantScope};
use crate::middleware::SecretResponse;
use crate::routes::Route;
use crate::service::api_keys;
use crate::state::AppState;
use crate::store::api_keys::KeyRow;

pub fn routes() -> Vec<Route> {
    use Access::Tenant as In;
    let manage = In(Permission::ApiKeysManage);
    vec![
        Route::post("/v1/tenants/{tid}/api-keys", manage, post_api_key)
            .summary("Create an API key; its secret is shown only here")
            .body::<ApiKeyIn>()
            .answers::<CreatedKeyOut>(StatusCode::CREATED)
            .errors(&["permission_escalation", "invalid_expiry", "no_permissions"]),
        Route::get("/v1/tenants/{tid}/api-keys", manage, list_api_keys)
            .summary("The tenant's live keys, without secrets")
            .query::<KeyListParams>()
            .answers_page::<ApiKeyOut>()
            .errors(&["invalid_limit", "invalid_cursor"]),
        Route::delete(
            "/v1/tenants/{tid}/api-keys/{key_id}",
            manage,
            delete_api_key,
        )
        .summary("Revoke a key: it stops working at once")
        .no_content()
        .errors(&["api_key_not_found"]),
    ]
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ApiKeyIn {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    permissions: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
}

/// The create response: the only time the secret is shown.
#[derive(Serialize, utoipa::ToSchema)]
struct CreatedKeyOut {
    id: Uuid,
    name: String,
    key: String,
    prefix: String,
    #[schema(value_type = Vec<String>)]
    permissions: PermissionSet,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ApiKeyOut {
    id: Uuid,
    name: String,
    prefix: String,
    permissions: Vec<String>,
    #[schema(value_type = Object)]
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
    let issued = api_keys::issue(
        &state,
        &ctx,
        &scope,
        name.clone(),
        permissions,
        body.expires_at,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        SecretResponse,
        axum::Json(CreatedKeyOut {
            id: issued.id,
            name: name.as_str().to_string(),
            key: issued.secret.to_string(),
            prefix: issued.prefix,
            permissions,
            created_at: issued.created_at,
            expires_at: body.expires_at,
        }),
    ))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct KeyListParams {
    #[param(minimum = 1, maximum = 200)]
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
    api_keys::revoke(&state, &ctx, &scope, key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
