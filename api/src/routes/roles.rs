//! A tenant's roles: the built-in ones and the custom ones its admins define
//! from the permission catalogue.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tenantry_domain::access::{BuiltinRole, Permission, PermissionSet, RoleName};
use tenantry_domain::tenant::TenantCommand;

use crate::error::{ApiError, Validation};
use crate::extract::{Context, Json, ListOut, RolePath};
use crate::guard::{Access, TenantScope};
use crate::routes::Route;
use crate::service::tenants::run_tenant_command;
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    use Access::Tenant as In;
    const ROLE: &str = "/v1/tenants/{tid}/roles/{role}";
    vec![
        Route::get(
            "/v1/tenants/{tid}/roles",
            In(Permission::MembersRead),
            list_roles,
        )
        .summary("The built-in and custom roles with their permissions")
        .answers_all::<RoleOut>(),
        Route::post(
            "/v1/tenants/{tid}/roles",
            In(Permission::RolesManage),
            post_role,
        )
        .summary("Define a custom role")
        .body::<RoleIn>()
        .answers::<RoleOut>(StatusCode::CREATED)
        .errors(&[
            "role_exists",
            "permission_escalation",
            "permission_not_assignable",
            "no_permissions",
            "tenant_archived",
        ]),
        Route::put(ROLE, In(Permission::RolesManage), put_role)
            .summary("Change a custom role's permissions")
            .body::<RolePermissionsIn>()
            .answers::<RoleOut>(StatusCode::OK)
            .errors(&[
                "role_not_found",
                "builtin_role_immutable",
                "permission_escalation",
                "permission_not_assignable",
                "no_permissions",
                "tenant_archived",
            ]),
        Route::delete(ROLE, In(Permission::RolesManage), delete_role)
            .summary("Delete a custom role nobody holds")
            .no_content()
            .errors(&[
                "role_not_found",
                "builtin_role_immutable",
                "role_in_use",
                "tenant_archived",
            ]),
    ]
}

#[derive(Serialize, Deserialize, Debug, utoipa::ToSchema)]
pub struct RoleOut {
    pub name: String,
    pub builtin: bool,
    #[schema(value_type = Vec<String>)]
    pub permissions: PermissionSet,
}

fn builtin_out(role: BuiltinRole) -> RoleOut {
    RoleOut {
        name: role.as_str().to_string(),
        builtin: true,
        permissions: role.permissions(),
    }
}

fn custom_out(name: &str, permissions: PermissionSet) -> RoleOut {
    RoleOut {
        name: name.to_string(),
        builtin: false,
        permissions,
    }
}

/// Built-in roles first, then custom roles by name.
async fn list_roles(
    State(state): State<AppState>,
    scope: TenantScope,
) -> Result<axum::Json<ListOut<RoleOut>>, ApiError> {
    let mut data: Vec<RoleOut> = BuiltinRole::ALL.into_iter().map(builtin_out).collect();
    for r in state.reads.access().custom_roles(scope.tenant_id).await? {
        let permissions = PermissionSet::parse(&r.permissions)
            .map_err(|e| ApiError::internal(format!("role {}: {e}", r.name)))?;
        data.push(custom_out(&r.name, permissions));
    }
    Ok(axum::Json(ListOut {
        data,
        next_cursor: None,
    }))
}

fn parse_permissions(v: &mut Validation, raw: &[String]) -> Option<PermissionSet> {
    v.check("permissions", PermissionSet::parse(raw))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RoleIn {
    name: String,
    permissions: Vec<String>,
}

/// Define a custom role.
async fn post_role(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    Json(body): Json<RoleIn>,
) -> Result<(StatusCode, axum::Json<RoleOut>), ApiError> {
    let mut v = Validation::default();
    let name = v.check("name", RoleName::parse(&body.name));
    let permissions = parse_permissions(&mut v, &body.permissions);
    v.finish()?;
    let (Some(name), Some(permissions)) = (name, permissions) else {
        return Err(ApiError::internal("validation passed without values"));
    };
    let out = custom_out(name.as_str(), permissions);
    let command = TenantCommand::DefineRole {
        name,
        permissions,
        by: scope.authority(),
    };
    let actor = scope.principal.actor();
    run_tenant_command(&state, &ctx, actor, scope.tenant_id, command).await?;
    Ok((StatusCode::CREATED, axum::Json(out)))
}

fn role_from_path(raw: &str) -> Result<RoleName, ApiError> {
    RoleName::parse(raw).map_err(|_| ApiError::not_found("role_not_found", "no such role"))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RolePermissionsIn {
    permissions: Vec<String>,
}

/// Replace a custom role's permissions; its members hold the new set at once.
async fn put_role(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    RolePath(raw): RolePath,
    Json(body): Json<RolePermissionsIn>,
) -> Result<axum::Json<RoleOut>, ApiError> {
    let name = role_from_path(&raw)?;
    let mut v = Validation::default();
    let permissions = parse_permissions(&mut v, &body.permissions);
    v.finish()?;
    let permissions = permissions.unwrap_or_default();
    let out = custom_out(name.as_str(), permissions);
    let command = TenantCommand::UpdateRole {
        name,
        permissions,
        by: scope.authority(),
    };
    let actor = scope.principal.actor();
    run_tenant_command(&state, &ctx, actor, scope.tenant_id, command).await?;
    Ok(axum::Json(out))
}

/// Delete a custom role nobody holds.
async fn delete_role(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    RolePath(raw): RolePath,
) -> Result<StatusCode, ApiError> {
    let command = TenantCommand::DeleteRole {
        name: role_from_path(&raw)?,
    };
    let actor = scope.principal.actor();
    run_tenant_command(&state, &ctx, actor, scope.tenant_id, command).await?;
    Ok(StatusCode::NO_CONTENT)
}
