//! A tenant's roster: list, add (platform admins; tenants add people by
//! invitation), change a member's role, remove a member or leave.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tenantry_domain::access::{Permission, RoleName};
use tenantry_domain::tenant::{Authority, TenantCommand};
use tenantry_projections::access::MemberRow;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{Context, Json, ListOut, MemberPath, PageParams, Query, TenantIdPath};
use crate::guard::{Access, PlatformAdmin, TenantScope};
use crate::responses::InvitationOut;
use crate::routes::Route;
use crate::service::tenants::{check_active_user, run_tenant_command};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    use Access::{PlatformAdmin as Admin, Tenant as In, TenantOrSelf};
    const MEMBER: &str = "/v1/tenants/{tid}/members/{user_id}";
    vec![
        Route::get(
            "/v1/tenants/{tid}/members",
            In(Permission::MembersRead),
            list_members,
        )
        .summary("The roster in user-id order, optionally with pending invitations")
        .query::<MemberListParams>()
        .answers::<MembersOut>(StatusCode::OK)
        .errors(&["invalid_limit", "invalid_cursor", "invalid_include"]),
        Route::post("/v1/tenants/{tid}/members", Admin, post_member)
            .summary("Seat an existing, active user directly")
            .body::<MemberIn>()
            .answers::<MemberOut>(StatusCode::CREATED)
            .errors(&[
                "tenant_not_found",
                "already_member",
                "unknown_role",
                "seat_limit_reached",
                "user_not_found",
                "user_deactivated",
                "tenant_archived",
            ]),
        Route::put(MEMBER, In(Permission::MembersManage), put_member)
            .summary("Give a member another role")
            .body::<RoleIn>()
            .answers::<MemberOut>(StatusCode::OK)
            .errors(&[
                "member_not_found",
                "unknown_role",
                "role_escalation",
                "owner_required",
                "last_owner",
                "tenant_archived",
            ]),
        Route::delete(
            MEMBER,
            TenantOrSelf(Permission::MembersManage),
            delete_member,
        )
        .summary("Remove a member, or leave when the caller names themselves")
        .no_content()
        .errors(&[
            "member_not_found",
            "owner_required",
            "last_owner",
            "tenant_archived",
        ]),
    ]
}

#[derive(Serialize, Deserialize, Debug, utoipa::ToSchema)]
pub struct MemberOut {
    pub user_id: Uuid,
    /// `null` once the person is erased.
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: String,
    pub joined_at: chrono::DateTime<chrono::Utc>,
}

impl From<MemberRow> for MemberOut {
    fn from(r: MemberRow) -> Self {
        Self {
            user_id: r.user_id,
            email: r.email,
            name: r.name,
            role: r.role,
            joined_at: r.joined_at,
        }
    }
}

fn parse_role(raw: &str) -> Result<RoleName, ApiError> {
    RoleName::parse(raw).map_err(|e| ApiError::invalid_field("role", e))
}

async fn member_out(
    state: &AppState,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<MemberOut, ApiError> {
    state
        .reads
        .access()
        .member(tenant_id, user_id)
        .await?
        .map(MemberOut::from)
        .ok_or_else(|| ApiError::not_found("member_not_found", "member not found"))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct MemberListParams {
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
    role: Option<String>,
    /// `invitations`: also list the pending invitations (the admin's
    /// "users" page).
    include: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct MembersOut {
    data: Vec<MemberOut>,
    /// A cursor for the next page; absent on the last.
    next_cursor: Option<String>,
    /// Pending invitations, with `include=invitations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    invitations: Option<Vec<InvitationOut>>,
}

/// The roster in user-id order; `role` filters by role name;
/// `include=invitations` adds the pending invitations (up to 200).
async fn list_members(
    State(state): State<AppState>,
    scope: TenantScope,
    Query(params): Query<MemberListParams>,
) -> Result<axum::Json<MembersOut>, ApiError> {
    let invitations = match params.include.as_deref() {
        None => None,
        Some("invitations") => {
            if !scope.has(Permission::InvitationsManage) && !scope.has(Permission::MembersManage) {
                return Err(crate::guard::missing_permission(
                    Permission::InvitationsManage,
                ));
            }
            let page = state
                .reads
                .invitations()
                .list(
                    scope.tenant_id,
                    Some("pending"),
                    None,
                    crate::extract::MAX_LIMIT,
                    state.now(),
                )
                .await?;
            Some(page.items.into_iter().map(InvitationOut::from).collect())
        }
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_include",
                "include may only be invitations",
            ))
        }
    };
    let paging = PageParams::new(params.limit, params.cursor);
    let page = state
        .reads
        .access()
        .members(
            scope.tenant_id,
            params.role.as_deref(),
            paging.after()?,
            paging.limit()?,
        )
        .await?;
    let members = ListOut::from_page(page, MemberOut::from);
    Ok(axum::Json(MembersOut {
        data: members.data,
        next_cursor: members.next_cursor,
        invitations,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct MemberIn {
    user_id: Uuid,
    role: String,
}

/// Seat an existing, active user directly (platform admins only).
async fn post_member(
    State(state): State<AppState>,
    ctx: Context,
    PlatformAdmin(admin): PlatformAdmin,
    TenantIdPath(tenant_id): TenantIdPath,
    Json(body): Json<MemberIn>,
) -> Result<(StatusCode, axum::Json<MemberOut>), ApiError> {
    let role = parse_role(&body.role)?;
    check_active_user(&state, "user_id", body.user_id).await?;
    let command = TenantCommand::AddMember {
        user_id: body.user_id.into(),
        role,
        by: Authority::Platform,
        now: state.now(),
        plan_seats: crate::service::billing::plan_seats(&state, tenant_id).await?,
    };
    run_tenant_command(&state, &ctx, admin.actor(), tenant_id, command).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(member_out(&state, tenant_id, body.user_id).await?),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RoleIn {
    role: String,
}

/// Give a member another role.
async fn put_member(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    MemberPath(user_id): MemberPath,
    Json(body): Json<RoleIn>,
) -> Result<axum::Json<MemberOut>, ApiError> {
    let command = TenantCommand::ChangeMemberRole {
        user_id: user_id.into(),
        role: parse_role(&body.role)?,
        by: scope.authority(),
    };
    let actor = scope.principal.actor();
    run_tenant_command(&state, &ctx, actor, scope.tenant_id, command).await?;
    Ok(axum::Json(
        member_out(&state, scope.tenant_id, user_id).await?,
    ))
}

/// Remove a member, or leave when the caller names themselves.
async fn delete_member(
    State(state): State<AppState>,
    ctx: Context,
    scope: TenantScope,
    MemberPath(user_id): MemberPath,
) -> Result<StatusCode, ApiError> {
    let command = TenantCommand::RemoveMember {
        user_id: user_id.into(),
        by: scope.authority(),
    };
    let actor = scope.principal.actor();
    run_tenant_command(&state, &ctx, actor, scope.tenant_id, command).await?;
    Ok(StatusCode::NO_CONTENT)
}
