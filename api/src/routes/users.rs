//! Platform administration of users.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tenantry_domain::user::{UserCommand, UserStatus};
use tenantry_domain::values::Reason;
use tenantry_domain::PLATFORM_TENANT;
use tenantry_projections::users::UserFilter;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::extract::{status_filter, Context, Json, ListOut, PageParams, Query, UserPath};
use crate::guard::{Access, PlatformAdmin};
use crate::responses::{MembershipOut, UserOut};
use crate::routes::Route;
use crate::service::memberships::memberships_of;
use crate::service::users::{self, register_user, user_out};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    use Access::PlatformAdmin as Admin;
    vec![
        Route::post("/v1/admin/users", Admin, post_user)
            .summary("Register a user")
            .body::<UserIn>()
            .answers::<UserOut>(StatusCode::CREATED)
            .errors(&["email_taken"]),
        Route::get("/v1/admin/users", Admin, list_users)
            .summary("List users")
            .query::<UserListParams>()
            .answers_page::<UserOut>()
            .errors(&["invalid_limit", "invalid_cursor", "invalid_status"]),
        Route::get("/v1/admin/users/{id}", Admin, get_user)
            .summary("One user and their memberships")
            .answers::<UserDetailOut>(StatusCode::OK)
            .errors(&["user_not_found"]),
        Route::post("/v1/admin/users/{id}/deactivate", Admin, deactivate_user)
            .summary("Deactivate a user: sign-in stops and every session is revoked")
            .answers::<UserOut>(StatusCode::OK)
            .errors(&[
                "user_not_found",
                "user_already_deactivated",
                "user_erased",
                "last_owner",
                "cannot_deactivate_self",
            ]),
        Route::post("/v1/admin/users/{id}/erase", Admin, erase_user)
            .summary("Erase a person: their data key is destroyed, so their email and name open nowhere again (the events and the chain stay), the email is free, and the account is closed for good")
            .body::<EraseIn>()
            .answers::<UserOut>(StatusCode::OK)
            .errors(&[
                "user_not_found",
                "user_erased",
                "last_owner",
                "cannot_erase_self",
            ]),
        Route::post("/v1/admin/users/{id}/reactivate", Admin, reactivate_user)
            .summary("Reactivate a deactivated user")
            .answers::<UserOut>(StatusCode::OK)
            .errors(&["user_not_found", "user_already_active", "user_erased"]),
        Route::post(
            "/v1/admin/users/{id}/grant-platform-admin",
            Admin,
            grant_platform_admin,
        )
        .summary("Make a user a platform admin")
        .answers::<UserOut>(StatusCode::OK)
        .errors(&[
            "user_not_found",
            "already_platform_admin",
            "user_deactivated",
            "user_erased",
        ]),
        Route::post(
            "/v1/admin/users/{id}/revoke-platform-admin",
            Admin,
            revoke_platform_admin,
        )
        .summary("Take the platform admin permission away from a user")
        .answers::<UserOut>(StatusCode::OK)
        .errors(&[
            "user_not_found",
            "not_platform_admin",
            "cannot_revoke_own_admin",
            "user_erased",
        ]),
    ]
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct UserIn {
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[schema(value_type = String, min_length = 8, max_length = 256)]
    password: Zeroizing<String>,
}

/// Create a user who can sign in.
async fn post_user(
    State(state): State<AppState>,
    ctx: Context,
    PlatformAdmin(admin): PlatformAdmin,
    Json(body): Json<UserIn>,
) -> Result<(StatusCode, axum::Json<UserOut>), ApiError> {
    let meta = ctx.metadata(PLATFORM_TENANT, admin.actor());
    let (id, checkpoint) = register_user(
        &state.store,
        &state.personal,
        &body.email,
        &body.name,
        body.password,
        false,
        &meta,
    )
    .await?;
    state.settle(checkpoint.as_ref()).await;
    Ok((StatusCode::CREATED, axum::Json(user_out(&state, id).await?)))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    cursor: Option<String>,
    q: Option<String>,
    status: Option<String>,
    tenant_id: Option<Uuid>,
    role: Option<String>,
}

/// List users, filtered by `q` (email or name) and `status`.
async fn list_users(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    Query(params): Query<UserListParams>,
) -> Result<axum::Json<ListOut<UserOut>>, ApiError> {
    let status = status_filter(
        params.status.as_deref(),
        &UserStatus::ALL,
        UserStatus::as_str,
    )?;
    let filter = UserFilter {
        status,
        q: params.q.filter(|q| !q.is_empty()),
        tenant_id: params.tenant_id,
        role: params.role.filter(|r| !r.is_empty()),
    };
    let paging = PageParams::new(params.limit, params.cursor);
    let page = state
        .reads
        .users()
        .list(&filter, paging.after()?, paging.limit()?)
        .await?;
    Ok(axum::Json(ListOut::from_page(page, UserOut::from)))
}

/// A user with the tenants they belong to.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserDetailOut {
    #[serde(flatten)]
    user: UserOut,
    memberships: Vec<MembershipOut>,
}

/// One user and their memberships.
async fn get_user(
    State(state): State<AppState>,
    _admin: PlatformAdmin,
    UserPath(id): UserPath,
) -> Result<axum::Json<UserDetailOut>, ApiError> {
    Ok(axum::Json(UserDetailOut {
        user: user_out(&state, id).await?,
        memberships: memberships_of(&state, id).await?,
    }))
}

/// Deactivate a user: sign-in stops and every session is revoked at once.
/// Refused while they are the only active owner of a tenant.
async fn deactivate_user(
    State(state): State<AppState>,
    ctx: Context,
    admin: PlatformAdmin,
    UserPath(id): UserPath,
) -> Result<axum::Json<UserOut>, ApiError> {
    users::deactivate(&state, &ctx, &admin.0, id).await?;
    Ok(axum::Json(user_out(&state, id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct EraseIn {
    /// Why (a request's reference, say); kept in the event. Name no one.
    #[schema(min_length = 1, max_length = 500)]
    reason: String,
}

/// Erase a person (`docs/AUDIT.md`, "Erasure").
async fn erase_user(
    State(state): State<AppState>,
    ctx: Context,
    admin: PlatformAdmin,
    UserPath(id): UserPath,
    Json(body): Json<EraseIn>,
) -> Result<axum::Json<UserOut>, ApiError> {
    let reason = Reason::parse(&body.reason).map_err(|e| ApiError::invalid_field("reason", e))?;
    users::erase(&state, &ctx, &admin.0, id, reason).await?;
    Ok(axum::Json(user_out(&state, id).await?))
}

/// Reactivate a deactivated user.
async fn reactivate_user(
    State(state): State<AppState>,
    ctx: Context,
    admin: PlatformAdmin,
    UserPath(id): UserPath,
) -> Result<axum::Json<UserOut>, ApiError> {
    users::run_user_command(&state, &ctx, &admin.0, id, UserCommand::ReactivateUser).await?;
    Ok(axum::Json(user_out(&state, id).await?))
}

/// Make a user a platform admin.
async fn grant_platform_admin(
    State(state): State<AppState>,
    ctx: Context,
    admin: PlatformAdmin,
    UserPath(id): UserPath,
) -> Result<axum::Json<UserOut>, ApiError> {
    users::run_user_command(&state, &ctx, &admin.0, id, UserCommand::GrantPlatformAdmin).await?;
    Ok(axum::Json(user_out(&state, id).await?))
}

/// Take the platform admin permission away from a user.
async fn revoke_platform_admin(
    State(state): State<AppState>,
    ctx: Context,
    admin: PlatformAdmin,
    UserPath(id): UserPath,
) -> Result<axum::Json<UserOut>, ApiError> {
    if id == admin.0.user_id {
        return Err(ApiError::conflict(
            "cannot_revoke_own_admin",
            "a platform admin cannot revoke their own admin permission",
        ));
    }
    users::run_user_command(&state, &ctx, &admin.0, id, UserCommand::RevokePlatformAdmin).await?;
    Ok(axum::Json(user_out(&state, id).await?))
}
