//! The signed-in user's own account.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tenantry_domain::values::PersonName;
use zeroize::Zeroizing;

use crate::credentials::Caller;
use crate::error::ApiError;
use crate::extract::{Context, Json};
use crate::guard::Access;
use crate::responses::{MembershipOut, UserOut};
use crate::routes::Route;
use crate::service::memberships::memberships_of;
use crate::service::users::{self, user_out};
use crate::state::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/v1/me", Access::User, get_me)
            .summary("The caller, their tenants, and who impersonates them")
            .answers::<MeOut>(StatusCode::OK),
        Route::patch("/v1/me", Access::User, patch_me)
            .summary("Change the caller's display name")
            .body::<MePatch>()
            .answers::<UserOut>(StatusCode::OK),
        Route::post("/v1/me/password", Access::User, post_password)
            .summary("Change the caller's password")
            .body::<PasswordIn>()
            .no_content()
            .errors(&[
                "wrong_password",
                "not_allowed_while_impersonating",
                "rate_limited",
            ]),
    ]
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeOut {
    user: UserOut,
    is_platform_admin: bool,
    /// The tenants the caller belongs to, with role and permissions (the
    /// portal's tenant switcher).
    tenants: Vec<MembershipOut>,
    /// The platform admin behind this session, when it is an impersonation.
    impersonated_by: Option<ImpersonatorOut>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ImpersonatorOut {
    id: uuid::Uuid,
    email: Option<String>,
    name: Option<String>,
}

/// Who the caller is.
async fn get_me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<MeOut>, ApiError> {
    let user = user_out(&state, caller.user_id).await?;
    let impersonated_by = match caller.impersonator {
        Some(id) => {
            let admin = user_out(&state, id).await?;
            Some(ImpersonatorOut {
                id,
                email: admin.email,
                name: admin.name,
            })
        }
        None => None,
    };
    Ok(axum::Json(MeOut {
        is_platform_admin: caller.is_platform_admin,
        user,
        tenants: memberships_of(&state, caller.user_id).await?,
        impersonated_by,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct MePatch {
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

/// Change the caller's display name.
async fn patch_me(
    State(state): State<AppState>,
    ctx: Context,
    caller: Caller,
    Json(body): Json<MePatch>,
) -> Result<axum::Json<UserOut>, ApiError> {
    let name = PersonName::parse(&body.name).map_err(|e| ApiError::invalid_field("name", e))?;
    users::rename(&state, &ctx, &caller, name).await?;
    Ok(axum::Json(user_out(&state, caller.user_id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct PasswordIn {
    #[schema(value_type = String)]
    current_password: Zeroizing<String>,
    #[schema(value_type = String, min_length = 8, max_length = 256)]
    new_password: Zeroizing<String>,
}

/// Change the caller's password (the current one is required).
async fn post_password(
    State(state): State<AppState>,
    ctx: Context,
    caller: Caller,
    Json(body): Json<PasswordIn>,
) -> Result<StatusCode, ApiError> {
    users::change_password(
        &state,
        &ctx,
        &caller,
        body.current_password,
        body.new_password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
