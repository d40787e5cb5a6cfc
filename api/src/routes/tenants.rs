//! Tenants: create, read, update, suspend, reactivate, archive, and their
//! event history. Creating, listing, suspending and archiving are for
//! platform admins; members read and manage their own tenant by permission.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenantry_domain::access::Permission;
use tenantry_domain::tenant::{TenantCommand, TenantStatus};
use tenantry_domain::values::{Slug, TenantName, TenantSettings, ValueError};
use tenantry_projections::tenants::{TenantFilter, TenantRow};
use uuid::Uuid;

use crate::error::{ApiError, Validation};
use crate::extract::{status_filter, Context, Json, ListOut, PageParams, Query, TenantIdPath};
use crate::guard::{platform_admin_required, Access, PlatformAdmin, TenantScope};
use crate::routes::Route;
use crate::service::tenants::{check_active_user, record_tenant, run_tenant_command};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    use Access::{PlatformAdmin as Admin, Tenant as In};
    vec![
        Route::post("/v1/tenants", Admin, post_tenant)
            .summary("Create a tenant, optionally with its first owner")
            .body::<TenantIn>()
            .answers::<TenantOut>(StatusCode::CREATED)
            .errors(&["slug_taken", "user_not_found", "user_deactivated"]),
        Route::get("/v1/tenants", Admin, list_tenants)
            .summary("List tenants; archived ones only with status=archived")
            .query::<TenantListParams>()
            .answers_page::<TenantOut>()
            .errors(&["invalid_limit", "invalid_cursor", "invalid_status"]),
        Route::get("/v1/tenants/{tid}", In(Permission::TenantRead), get_tenant)
            .summary("One tenant")
            .answers::<TenantOut>(StatusCode::OK),
        Route::patch(
            "/v1/tenants/{tid}",
            In(Permission::TenantManage),
            patch_tenant,
        )
        .summary("Rename a tenant and/or merge-patch its settings")
        .body::<TenantPatch>()
        .answers::<TenantOut>(StatusCode::OK)
        .errors(&[
            "tenant_archived",
            "invalid_settings",
            "platform_admin_required",
        ]),
        Route::delete("/v1/tenants/{tid}", Admin, delete_tenant)
            .summary("Archive a tenant")
            .no_content()
            .errors(&["tenant_not_found", "tenant_archived"]),
        Route::post("/v1/tenants/{tid}/suspend", Admin, suspend_tenant)
            .summary("Suspend a tenant: its members and keys are refused until reactivated")
            .body::<SuspendIn>()
            .answers::<TenantOut>(StatusCode::OK)
            .errors(&[
                "tenant_not_found",
                "tenant_already_suspended",
                "tenant_archived",
                "invalid_reason",
            ]),
        Route::post("/v1/tenants/{tid}/reactivate", Admin, reactivate_tenant)
            .summary("Reactivate a suspended tenant")
            .answers::<TenantOut>(StatusCode::OK)
            .errors(&[
                "tenant_not_found",
                "tenant_not_suspended",
                "tenant_archived",
            ]),
    ]
}

#[derive(Serialize, Deserialize, Debug, utoipa::ToSchema)]
pub struct TenantOut {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    #[schema(value_type = String)]
    pub status: TenantStatus,
    #[schema(value_type = Object)]
    pub settings: Value,
    pub suspended_reason: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<TenantRow> for TenantOut {
    fn from(r: TenantRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            slug: r.slug,
            status: r.status,
            settings: r.settings,
            suspended_reason: r.suspended_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

async fn tenant_out(state: &AppState, id: Uuid) -> Result<TenantOut, ApiError> {
    state
        .reads
        .tenants()
        .get(id)
        .await?
        .map(TenantOut::from)
        .ok_or_else(|| ApiError::not_found("tenant_not_found", "tenant not found"))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct TenantIn {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    #[schema(pattern = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")]
    slug: Option<String>,
    #[schema(value_type = Option<Object>)]
    settings: Option<Value>,
    /// An existing, active user to seat as the first owner.
    owner_user_id: Option<Uuid>,
}

/// 422 unless the user exists and is active.
/// Create a tenant; the slug is derived from the name when not given.
async fn post_tenant(
    State(state): State<AppState>,
    ctx: Context,
    PlatformAdmin(admin): PlatformAdmin,
    Json(body): Json<TenantIn>,
) -> Result<(StatusCode, axum::Json<TenantOut>), ApiError> {
    let mut v = Validation::default();
    let name = v.check("name", TenantName::parse(&body.name));
    let slug = match &body.slug {
        Some(raw) => v.check("slug", Slug::parse(raw)),
        None => v.check(
            "slug",
            Slug::derive_from(&body.name).ok_or(ValueError {
                code: "slug_required",
                message: "no slug can be derived from this name; give one".into(),
            }),
        ),
    };
    let settings = match body.settings {
        Some(raw) => v.check("settings", TenantSettings::parse(raw)),
        None => Some(TenantSettings::default()),
    };
    v.finish()?;
    let (Some(name), Some(slug), Some(settings)) = (name, slug, settings) else {
        return Err(ApiError::internal("validation passed without values"));
    };
    if let Some(owner) = body.owner_user_id {
        check_active_user(&state, "owner_user_id", owner).await?;
    }
    let tenant_id = Uuid::now_v7();
    let command = TenantCommand::CreateTenant {
        tenant_id: tenant_id.into(),
        name,
        slug,
        settings,
        owner: body.owner_user_id.map(Into::into),
    };
    run_tenant_command(&state, &ctx, admin.actor(), tenant_id, command).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(tenant_out(&state, tenant_id).await?),
    ))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TenantListParams {
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
    q: Option<String>,
    status: Option<String>,
}

/// List tenants; archived ones only with `status=archived`.
async fn list_tenants(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    Query(params): Query<TenantListParams>,
) -> Result<axum::Json<ListOut<TenantOut>>, ApiError> {
    let status = status_filter(
        params.status.as_deref(),
        &TenantStatus::ALL,
        TenantStatus::as_str,
    )?;
    let filter = TenantFilter {
        status,
        q: params.q.filter(|q| !q.is_empty()),
    };
    let paging = PageParams::new(params.limit, params.cursor);
    let page = state
        .reads
        .tenants()
        .list(&filter, paging.after()?, paging.limit()?)
        .await?;
    Ok(axum::Json(ListOut::from_page(page, TenantOut::from)))
}

/// One tenant (archived ones for platform admins only: the guard hides them).
async fn get_tenant(
    State(state): State<AppState>,
    scope: TenantScope,
) -> Result<axum::Json<TenantOut>, ApiError> {
    record_tenant(scope.tenant_id);
    Ok(axum::Json(tenant_out(&state, scope.tenant_id).await?))
}

/// Run a command on an existing tenant and wait until the read models show it.
#[derive(Deserialize, utoipa::ToSchema)]
struct TenantPatch {
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    #[schema(value_type = Option<Object>)]
    settings: Option<Value>,
}

/// Rename a tenant and/or merge-patch its settings (a `null` removes a key).
/// The seat limit (`max_seats`) is the platform's to set, not the tenant's.
async fn patch_tenant(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    Json(body): Json<TenantPatch>,
) -> Result<axum::Json<TenantOut>, ApiError> {
    let id = scope.tenant_id;
    let touches_seats = body
        .settings
        .as_ref()
        .is_some_and(|s| s.get("max_seats").is_some());
    if touches_seats && !scope.principal.is_platform_admin() {
        return Err(platform_admin_required());
    }
    let mut v = Validation::default();
    let name = body
        .name
        .as_deref()
        .map(|n| v.check("name", TenantName::parse(n)));
    let settings = body
        .settings
        .map(|s| v.check("settings", TenantSettings::parse(s)));
    v.finish()?;
    let command = TenantCommand::UpdateTenant {
        name: name.flatten(),
        settings_patch: settings.flatten(),
    };
    run_tenant_command(&state, &ctx, scope.principal.actor(), id, command).await?;
    Ok(axum::Json(tenant_out(&state, id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct SuspendIn {
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

/// Suspend a tenant, with a reason.
async fn suspend_tenant(
    State(state): State<AppState>,
    ctx: Context,
    admin: PlatformAdmin,
    TenantIdPath(id): TenantIdPath,
    Json(body): Json<SuspendIn>,
) -> Result<axum::Json<TenantOut>, ApiError> {
    let command = TenantCommand::SuspendTenant {
        reason: body.reason,
    };
    run_tenant_command(&state, &ctx, admin.0.actor(), id, command).await?;
    Ok(axum::Json(tenant_out(&state, id).await?))
}

/// Reactivate a suspended tenant.
async fn reactivate_tenant(
    State(state): State<AppState>,
    ctx: Context,
    admin: PlatformAdmin,
    TenantIdPath(id): TenantIdPath,
) -> Result<axum::Json<TenantOut>, ApiError> {
    let command = TenantCommand::ReactivateTenant;
    run_tenant_command(&state, &ctx, admin.0.actor(), id, command).await?;
    Ok(axum::Json(tenant_out(&state, id).await?))
}

/// Archive a tenant: its events stay, it leaves default lists.
async fn delete_tenant(
    State(state): State<AppState>,
    ctx: Context,
    admin: PlatformAdmin,
    TenantIdPath(id): TenantIdPath,
) -> Result<StatusCode, ApiError> {
    let command = TenantCommand::ArchiveTenant;
    run_tenant_command(&state, &ctx, admin.0.actor(), id, command).await?;
    Ok(StatusCode::NO_CONTENT)
}
